"""One HTTP call attempt, and how the details of its history events fill it in."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from executions.history.definition import connection_arn
from executions.history.events import (
    as_int,
    as_text,
    load_json,
    parse_timestamp,
    status_from_error,
)

OUTCOME_SUCCEEDED = "succeeded"
OUTCOME_FAILED = "failed"
OUTCOME_TIMED_OUT = "timed_out"
# The execution was stopped (StopExecution) or the state aborted (a sibling branch or
# iteration failed) while the call was in flight: the call has no result of its own.
OUTCOME_ABORTED = "aborted"
OUTCOME_IN_PROGRESS = "in_progress"
# The events that end a call as aborted, however its attempt was stored.
ABORT_EVENTS = frozenset({"ExecutionAborted", "TaskStateAborted"})
# The events that end a call its state's abort cut off: its own TaskStateAborted, or the end of
# the Parallel/Map whose other branch failed (when no TaskStateAborted reached it).
STATE_ABORT_EVENTS = frozenset(
    {
        "TaskStateAborted",
        "ParallelStateFailed",
        "ParallelStateAborted",
        "MapStateFailed",
        "MapStateAborted",
    }
)
# "Failing" in one place: every outcome but these (failed, timed out, and any value not known
# here). `executions.models.FAILING` says the same in SQL; a test holds the two together.
# Aborted is not failing: the endpoint did nothing wrong (it was cut off, not slow like a
# timeout, and a sibling's failure is counted once, on its own call), so counting it would
# open failure groups, fire alerts and raise failure rates of endpoints after every
# StopExecution. The aborted attempt is still stored, shown and explained.
NOT_FAILING_OUTCOMES = (OUTCOME_SUCCEEDED, OUTCOME_IN_PROGRESS, OUTCOME_ABORTED)


def is_failing_outcome(outcome: str) -> bool:
    """Whether an attempt with this outcome counts as a failure (lists, groups, classifier)."""
    return outcome not in NOT_FAILING_OUTCOMES


# Calls that never finished: cut off (aborted) or still open when the history was read. A
# failure rate and a latency figure are read as "of the calls that ended": a cut-off call has
# no answer and only the time until the cut, so counting it would dilute the rate after every
# StopExecution and pull p50/p95 towards however long the stop took. They are counted apart.
# `executions.models.FINISHED` says the same in SQL; a test holds the two together.
UNFINISHED_OUTCOMES = (OUTCOME_IN_PROGRESS, OUTCOME_ABORTED)


def is_finished_outcome(outcome: str) -> bool:
    """Whether an attempt with this outcome counts in rates' denominators and in latency."""
    return outcome not in UNFINISHED_OUTCOMES


@dataclass(slots=True)
class ParsedAttempt:
    """One HTTP call attempt of one HTTP Task state entry (retries are separate attempts).

    Request fields are raw, as the history holds them: ingestion redacts before storing.
    """

    state_name: str
    attempt_number: int
    entered_event_id: int | None = None
    scheduled_event_id: int | None = None
    closed_event_id: int | None = None
    scheduled_at: datetime | None = None
    started_at: datetime | None = None
    closed_at: datetime | None = None
    duration_ms: int | None = None
    method: str = ""
    url: str = ""
    connection_arn: str = ""
    request_headers: dict[str, Any] = field(default_factory=dict)
    request_query: Any = None
    request_body: Any = None
    parameters_raw: str | None = None
    status_code: int | None = None
    response_headers: dict[str, Any] = field(default_factory=dict)
    response_body: Any = None
    error: str = ""
    cause: str = ""
    outcome: str = OUTCOME_IN_PROGRESS
    caught: bool = False
    final_attempt: bool = True
    redrive_count: int = 0
    branch_path: str = ""
    problems: list[str] = field(default_factory=list)
    # Additions beyond the shared contract (all defaulted, so constructors keep working):
    closed_event_type: str = ""  # TaskFailed, TaskTimedOut, TaskStateAborted, ExecutionFailed…
    timeout_seconds: int | None = None  # TaskScheduled.timeoutInSeconds, for timeout hints
    response_truncated: bool = False  # outputDetails.truncated: the response was cut
    # The state failed after this call succeeded (ResultSelector, ResultPath, OutputPath or a
    # JSONata Output): a definition error of the state, not an HTTP failure (issue 15 item 9).
    state_error: str = ""
    state_cause: str = ""
    # Which variable a request part came from: {"url" | "header X": "$name (assigned by S)"}
    # (issue 15 item 4). Names only, never values.
    variable_sources: dict[str, str] = field(default_factory=dict)
    # An aborted call: the sibling failure its abort named, or the execution's error when
    # the execution failed around it (issue 15 item 9); evidence.aborted_by says it.
    aborted_by: str = ""


# --------------------------------------------------------------------------- TaskScheduled


