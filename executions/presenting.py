"""How executions and attempts are shown: payloads, the diff against the last success, the
reconstructed event timeline, CSV rows. Display only: no request handling, and no query
beyond iterating what a view hands over (the views fetch; these functions shape it).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, quote

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from executions import charts
from executions.choices import ExecutionStatus, Outcome, StateMachineType
from executions.models import Execution, FailureGroup, HttpAttempt, VariableAssignment
from executions.redaction import Redactor

LONG_BODY_CHARS = 1200
LONG_BODY_LINES = 25
REDRIVE_WINDOW = timedelta(days=14)


# Columns the list shows; large JSON/text fields stay in the database.
LIST_FIELDS = (
    "id", "occurred_at", "state_name", "attempt_number", "method", "url", "status_code",
    "error", "category", "subcategory", "duration_ms", "connection_arn", "outcome",
    "final_attempt", "caught", "account_id", "execution_id", "connection_id", "endpoint_id",
    "execution__name", "execution__status", "execution__state_machine__name",
    "execution__state_machine__region", "connection__name",
)  # fmt: skip


# --- CSV export -------------------------------------------------------------------------------


CSV_HEADER = (
    "occurred_at", "account", "region", "state_machine", "execution", "execution_arn",
    "state", "attempt", "method", "url", "status_code", "outcome", "category", "subcategory",
    "error", "cause", "evidence", "hint", "duration_ms", "connection_arn", "execution_url",
)  # fmt: skip
CSV_FIELDS = (
    "occurred_at", "account__name", "execution__state_machine__region",
    "execution__state_machine__name", "execution__name", "execution__arn", "state_name",
    "attempt_number", "method", "url", "status_code", "outcome", "category", "subcategory",
    "error", "cause", "evidence", "hint", "duration_ms", "connection_arn", "execution_id",
)  # fmt: skip
# A cell starting with one of these is a formula in spreadsheet programs; error text and URLs
# come from third parties, so such cells are prefixed with a quote (OWASP "CSV injection").
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> str:
    text = (
        "" if value is None else (value.isoformat() if isinstance(value, datetime) else str(value))
    )
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


class _Echo:
    """A file-like object whose write returns the line, so csv.writer can feed a generator."""

    def write(self, value: str) -> str:
        return value


# Free-text columns are redacted again on the way out, as on the detail page.
CSV_URL = CSV_FIELDS.index("url")
CSV_TEXT = (CSV_FIELDS.index("error"), CSV_FIELDS.index("cause"), CSV_FIELDS.index("hint"))
CSV_EVIDENCE = CSV_FIELDS.index("evidence")


def csv_rows(qs: QuerySet[HttpAttempt], base_url: str, redactor: Redactor) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_HEADER)
    for row in qs.values_list(*CSV_FIELDS).iterator(chunk_size=2000):
        *cells, execution_id = row
        cells[CSV_URL] = redactor.url(cells[CSV_URL])
        for i in CSV_TEXT:
            cells[i] = redactor.text(cells[i])
        # The classification's evidence as compact JSON (what decided, what was missing).
        evidence = redactor.value(cells[CSV_EVIDENCE])
        cells[CSV_EVIDENCE] = (
            json.dumps(evidence, ensure_ascii=False, default=str) if evidence else ""
        )
        yield writer.writerow([*map(csv_cell, cells), f"{base_url}{execution_id}/"])


# --- Payloads and the diff against the last success -------------------------------------------


def pretty(value: Any) -> str:
    """JSON pretty-printed (strings holding JSON too); anything else as text."""
    if value in (None, "", {}, []):
        return ""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return str(value)
        if isinstance(value, str):
            return value
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False, default=str)


def is_long(text: str) -> bool:
    return len(text) > LONG_BODY_CHARS or text.count("\n") > LONG_BODY_LINES


@dataclass(frozen=True)
class DiffRow:
    part: str  # "Method", "Header", "Query", "Body"
    key: str
    failed: str
    succeeded: str
    change: str  # "missing" (only in the success), "added" (only in the failure), "changed"

    @property
    def rank(self) -> int:
        return {"missing": 0, "changed": 1, "added": 2}.get(self.change, 3)


ABSENT = "—"


def _short(value: Any, limit: int = 120) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def flatten(value: Any, prefix: str = "", depth: int = 0) -> dict[str, Any]:
    """Dotted key paths of a JSON body ({"a": {"b": 1}} → {"a.b": 1}), 5 levels, 300 keys."""
    if depth >= 5 or not isinstance(value, dict | list):
        return {prefix or "(body)": value}
    items = value.items() if isinstance(value, dict) else enumerate(value[:20])
    flat: dict[str, Any] = {}
    for key, child in items:
        path = f"{prefix}.{key}" if prefix else str(key)
        flat.update(flatten(child, path, depth + 1))
        if len(flat) >= 300:
            break
    return flat


def _keyed(value: Any, lower: bool) -> dict[str, Any]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return {"(raw)": value} if value else {}
    if not isinstance(value, dict):
        return {} if value in (None, "", []) else {"(value)": value}
    return {(str(k).lower() if lower else str(k)): v for k, v in value.items()}


def compare_keys(
    part: str, failed: dict[str, Any], ok: dict[str, Any], values: bool
) -> list[DiffRow]:
    """The diff rows of one part (headers, query, body keys): keys missing or added, and changed
    values (with `values`) or only changed value types (without: where values differ from call to
    call, as bodies and response headers do)."""
    rows = []
    for key in sorted(failed.keys() | ok.keys()):
        if key not in failed:
            rows.append(DiffRow(part, key, ABSENT, _short(ok[key]), "missing"))
        elif key not in ok:
            rows.append(DiffRow(part, key, _short(failed[key]), ABSENT, "added"))
        elif values and failed[key] != ok[key]:
            rows.append(DiffRow(part, key, _short(failed[key]), _short(ok[key]), "changed"))
        elif not values and type(failed[key]) is not type(ok[key]):
            kinds = (type(failed[key]).__name__, type(ok[key]).__name__)
            rows.append(DiffRow(part, key, f"({kinds[0]})", f"({kinds[1]})", "changed"))
    return rows


@dataclass(frozen=True)
class ShownRequest:
    """A request as displayed: redacted again at render time (see attempt_view)."""

    method: str
    url: str
    headers: Any
    query: Any
    body: Any


def parsed(value: Any) -> Any:
    """JSON held in a string, decoded; anything else unchanged."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def parsed_query(value: Any) -> Any:
    """QueryParameters may be an object, an array or a raw "a=1&b=2" string."""
    value = parsed(value)
    if isinstance(value, str) and "=" in value:
        return dict(parse_qsl(value.lstrip("?"), keep_blank_values=True))
    return value


