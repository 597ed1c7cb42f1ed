"""Saved histories and execution-log exports → classified attempts, without a database.

What `manage.py classify_history` runs (issue 5 item 4 gives the contract). The input holds one
of: a GetExecutionHistory response `{"events": [...]}` (optional `executionArn`,
`stateMachineArn`, `definition`, `connections`: DescribeConnection answers as AWS returns
them, whose states explain failures through those connections); a list of such documents (executions of one state machine,
so "last success to this endpoint" carries across them); or a FilterLogEvents response whose
events carry execution-log JSON in `message`. Calls still in flight are left out: the
contract's outcomes are succeeded, failed, timed_out and aborted (a call StopExecution, an
aborted state or another branch's failure cut off: `category` null like a success, since it is
no failure of the endpoint, with `subcategory` "aborted", `evidence.aborted_by`
— StopExecution, state aborted, execution failed elsewhere, followed by the sibling failure
the abort names ("state aborted: GetOrder failed (States.Http.StatusCode.503) in EachOrder[0]")
or the execution's error when the history shows it — the stop's `error`/`cause` when
StopExecution was given them, and a hint that says where to look). Pages of one execution as AWS
returns them (`nextToken`, also in reverseOrder, also the AWS CLI's joined output) are joined
into one history first, so an attempt split across a page break is one attempt (join_pages).

Each attempt also carries `state_error`: null, or — for a call that succeeded (2xx) after which
its state failed in ResultSelector, ResultPath or OutputPath — `{error, cause, category,
subcategory, evidence, hint}` of that definition error; the attempt itself stays succeeded.
`variable_sources` names the workflow variable a request's URL or header value came from
(`{"url": "$base (assigned by Config)"}`; names only, never values), and a failing attempt's
evidence repeats it as `built_from_variables`.
`problems` lists what the history could not tell about the attempt (e.g. an ERROR-level log
has no TaskScheduled: which of method, URL and connection came from the definition, and which
are unknown). Query failures (JSONata `States.QueryEvaluationError`, JSONPath `States.Runtime`)
name in `evidence` what failed: `query_language`, `expression`, `location` (JSONata) or `field`
and `jsonpath` (JSONPath), and where known `jsonata_error` (T1006…), `expected` and `actual`.

A failure through a connection whose given state explains it says so in `evidence.connection_state`
(`{state, at, reason, inferred}`): FAILED_CONNECTIVITY (network path, not credentials), a
de-authorization whose reason names KMS (the key policy, not the credentials), or a private
connection made ACTIVE minutes before a timeout (`seconds_since_change`: still provisioning).

Each attempt's `map_run` is the Map Run ARN of a Distributed Map child execution ("" for
others). When the input holds a Distributed Map parent (MapRunStarted, MapRunFailed,
MapRunRedriven), the result adds `map_runs`: per run `{map_run_arn, parent_execution_arn,
map_state, status, error, cause, redrive_count, children, failing_children, failures (grouped by
method, endpoint, category, subcategory), verdict (endpoint | items | mixed | null), hint}`.

Every attempt is classified by the one recipe ingestion uses (`classify_in_context`), with an
`InMemoryContext` of every attempt in the input: the result does not depend on the order of
the documents.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from executions.classify import (
    ClassificationContext,
    ConnectionStateChange,
    InMemoryContext,
    classify_in_context,
    classify_state_error,
    map_run_failures,
    map_run_hint,
)
from executions.classify.endpoint_templates import endpoint_template
from executions.history import (
    OUTCOME_IN_PROGRESS,
    HistoryParser,
    HttpStateInfo,
    ParsedAttempt,
    as_int,
    http_states_from_definition,
    join_pages,
    map_runs_in,
    normalize_log_event,
    parse_timestamp,
    run_of_child,
)

SHAPE_HELP = 'expected {"events": [...]} or a list of such documents'


class InputError(Exception):
    """The file cannot be read as one of the accepted documents."""


@dataclass(slots=True)
class SavedExecution:
    arn: str
    events: list[Mapping[str, Any]] = field(default_factory=list)
    http_states: Mapping[str, HttpStateInfo] = field(default_factory=dict)


def classify_file(path: str) -> dict[str, Any]:
    """`{"attempts": [...]}` for the saved histories at `path` ("-": standard input);
    raises InputError when it cannot be read as one of the accepted documents."""
    data = read(path)
    executions = list(executions_in(data))
    result: dict[str, Any] = {"attempts": classify_executions(executions, connections_in(data))}
    runs = map_run_report(executions, result["attempts"])
    if runs:
        result["map_runs"] = runs
    return result


def map_run_report(
    executions: Iterable[SavedExecution], rows: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The Map Runs the parents' histories started, each with its children's failures together;
    sets each child attempt's `map_run`. Empty when the input has no Map Run and no child."""
    executions = list(executions)
    runs = [run for e in executions for run in map_runs_in(e.events, e.arn)]
    started = {e.arn: _started_at(e.events) for e in executions}
    children: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        arn = row["execution_arn"]
        run = run_of_child(arn, started.get(arn), runs)
        if run is not None:
            row["map_run"] = run.arn
            children.setdefault(id(run), []).append(row)
    report = []
    for run in runs:
        summary = map_run_failures(children.get(id(run), []))
        report.append(
            {
                "map_run_arn": run.arn,
                "parent_execution_arn": run.parent_execution_arn,
                "map_state": run.map_state,
                "status": run.status,
                "error": run.error,
                "cause": run.cause,
                "redrive_count": run.redrive_count,
                **summary,
                "hint": map_run_hint(run.error, summary, run.map_state),
            }
        )
    return report


