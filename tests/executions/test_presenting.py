"""Display helpers of the execution pages, on unsaved rows: no database, no request."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import time_machine

from executions import presenting
from executions.choices import ExecutionStatus, Outcome, StateMachineType
from executions.models import Execution, HttpAttempt, StateMachine
from executions.presenting import DiffRow, ShownRequest
from executions.redaction import Redactor

T = datetime(2025, 3, 10, 14, 0, tzinfo=UTC)
REDACTOR = Redactor()


def machine(**kwargs: Any) -> StateMachine:
    fields: dict[str, Any] = {"type": StateMachineType.STANDARD, **kwargs}
    return StateMachine(name="SyncCrm", region="eu-west-1", **fields)


def execution(**kwargs: Any) -> Execution:
    fields: dict[str, Any] = {
        "name": "run-1",
        "arn": "arn:aws:states:eu-west-1:111122223333:execution:SyncCrm:run-1",
        "status": ExecutionStatus.FAILED,
        "start_date": T,
        "stop_date": T + timedelta(seconds=90),
        "error": "States.Http.StatusCode.401",
        **kwargs,
    }
    fields.setdefault("state_machine", machine())
    return Execution(**fields)


def attempt(**kwargs: Any) -> HttpAttempt:
    fields: dict[str, Any] = {
        "state_name": "GetCustomer",
        "attempt_number": 1,
        "method": "GET",
        "url": "https://crm.example/v1/customers/42",
        "occurred_at": T,
        "outcome": Outcome.FAILED,
        "status_code": 401,
        "error": "States.Http.StatusCode.401",
        **kwargs,
    }
    return HttpAttempt(**fields)


def shown(**kwargs: Any) -> ShownRequest:
    fields: dict[str, Any] = {"method": "GET", "url": "u", "headers": {}, "query": None}
    return ShownRequest(**{**fields, "body": None, **kwargs})


# --- Payloads ---------------------------------------------------------------------------------


def test_pretty_indents_json_even_inside_strings() -> None:
    assert presenting.pretty({"a": 1}) == '{\n  "a": 1\n}'
    assert presenting.pretty('{"a": [1]}') == '{\n  "a": [\n    1\n  ]\n}'
    assert presenting.pretty("plain text") == "plain text"
    assert presenting.pretty('"quoted"') == "quoted"
    assert presenting.pretty(None) == presenting.pretty({}) == ""


def test_long_bodies_are_collapsed_by_size_or_lines() -> None:
    assert not presenting.is_long("short")
    assert presenting.is_long("x" * (presenting.LONG_BODY_CHARS + 1))
    assert presenting.is_long("\n" * (presenting.LONG_BODY_LINES + 1))


def test_query_parameters_may_be_a_raw_string() -> None:
    assert presenting.parsed_query("?a=1&b=") == {"a": "1", "b": ""}
    assert presenting.parsed_query('{"a": "1"}') == {"a": "1"}
    assert presenting.parsed_query(None) is None


def test_flatten_gives_dotted_paths_with_limits() -> None:
    assert presenting.flatten({"a": {"b": 1}, "c": [True]}) == {"a.b": 1, "c.0": True}
    assert presenting.flatten(5) == {"(body)": 5}
    deep: dict[str, Any] = {"a": {"b": {"c": {"d": {"e": {"f": 1}}}}}}
    assert presenting.flatten(deep) == {"a.b.c.d.e": {"f": 1}}


# --- Diff against the last success ------------------------------------------------------------


def test_diff_lists_what_the_failed_request_lacks_first() -> None:
    failed = shown(headers={"Accept": "json"}, body={"id": "1", "n": 2})
    ok = shown(headers={"accept": "json", "Idempotency-Key": "k"}, body={"id": 9, "n": 3})
    assert presenting.request_diff(failed, ok) == [
        DiffRow("Header", "idempotency-key", "—", "k", "missing"),
        DiffRow("Body", "id", "(str)", "(int)", "changed"),
    ]


def test_diff_compares_query_values_and_the_method() -> None:
    rows = presenting.request_diff(
        shown(method="POST", query={"a": "1", "debug": "1"}), shown(method="GET", query={"a": "2"})
    )
    assert [(r.part, r.key, r.change) for r in rows] == [
        ("Method", "", "changed"),
        ("Query", "a", "changed"),
        ("Query", "debug", "added"),
    ]


def test_shown_request_redacts_again() -> None:
    row = attempt(
        url="https://user:pw@crm.example/v1?token=abc",
        request_headers={"Authorization": "Basic x", "Accept": "json"},
        request_body='{"password": "p"}',
    )
    request = presenting.shown_request(row, REDACTOR)
    assert "pw" not in request.url and "abc" not in request.url
    assert request.headers["Accept"] == "json"
    assert request.headers["Authorization"] != "Basic x"
    assert request.body["password"] != "p"


def test_attempt_view_diffs_only_failures_with_a_baseline() -> None:
    failed = attempt(request_headers={})
    baseline = attempt(outcome=Outcome.SUCCEEDED, status_code=200, request_headers={"x-a": "1"})
    view = presenting.attempt_view(failed, baseline, REDACTOR)
    assert [r.key for r in view.diff] == ["x-a"]
    assert view.baseline_url == baseline.url
    assert presenting.attempt_view(baseline, failed, REDACTOR).diff == []


def test_evidence_is_shortened_for_display() -> None:
    view = presenting.attempt_view(attempt(evidence={"body": "x" * 500}), None, REDACTOR)
    [(key, value)] = view.evidence
    assert key == "body" and len(value) == 400 and value.endswith("…")


# --- Execution --------------------------------------------------------------------------------


def test_console_url_points_at_the_standard_or_express_page() -> None:
    assert "#/v2/executions/details/arn:aws:states" in presenting.console_url(execution())
    express = execution(state_machine=machine(type=StateMachineType.EXPRESS))
    url = presenting.console_url(express)
    assert "#/express-executions/details/" in url
    assert url.endswith(f"startDate={int(T.timestamp() * 1000)}")


@time_machine.travel(T + timedelta(days=1), tick=False)
def test_redrive_note_explains_whether_redrive_applies() -> None:
    assert presenting.redrive_note(execution()).startswith("Redrivable from the console until")
    express = execution(state_machine=machine(type=StateMachineType.EXPRESS))
    assert presenting.redrive_note(express) == "Express executions cannot be redriven."
    succeeded = execution(status=ExecutionStatus.SUCCEEDED)
    assert presenting.redrive_note(succeeded).startswith("Only failed")
    old = execution(stop_date=T - timedelta(days=20))
    assert presenting.redrive_note(old).startswith("Not redrivable")


def test_event_timeline_rebuilds_the_history_from_attempts() -> None:
    row = attempt(
        entered_event_id=2,
        scheduled_event_id=3,
        closed_event_id=4,
        scheduled_at=T,
        closed_at=T + timedelta(seconds=1),
    )
    events = presenting.event_timeline(execution(), [row], REDACTOR)
    assert [(e.event_id, e.type) for e in events] == [
        (1, "ExecutionStarted"),
        (2, "TaskStateEntered"),
        (3, "TaskScheduled"),
        (4, "TaskFailed"),
        (None, "ExecutionFailed"),
    ]
    assert events[2].detail == "GET https://crm.example/v1/customers/42"


def test_execution_duration_is_empty_while_running() -> None:
    assert presenting.execution_duration(execution()) == "90.0 s"
    assert presenting.execution_duration(execution(stop_date=None)) == ""


# --- CSV --------------------------------------------------------------------------------------


def test_csv_cells_never_start_a_formula() -> None:
    assert presenting.csv_cell("=HYPERLINK()") == "'=HYPERLINK()"
    assert presenting.csv_cell("-1") == "'-1"
    assert presenting.csv_cell(None) == ""
    assert presenting.csv_cell(T) == T.isoformat()


def test_csv_writer_lines_parse_back() -> None:
    line = presenting._Echo().write("a,b\r\n")
    assert list(csv.reader(io.StringIO(line))) == [["a", "b"]]