def shown_request(attempt: HttpAttempt, redactor: Redactor) -> ShownRequest:
    return ShownRequest(
        method=attempt.method,
        url=redactor.url(attempt.url),
        headers=redactor.value(attempt.request_headers),
        query=redactor.value(parsed_query(attempt.request_query)),
        body=redactor.value(parsed(attempt.request_body)),
    )


def request_diff(failed: ShownRequest, ok: ShownRequest) -> list[DiffRow]:
    """What the failed request lacks or adds compared with the last success to its endpoint.

    Headers and query compare keys and values; the body compares key paths and value types
    only, because ids and timestamps differ on every call and would drown the signal.
    """
    # The URLs are not compared: both calls match the same endpoint template, so they differ
    # only in ids, which is noise here (the page shows both URLs anyway).
    rows = []
    if failed.method != ok.method:
        rows.append(DiffRow("Method", "", failed.method, ok.method, "changed"))
    rows += compare_keys("Header", _keyed(failed.headers, True), _keyed(ok.headers, True), True)
    rows += compare_keys("Query", _keyed(failed.query, False), _keyed(ok.query, False), True)
    failed_body, ok_body = _keyed(failed.body, False), _keyed(ok.body, False)
    rows += compare_keys(
        "Body",
        flatten(failed_body) if failed_body else {},
        flatten(ok_body) if ok_body else {},
        False,
    )
    return sorted(rows, key=lambda r: (r.rank, r.part, r.key))