def read_parameters(
    attempt: ParsedAttempt, details: Mapping[str, Any], event_id: int | None
) -> None:
    """Method, URL, connection and request from TaskScheduled's `parameters` (a JSON string)."""
    raw = details.get("parameters")
    if raw is None:
        attempt.problems.append("TaskScheduled has no parameters (execution data not included?)")
        return
    params = raw
    decoded = type(raw) is str or isinstance(raw, bytes)
    if decoded:
        params = load_json(raw)
        if params is None:
            attempt.parameters_raw = raw if isinstance(raw, str) else raw.decode("utf-8", "replace")
            attempt.problems.append(f"the parameters of event {event_id} are not valid JSON")
            return
    if type(params) is not dict and not isinstance(params, Mapping):
        attempt.problems.append(f"the parameters of event {event_id} are not an object")
        return
    _apply_parameters(attempt, params, decoded)


def _apply_parameters(attempt: ParsedAttempt, params: Mapping[str, Any], decoded: bool) -> None:
    url = params.get("ApiEndpoint")
    if type(url) is str:
        attempt.url = url
    elif url is not None:
        attempt.problems.append("ApiEndpoint is not a string")
    method = params.get("Method")
    if type(method) is str:
        attempt.method = method.upper()
    connection = connection_arn(params, _plain_text)
    if connection:
        attempt.connection_arn = connection
    headers = params.get("Headers")
    if headers is None:
        pass
    elif type(headers) is dict:
        # Decoded just now, so nobody else holds it: no copy needed.
        attempt.request_headers = headers if decoded else dict(headers)
    elif isinstance(headers, Mapping):
        attempt.request_headers = dict(headers)
    else:
        attempt.problems.append("Headers is not an object")
    attempt.request_query = params.get("QueryParameters")
    attempt.request_body = params.get("RequestBody")


def parameter(details: Mapping[str, Any], key: str) -> Any:
    """One key of a task event's `parameters` (decoded if it is a JSON string), or None."""
    raw = details.get("parameters")
    params = load_json(raw) if isinstance(raw, str) else raw
    return params.get(key) if isinstance(params, Mapping) else None


def _plain_text(params: Mapping[str, Any], key: str) -> str | None:
    value = params.get(key)
    return value if isinstance(value, str) and value else None


# --------------------------------------------------------------------------- TaskSucceeded


def read_output(attempt: ParsedAttempt, details: Mapping[str, Any], event_id: int | None) -> None:
    """Status code, headers and body from TaskSucceeded's `output` (a JSON string)."""
    output_details = details.get("outputDetails")
    if type(output_details) is dict and output_details.get("truncated") is True:
        attempt.response_truncated = True
        attempt.problems.append("the response was truncated in the history")
    raw = details.get("output")
    if raw is None:
        return
    decoded = type(raw) is str or isinstance(raw, bytes)
    output = load_json(raw) if decoded else raw
    if type(output) is not dict and not isinstance(output, Mapping):
        if not attempt.response_truncated:
            attempt.problems.append(f"the output of event {event_id} is not a JSON object")
        return
    status = as_int(output.get("StatusCode"))
    if status is not None:
        attempt.status_code = status
    headers = output.get("Headers")
    if type(headers) is dict:
        attempt.response_headers = headers if decoded else dict(headers)
    elif isinstance(headers, Mapping):
        attempt.response_headers = dict(headers)
    attempt.response_body = output.get("ResponseBody")


# --------------------------------------------------------------------------- failures


def close_attempt(
    attempt: ParsedAttempt, outcome: str, event_id: int | None, event_type: str, timestamp: Any
) -> None:
    """The attempt ends with `outcome` at this event: when, after how long."""
    attempt.closed_event_id = event_id
    attempt.closed_event_type = event_type
    closed = attempt.closed_at = parse_timestamp(timestamp)
    attempt.outcome = outcome
    begun = attempt.started_at or attempt.scheduled_at
    if begun is not None and closed is not None:
        millis = int((closed - begun).total_seconds() * 1000)
        if millis >= 0:
            attempt.duration_ms = millis
        else:
            attempt.problems.append("the call ended before it started (clock or id mix-up)")


def read_failure(attempt: ParsedAttempt, details: Mapping[str, Any]) -> None:
    """Error, cause and (from `States.Http.StatusCode.NNN`) the status code of a failure."""
    error = details.get("error")
    attempt.error = error if isinstance(error, str) else as_text(error)
    attempt.cause = as_text(details.get("cause"))
    status = status_from_error(attempt.error)
    if status is not None:
        attempt.status_code = status


def mark_unscheduled(attempt: ParsedAttempt) -> None:
    """Say what a failure without its TaskScheduled cannot tell, and what the definition told."""
    known = [k for k, v in (("method", attempt.method), ("URL", attempt.url)) if v]
    if attempt.connection_arn:
        known.append("connection")
    unknown = [k for k in ("method", "URL", "connection") if k not in known]
    if not attempt.state_name:
        unknown.insert(0, "state name")
    said = "the log has no TaskScheduled for this call (level ERROR?): its request is unknown"
    if known:
        said += f"; {', '.join(known)} from the definition"
    if unknown:
        said += f"; unknown: {', '.join(unknown)}"
    attempt.problems.append(said)