def _started_at(events: list[Mapping[str, Any]]) -> datetime | None:
    for event in events[:1]:
        if isinstance(event, Mapping) and event.get("type") == "ExecutionStarted":
            return parse_timestamp(event.get("timestamp"))
    return None


def connections_in(data: Any) -> list[tuple[str, ConnectionStateChange]]:
    """The connection states given with the histories: each document's optional
    `connections`, a list of DescribeConnection answers (or ListConnections items) as AWS
    returns them; each is the state it reports, from its LastModifiedTime on."""
    documents = [data] if isinstance(data, Mapping) else data if isinstance(data, list) else []
    found: list[tuple[str, ConnectionStateChange]] = []
    for document in documents:
        listed = document.get("connections") if isinstance(document, Mapping) else None
        for item in listed if isinstance(listed, list) else ():
            if not isinstance(item, Mapping):
                continue
            arn, state = item.get("ConnectionArn"), item.get("ConnectionState")
            at = parse_timestamp(item.get("LastModifiedTime") or item.get("CreationTime"))
            if isinstance(arn, str) and isinstance(state, str) and at is not None:
                reason = item.get("StateReason")
                change = ConnectionStateChange(
                    at=at, state=state, reason=reason if isinstance(reason, str) else ""
                )
                found.append((arn, change))
    return found


# --------------------------------------------------------------------------- reading


def read(path: str) -> Any:
    try:
        raw = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path} is not valid JSON ({exc.msg}, line {exc.lineno})") from None
    except (ValueError, RecursionError) as exc:
        raise InputError(f"{path} is not valid JSON ({type(exc).__name__})") from None


def _documents(data: Any) -> list[dict[str, Any]]:
    if isinstance(data, Mapping):
        data = [data]
    elif isinstance(data, list) and data and all(_looks_like_event(e) for e in data):
        data = [{"events": data}]  # a bare events list: accepted as one history
    if not isinstance(data, list):
        raise InputError(SHAPE_HELP)
    for index, document in enumerate(data):
        if not isinstance(document, Mapping) or not isinstance(document.get("events"), list):
            raise InputError(f"document {index} has no events list; {SHAPE_HELP}")
    return join_pages(data)  # GetExecutionHistory pages of one execution are one history


def _looks_like_event(item: object) -> bool:
    return isinstance(item, Mapping) and "type" in item and "events" not in item


def executions_in(data: Any) -> Iterator[SavedExecution]:
    """One SavedExecution per execution, in document order; log events regrouped by ARN."""
    http_states: Mapping[str, HttpStateInfo] = {}
    for document in _documents(data):
        # Documents are executions of one state machine: a definition given once applies on.
        if document.get("definition") is not None:
            http_states = http_states_from_definition(document.get("definition"))
        history, logs = _split_events(document["events"])
        arn = document.get("executionArn")
        if history or not logs:
            yield SavedExecution(
                arn if isinstance(arn, str) else "", _ordered(history), http_states
            )
        yield from _log_executions(logs, http_states)