@dataclass
class AttemptView:
    """One attempt as the detail page shows it: redacted payloads pretty-printed, plus diff."""

    attempt: HttpAttempt
    url: str
    error: str
    cause: str
    request_headers: str
    request_query: str
    request_body: str
    response_headers: str
    response_body: str
    baseline: HttpAttempt | None
    baseline_url: str
    diff: list[DiffRow]
    # The state's own failure after a successful call (item 9), redacted like the call's.
    state_error: str = ""
    state_cause: str = ""
    state_hint: str = ""

    @property
    def response_is_long(self) -> bool:
        return is_long(self.response_body)

    @property
    def request_is_long(self) -> bool:
        return is_long(self.request_body)

    @property
    def evidence(self) -> list[tuple[str, str]]:
        raw = self.attempt.evidence
        if isinstance(raw, dict):
            return [(str(k), _short(v, 400)) for k, v in raw.items()]
        return [("evidence", _short(raw, 400))] if raw else []


def attempt_view(
    attempt: HttpAttempt, baseline: HttpAttempt | None, redactor: Redactor
) -> AttemptView:
    """Payloads are stored redacted; they are redacted again here so that patterns added to
    settings later (REDACT_KEY_PATTERNS/…_VALUE_PATTERNS) also cover rows stored before."""
    shown = shown_request(attempt, redactor)
    diff, baseline_url = [], ""
    if baseline and attempt.is_failure:
        baseline_shown = shown_request(baseline, redactor)
        diff, baseline_url = request_diff(shown, baseline_shown), baseline_shown.url
    return AttemptView(
        attempt=attempt,
        url=shown.url,
        error=redactor.text(attempt.error),
        cause=redactor.text(attempt.cause),
        request_headers=pretty(shown.headers),
        request_query=pretty(shown.query),
        request_body=pretty(shown.body),
        response_headers=pretty(redactor.value(attempt.response_headers)),
        response_body=pretty(redactor.value(parsed(attempt.response_body))),
        baseline=baseline,
        baseline_url=baseline_url,
        diff=diff,
        state_error=redactor.text(attempt.state_error),
        state_cause=redactor.text(attempt.state_cause),
        state_hint=redactor.text(attempt.state_hint),
    )


# --- Execution ---------------------------------------------------------------------------------


def assignment_views(
    execution: Execution, redactor: Redactor, limit: int
) -> list[tuple[VariableAssignment, list[tuple[str, str]]]]:
    """Which state assigned what, in event order; stored redacted, redacted again here like
    the payloads (patterns added later cover older rows)."""
    shown = execution.variable_assignments.order_by("event_id")[:limit]
    return [
        (a, [(name, pretty(redactor.value(value))) for name, value in a.variables.items()])
        for a in shown
    ]


def console_url(execution: Execution) -> str:
    base = str(settings.STEPSCOPE.get("AWS_CONSOLE_URL", "https://console.aws.amazon.com"))
    region = execution.state_machine.region
    arn = quote(execution.arn, safe=":")
    if execution.state_machine.type == StateMachineType.EXPRESS:
        start_ms = int(execution.start_date.timestamp() * 1000)
        return f"{base.rstrip('/')}/states/home?region={region}#/express-executions/details/{arn}?startDate={start_ms}"
    return f"{base.rstrip('/')}/states/home?region={region}#/v2/executions/details/{arn}"


def redrive_note(execution: Execution) -> str:
    """Whether the console's Redrive can apply (Standard, failed, closed within 14 days)."""
    if execution.state_machine.type == StateMachineType.EXPRESS:
        return "Express executions cannot be redriven."
    if execution.status == ExecutionStatus.PENDING_REDRIVE:
        return "A redrive is pending."
    if execution.status not in (
        ExecutionStatus.FAILED,
        ExecutionStatus.TIMED_OUT,
        ExecutionStatus.ABORTED,
    ):
        return "Only failed, timed-out or aborted executions can be redriven."
    if execution.stop_date is None:
        return ""
    deadline = execution.stop_date + REDRIVE_WINDOW
    if deadline < timezone.now():
        return f"Not redrivable: closed more than 14 days ago ({deadline:%Y-%m-%d} was the limit)."
    return f"Redrivable from the console until {deadline:%Y-%m-%d %H:%M} UTC."


@dataclass(frozen=True)
class TimelineEvent:
    event_id: int | None
    type: str
    at: datetime | None
    detail: str


CLOSE_EVENT = {
    Outcome.SUCCEEDED: "TaskSucceeded",
    Outcome.FAILED: "TaskFailed",
    Outcome.TIMED_OUT: "TaskTimedOut",
    Outcome.ABORTED: "TaskStateAborted",
}


def event_timeline(
    execution: Execution, attempts: list[HttpAttempt], redactor: Redactor
) -> list[TimelineEvent]:
    """History events reconstructed from the stored attempts (the raw history is not kept)."""
    events = {1: TimelineEvent(1, "ExecutionStarted", execution.start_date, execution.name)}
    for a in attempts:
        if a.entered_event_id and a.entered_event_id not in events:
            events[a.entered_event_id] = TimelineEvent(
                a.entered_event_id, "TaskStateEntered", a.scheduled_at, a.state_name
            )
        if a.scheduled_event_id:
            events[a.scheduled_event_id] = TimelineEvent(
                a.scheduled_event_id,
                "TaskScheduled",
                a.scheduled_at,
                f"{a.method} {redactor.url(a.url)}",
            )
        if a.closed_event_id and (a.closed_event_type or a.outcome in CLOSE_EVENT):
            detail = redactor.text(a.error) or (str(a.status_code) if a.status_code else "")
            kind = a.closed_event_type or CLOSE_EVENT[Outcome(a.outcome)]
            events[a.closed_event_id] = TimelineEvent(a.closed_event_id, kind, a.closed_at, detail)
    ordered = sorted(events.values(), key=lambda e: e.event_id or 0)
    if execution.stop_date and execution.status != ExecutionStatus.RUNNING:
        kind = "Execution" + execution.status.title().replace("_", "")
        ordered.append(
            TimelineEvent(None, kind, execution.stop_date, redactor.text(execution.error))
        )
    return ordered


def attempt_lanes(attempts: list[HttpAttempt]) -> charts.Lanes:
    items = []
    for a in attempts:
        start = a.scheduled_at or a.occurred_at
        fill = charts.category_style(a.category).fill if a.is_failure else "#FFFFFF"
        status = a.status_code or a.error or a.outcome
        title = f"{a.state_name} #{a.attempt_number}: {status}"
        if a.duration_ms is not None:
            title += f" in {a.duration_ms} ms"
        items.append((f"{a.state_name} #{a.attempt_number}", start, a.closed_at, fill, title))
    return charts.attempt_lanes(items)


def execution_duration(execution: Execution) -> str:
    if execution.stop_date is None:
        return ""
    return charts.duration_label((execution.stop_date - execution.start_date).total_seconds())


def injected_parameters(names: Any) -> list[tuple[str, list[str]]]:
    """A connection's InvocationHttpParameters names per kind, kinds without a name left out
    (a stored {"body": []} used to render as "body: ;")."""
    if not isinstance(names, dict):
        return []
    shown = []
    for kind, values in names.items():
        listed = [str(v) for v in values if v] if isinstance(values, list) else []
        if listed:
            shown.append((str(kind), listed))
    return shown


# --- Failure groups --------------------------------------------------------------------------


def group_sparkline(values: list[int], days: int) -> charts.Sparkline:
    return charts.sparkline(values, title=f"{sum(values)} failures in the last {days} days")


@dataclass
class GroupRow:
    group: FailureGroup
    spark: charts.Sparkline