def _split_events(events: list[Any]) -> tuple[list[Any], list[Mapping[str, Any]]]:
    history: list[Any] = []
    logs: list[Mapping[str, Any]] = []
    for event in events:
        is_log = isinstance(event, Mapping) and "message" in event and "type" not in event
        (logs if is_log else history).append(event)
    return history, logs


def _log_executions(
    records: list[Mapping[str, Any]], http_states: Mapping[str, HttpStateInfo]
) -> Iterator[SavedExecution]:
    by_arn: dict[str, SavedExecution] = {}
    seen: set[object] = set()
    for record in records:
        key = record.get("eventId")
        if isinstance(key, str) and key in seen:
            continue  # FilterLogEvents pages can repeat an event
        seen.add(key)
        event = normalize_log_event(record.get("message") or "")
        if event is None:
            continue
        if event["timestamp"] is None:
            event["timestamp"] = parse_timestamp(record.get("timestamp"))
        arn = event["_execution_arn"]
        by_arn.setdefault(arn, SavedExecution(arn, [], http_states)).events.append(event)
    for execution in by_arn.values():
        execution.events = _ordered(execution.events)
        yield execution


def _ordered(events: Iterable[Any]) -> list[Any]:
    """Sorted by id (logs arrive by time, files may be reversed); id-less events stay put."""
    keyed: list[tuple[float, int, Any]] = []
    last = 0.0
    for position, event in enumerate(events):
        event_id = as_int(event.get("id")) if isinstance(event, Mapping) else None
        last = float(event_id) if event_id is not None else last
        keyed.append((last, position, event))
    keyed.sort(key=lambda item: (item[0], item[1]))
    return [event for _, _, event in keyed]


# --------------------------------------------------------------------------- classifying


def classify_executions(
    executions: Iterable[SavedExecution],
    connections: Iterable[tuple[str, ConnectionStateChange]] = (),
) -> list[dict[str, Any]]:
    """Attempts of every execution, in order, each classified with everything the input
    tells about its context (whatever the order of the executions)."""
    read = [(execution, _attempts(execution)) for execution in executions]
    context = InMemoryContext(attempt for _, attempts in read for attempt in attempts)
    for arn, change in connections:
        context.record(arn, change)
    return [
        _row(execution.arn, attempt, context, execution.http_states)
        for execution, attempts in read
        for attempt in attempts
    ]


def _attempts(execution: SavedExecution) -> list[ParsedAttempt]:
    parser = HistoryParser(execution.http_states)
    attempts = [*parser.feed(execution.events), *parser.finish()]
    done = [a for a in attempts if a.outcome != OUTCOME_IN_PROGRESS]
    return sorted(done, key=_attempt_order)


def _attempt_order(attempt: ParsedAttempt) -> int:
    return attempt.scheduled_event_id or attempt.closed_event_id or attempt.entered_event_id or 0


def _row(
    execution_arn: str,
    attempt: ParsedAttempt,
    context: InMemoryContext,
    http_states: Mapping[str, HttpStateInfo],
) -> dict[str, Any]:
    result = classify_in_context(attempt, context, http_states.get(attempt.state_name))
    return {
        "execution_arn": execution_arn,
        "state": attempt.state_name,
        "attempt": attempt.attempt_number,
        "method": attempt.method,
        "url": attempt.url,
        "endpoint": endpoint_template(attempt.url),
        "connection_arn": attempt.connection_arn,
        "status_code": attempt.status_code,
        "error": attempt.error,
        "cause": attempt.cause,
        "outcome": attempt.outcome,
        "caught": attempt.caught,
        "category": result.category,
        "subcategory": result.subcategory,
        "evidence": result.evidence,
        "hint": result.hint,
        "state_error": _state_error(attempt, http_states.get(attempt.state_name)),
        "variable_sources": dict(attempt.variable_sources),
        "problems": list(attempt.problems),
        "map_run": "",  # the Map Run of a child execution (map_run_report sets it)
    }


def _state_error(attempt: ParsedAttempt, state: HttpStateInfo | None) -> dict[str, Any] | None:
    """A succeeded call whose state failed right after (item 9): the definition's error."""
    result = classify_state_error(attempt, ClassificationContext(definition_state=state))
    if result is None:
        return None
    return {
        "error": attempt.state_error,
        "cause": attempt.state_cause,
        "category": result.category,
        "subcategory": result.subcategory,
        "evidence": result.evidence,
        "hint": result.hint,
    }
