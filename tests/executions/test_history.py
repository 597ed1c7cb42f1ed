"""The history parser: attempts, retries, branches, logs, timestamps, and what it tolerates."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from executions.history import (
    HistoryParser,
    HttpStateInfo,
    ParsedAttempt,
    http_states_from_definition,
    normalize_log_event,
    parse_history,
    parse_timestamp,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "histories"
CONN = "arn:aws:events:eu-west-1:111122223333:connection/partner-api/81210c42-8af1-4fdb-9aa9-2b5e7d4b1a10"
HTTP = {"resourceType": "http", "resource": "invoke"}


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def attempts_of(name: str, index: int = 0) -> list[ParsedAttempt]:
    data = load(name)
    document = data[index] if isinstance(data, list) else data
    return parse_history(document["events"], document.get("definition"))


def params(url: str = "https://api.example.com/v1/x", method: str = "GET", **extra: Any) -> str:
    return json.dumps(
        {"ApiEndpoint": url, "Method": method, "Authentication": {"ConnectionArn": CONN}, **extra}
    )


class Events:
    """A tiny history builder: ids count up, timestamps advance 100 ms per event."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def add(
        self, type_: str, prev: int, details: dict[str, Any] | None = None, key: str = ""
    ) -> int:
        event: dict[str, Any] = {
            "id": len(self.events) + 1,
            "previousEventId": prev,
            "type": type_,
            "timestamp": 1793614500.0 + len(self.events) / 10,
        }
        if details is not None:
            event[key or type_[0].lower() + type_[1:] + "EventDetails"] = details
        self.events.append(event)
        return len(self.events)

    def entered(self, name: str, prev: int) -> int:
        return self.add("TaskStateEntered", prev, {"name": name}, "stateEnteredEventDetails")

    def exited(self, name: str, prev: int) -> int:
        return self.add("TaskStateExited", prev, {"name": name}, "stateExitedEventDetails")

    def scheduled(self, prev: int, parameters: str | None = None, **extra: Any) -> int:
        return self.add(
            "TaskScheduled", prev, {**HTTP, "parameters": parameters or params(), **extra}
        )

    def call_ok(self, prev: int, status: int = 200) -> int:
        started = self.add("TaskStarted", self.scheduled(prev), dict(HTTP))
        out = json.dumps(
            {
                "Headers": {"x": ["1"]},
                "ResponseBody": "plain text",
                "StatusCode": status,
                "StatusText": "OK",
            }
        )
        return self.add("TaskSucceeded", started, {**HTTP, "output": out})

    def call_fail(self, prev: int, error: str, cause: str = "", type_: str = "TaskFailed") -> int:
        started = self.add("TaskStarted", self.scheduled(prev), dict(HTTP))
        return self.add(type_, started, {**HTTP, "error": error, "cause": cause})


# --------------------------------------------------------------------------- attempts


def test_a_successful_call_becomes_one_attempt_with_request_and_response() -> None:
    h = Events()
    entered = h.entered("CallApi", 0)
    h.exited("CallApi", h.call_ok(entered, 201))
    (attempt,) = parse_history(h.events)
    assert (attempt.state_name, attempt.attempt_number, attempt.outcome) == (
        "CallApi",
        1,
        "succeeded",
    )
    assert (attempt.method, attempt.url, attempt.connection_arn) == (
        "GET",
        "https://api.example.com/v1/x",
        CONN,
    )
    assert attempt.status_code == 201
    assert attempt.response_headers == {"x": ["1"]}
    assert attempt.response_body == "plain text"
    assert (attempt.entered_event_id, attempt.scheduled_event_id, attempt.closed_event_id) == (
        1,
        2,
        4,
    )
    assert attempt.duration_ms == 100  # started → closed
    assert attempt.final_attempt and not attempt.caught
    assert attempt.problems == []


def test_request_headers_query_and_body_come_from_the_parameters() -> None:
    h = Events()
    entered = h.entered("Post", 0)
    p = params(
        method="post",
        Headers={"X-Tenant": "t1"},
        QueryParameters={"q": "1"},
        RequestBody={"a": {"b": 1}},
    )
    h.add("TaskStarted", h.scheduled(entered, p), dict(HTTP))
    (attempt,) = parse_history(h.events)
    assert attempt.method == "POST"
    assert attempt.request_headers == {"X-Tenant": "t1"}
    assert attempt.request_query == {"q": "1"}
    assert attempt.request_body == {"a": {"b": 1}}
    assert attempt.outcome == "in_progress"


def test_invocation_config_connection_arn_is_read_too() -> None:
    h = Events()
    p = json.dumps(
        {
            "ApiEndpoint": "https://x.io",
            "Method": "GET",
            "InvocationConfig": {"ConnectionArn": CONN},
        }
    )
    h.add("TaskStarted", h.scheduled(h.entered("S", 0), p), dict(HTTP))
    assert parse_history(h.events)[0].connection_arn == CONN


def test_retries_number_attempts_within_one_state_entry() -> None:
    attempts = attempts_of("retries_503_then_success.json")
    assert [a.attempt_number for a in attempts] == [1, 2, 3]
    assert [a.outcome for a in attempts] == ["failed", "failed", "succeeded"]
    assert [a.final_attempt for a in attempts] == [False, False, True]
    assert [a.status_code for a in attempts] == [503, 503, 201]
    assert {a.entered_event_id for a in attempts} == {2}


def test_a_failure_without_catch_is_final_and_not_caught() -> None:
    attempts = attempts_of("deauthorized_cascade.json")
    assert [a.final_attempt for a in attempts] == [False, False, True]
    assert not any(a.caught for a in attempts)
    assert attempts[0].error == "States.Http.StatusCode.401" and attempts[0].status_code == 401
    assert attempts[1].status_code is None


def test_a_catch_marks_the_failure_caught() -> None:
    billing = next(
        a for a in attempts_of("parallel_interleaved.json") if a.state_name == "NotifyBilling"
    )
    assert billing.caught and billing.final_attempt
    assert billing.cause == "Internal Server Error"


def test_map_iterations_that_interleave_are_attributed_by_previous_event_id() -> None:
    attempts = {a.branch_path: a for a in attempts_of("map_iterations.json")}
    assert set(attempts) == {"EachCustomer[0]", "EachCustomer[1]", "EachCustomer[2]"}
    assert attempts["EachCustomer[1]"].url.endswith("/customers/102")
    assert attempts["EachCustomer[1]"].status_code == 404
    assert attempts["EachCustomer[2]"].url.endswith("/customers/103")
    assert attempts["EachCustomer[0]"].outcome == "succeeded"
    assert all(a.attempt_number == 1 for a in attempts.values())


def test_parallel_branches_that_interleave_get_their_own_branch_path() -> None:
    attempts = {a.state_name: a for a in attempts_of("parallel_interleaved.json")}
    assert attempts["NotifyBilling"].branch_path == "FanOut#0"
    assert attempts["NotifyShipping"].branch_path == "FanOut#1"
    assert attempts["NotifyShipping"].url == "https://ship.example.com/v2/notify"
    assert attempts["NotifyShipping"].status_code == 202


def test_states_after_a_parallel_state_return_to_the_top_level() -> None:
    h = Events()
    pe = h.add("ParallelStateEntered", 0, {"name": "Fan"}, "stateEnteredEventDetails")
    ps = h.add("ParallelStateStarted", pe)
    last = h.exited("A", h.call_ok(h.entered("A", ps)))
    joined = h.add("ParallelStateSucceeded", last)
    px = h.add("ParallelStateExited", joined, {"name": "Fan"}, "stateExitedEventDetails")
    h.call_ok(h.entered("After", px))
    paths = {a.state_name: a.branch_path for a in parse_history(h.events)}
    assert paths == {"A": "Fan#0", "After": ""}


def test_nested_map_inside_parallel_paths_name_both_levels() -> None:
    h = Events()
    pe = h.add("ParallelStateEntered", 0, {"name": "Fan"}, "stateEnteredEventDetails")
    ps = h.add("ParallelStateStarted", pe)
    me = h.add("MapStateEntered", ps, {"name": "Each"}, "stateEnteredEventDetails")
    ms = h.add("MapStateStarted", me, {"length": 1})
    it = h.add("MapIterationStarted", ms, {"name": "Each", "index": 4})
    h.call_ok(h.entered("Call", it))
    assert parse_history(h.events)[0].branch_path == "Fan#0/Each[4]"


def test_only_http_tasks_are_attempts() -> None:
    attempts = attempts_of("unknown_error.json")
    assert [a.state_name for a in attempts] == ["Publish"]


def test_attempts_are_yielded_as_soon_as_their_fate_is_known() -> None:
    events = load("retries_503_then_success.json")["events"]
    parser = HistoryParser()
    seen_after: list[int] = []
    for event in events:
        for attempt in parser.feed([event]):
            seen_after.append(event["id"])
            assert attempt.closed_event_id is not None
    # Each attempt waits for the next event: a failure for a retry or not, a success for
    # whether its state then failed anyway (ResultSelector/ResultPath/OutputPath).
    assert seen_after == [6, 9, 12]
    assert list(parser.finish()) == []


def test_the_parser_keeps_only_open_state_on_a_long_history() -> None:
    h = Events()
    prev = 0
    for index in range(3_000):  # ~24,000 events: sequential HTTP states
        name = f"S{index % 7}"
        prev = h.exited(name, h.call_ok(h.entered(name, prev)))
    parser = HistoryParser()
    count = 0
    for start in range(0, len(h.events), 1000):
        count += sum(1 for _ in parser.feed(h.events[start : start + 1000]))
        assert len(parser._links) < 10 and len(parser._open) < 10
    assert count == 3_000


def test_finish_flushes_a_call_in_flight_as_in_progress() -> None:
    h = Events()
    h.add("TaskStarted", h.scheduled(h.entered("S", 0)), dict(HTTP))
    parser = HistoryParser()
    assert list(parser.feed(h.events)) == []
    (attempt,) = parser.finish()
    assert attempt.outcome == "in_progress" and attempt.closed_event_id is None


def test_a_timed_out_task_carries_its_timeout_seconds() -> None:
    (attempt,) = attempts_of("timeout_task.json")
    assert attempt.outcome == "timed_out"
    assert attempt.error == "States.Timeout" and attempt.cause == ""
    assert attempt.timeout_seconds == 10
    assert attempt.duration_ms == 10_000


def test_an_execution_timeout_ends_the_call_in_flight() -> None:
    h = Events()
    started = h.add("TaskStarted", h.scheduled(h.entered("S", 0)), dict(HTTP))
    h.add("ExecutionTimedOut", started, {"error": "States.Timeout"})
    (attempt,) = parse_history(h.events)
    assert attempt.outcome == "timed_out" and attempt.closed_event_type == "ExecutionTimedOut"


def test_an_aborted_state_ends_its_call_as_aborted_with_a_problem() -> None:
    # Was "failed" before issue 15 item 9: a call cut off is not a failure of its endpoint.
    h = Events()
    started = h.add("TaskStarted", h.scheduled(h.entered("S", 0)), dict(HTTP))
    h.add("TaskStateAborted", started, {"name": "S"}, "stateExitedEventDetails")
    (attempt,) = parse_history(h.events)
    assert attempt.outcome == "aborted" and attempt.closed_event_type == "TaskStateAborted"
    assert attempt.problems


def test_stop_execution_ends_the_call_in_flight_as_aborted_with_its_error_and_cause() -> None:
    h = Events()
    h.add("TaskStarted", h.scheduled(h.entered("S", 0)), dict(HTTP))
    # AWS links ExecutionAborted to event 0 (reference §8).
    h.add("ExecutionAborted", 0, {"error": "Ops.Cancelled", "cause": "deploy rolled back"})
    (attempt,) = parse_history(h.events)
    assert (attempt.outcome, attempt.closed_event_type) == ("aborted", "ExecutionAborted")
    assert (attempt.error, attempt.cause) == ("Ops.Cancelled", "deploy rolled back")


def test_stop_execution_fixture_keeps_the_callers_error_and_cause() -> None:
    (attempt,) = attempts_of("aborted_mid_call.json", 0)
    assert (attempt.outcome, attempt.closed_event_type) == ("aborted", "ExecutionAborted")
    assert attempt.error == "Ops.DeployRollback" and "release-bot" in attempt.cause
    assert attempt.duration_ms == 12460  # from TaskScheduled to the stop


def test_an_abort_linked_to_the_sibling_failure_ends_the_call_left_in_flight() -> None:
    # AWS links TaskStateAborted to the first failure, not to the call it cut off (§8).
    failed, cut = attempts_of("aborted_mid_call.json", 1)
    assert (failed.outcome, failed.status_code, failed.final_attempt) == ("failed", 503, True)
    assert (cut.outcome, cut.closed_event_type, cut.closed_event_id) == (
        "aborted",
        "TaskStateAborted",
        14,
    )
    assert (cut.url, cut.branch_path) == (
        "https://api.partner.example/v1/customers/202",
        "EachCustomer[1]",
    )


def test_several_calls_a_caught_map_failure_cut_off_each_end_at_their_own_abort() -> None:
    # Reference §8: every sibling's TaskStateAborted links to the first failure (event 16).
    failed, *cut = attempts_of("siblings_cut_off.json", 0)
    assert (failed.outcome, failed.status_code, failed.branch_path) == (
        "failed",
        503,
        "EachOrder[0]",
    )
    assert sorted(
        (a.branch_path, a.outcome, a.closed_event_type, a.closed_event_id) for a in cut
    ) == [
        ("EachOrder[1]", "aborted", "TaskStateAborted", 18),
        ("EachOrder[2]", "aborted", "TaskStateAborted", 20),
    ]
    assert {a.aborted_by for a in cut} == {
        "GetOrder failed (States.Http.StatusCode.503) in EachOrder[0]"
    }
    assert all(a.error == "" and a.status_code is None and a.duration_ms for a in cut)


def test_several_calls_a_parallel_branch_failure_cut_off_end_aborted_not_with_the_execution() -> (
    None
):
    failed, *cut = attempts_of("siblings_cut_off.json", 1)
    assert (failed.state_name, failed.outcome) == ("NotifyBilling", "failed")
    assert sorted((a.state_name, a.outcome, a.closed_event_type) for a in cut) == [
        ("NotifyCrm", "aborted", "TaskStateAborted"),
        ("NotifyShipping", "aborted", "TaskStateAborted"),
    ]
    assert {a.aborted_by for a in cut} == {
        "NotifyBilling failed (States.Http.StatusCode.500) in Fanout#0"
    }


def test_an_abort_whose_map_catches_the_failure_still_ends_the_call_in_flight() -> None:
    # With a Catch the execution goes on: the call must not be left "in progress" (unstored).
    h = Events()
    one = h.add("TaskStarted", h.scheduled(h.entered("A", 0)), dict(HTTP))
    two = h.add("TaskStarted", h.scheduled(h.entered("B", 0)), dict(HTTP))
    failed = h.add("TaskFailed", one, {**HTTP, "error": "States.Http.StatusCode.500"})
    h.add("TaskStateAborted", failed)
    h.add("ExecutionSucceeded", h.add("PassStateEntered", failed, {"name": "Handled"}))
    by_state = {a.state_name: a for a in parse_history(h.events)}
    assert by_state["A"].outcome == "failed"
    assert (by_state["B"].outcome, by_state["B"].scheduled_event_id) == ("aborted", two - 1)


def test_a_call_taken_for_the_aborted_one_that_then_answers_keeps_its_answer() -> None:
    # The abort was of a state whose own call had ended (an inner Map's timed-out iteration);
    # the one call in flight belongs to another branch, which goes on and answers.
    h = Events()
    inner = h.add("TaskStarted", h.scheduled(h.entered("Inner", 0)), dict(HTTP))
    outer = h.add("TaskStarted", h.scheduled(h.entered("Outer", 0)), dict(HTTP))
    timed_out = h.add("TaskTimedOut", inner, {**HTTP, "error": "States.Timeout"})
    h.add("TaskStateAborted", timed_out)
    answer = json.dumps({"Headers": {}, "ResponseBody": {}, "StatusCode": 200, "StatusText": "OK"})
    h.add("TaskSucceeded", outer, {**HTTP, "output": answer})
    by_state = {a.state_name: a for a in parse_history(h.events)}
    assert by_state["Outer"].outcome == "succeeded" and by_state["Outer"].status_code == 200
    assert by_state["Inner"].outcome == "timed_out"


def test_an_abort_with_several_calls_in_flight_guesses_none_of_them() -> None:
    h = Events()
    for name in ("A", "B", "C"):
        h.add("TaskStarted", h.scheduled(h.entered(name, 0)), dict(HTTP))
    h.add("TaskStateAborted", 0)
    h.add("ExecutionFailed", 0, {"error": "States.Http.StatusCode.500"})
    attempts = parse_history(h.events)
    # Each ends with the execution instead, cut off: aborted too, and by the right event.
    assert [(a.outcome, a.closed_event_type) for a in attempts] == [
        ("aborted", "ExecutionFailed")
    ] * 3
    assert {a.aborted_by for a in attempts} == {"States.Http.StatusCode.500"}


# --------------------------------------------------------------------------- before any request


def test_a_state_that_failed_before_its_request_is_an_attempt_when_the_definition_is_known() -> (
    None
):
    (attempt,) = attempts_of("jsonpath_not_found.json")
    assert (attempt.state_name, attempt.method, attempt.connection_arn) == ("Lookup", "GET", CONN)
    assert attempt.scheduled_event_id is None and attempt.closed_event_type == "ExecutionFailed"
    assert attempt.error == "States.Runtime" and "$.customer.id" in attempt.cause
    assert attempt.url == ""  # ApiEndpoint.$ is computed at run time


def test_without_the_definition_a_failure_before_any_request_is_not_guessed_to_be_http() -> None:
    document = load("jsonpath_not_found.json")
    assert parse_history(document["events"]) == []


def test_a_forbidden_header_failure_before_scheduling_uses_the_definition() -> None:
    (attempt,) = attempts_of("forbidden_header_runtime.json", 1)
    assert (
        attempt.state_name == "Conditional"
        and attempt.url == "https://api.partner.example/v1/catalog"
    )


def test_a_jsonata_evaluation_failure_is_an_attempt_of_the_http_state() -> None:
    definition = {
        "StartAt": "J",
        "States": {
            "J": {
                "Type": "Task",
                "Resource": "arn:aws:states:::http:invoke",
                "Arguments": {"ApiEndpoint": "{% $states.input.url %}", "Method": "GET"},
            }
        },
    }
    h = Events()
    entered = h.entered("J", 0)
    failed = h.add(
        "EvaluationFailed",
        entered,
        {"error": "States.QueryEvaluationError", "cause": "bad", "state": "J"},
    )
    h.add("ExecutionFailed", failed, {"error": "States.QueryEvaluationError"})
    (attempt,) = parse_history(h.events, definition)
    assert attempt.error == "States.QueryEvaluationError" and attempt.final_attempt
    assert attempt.url == ""


# --------------------------------------------------------------------------- redrive


def test_attempts_after_a_redrive_carry_the_new_redrive_count() -> None:
    attempts = attempts_of("redrive.json")
    assert [(a.outcome, a.redrive_count, a.attempt_number) for a in attempts] == [
        ("failed", 0, 1),
        ("succeeded", 1, 1),
    ]


def test_a_redrive_that_reschedules_without_reentering_continues_the_state() -> None:
    h = Events()
    failed = h.call_fail(h.entered("S", 0), "States.Http.StatusCode.502", "Bad Gateway")
    end = h.add("ExecutionFailed", failed, {"error": "States.Http.StatusCode.502"})
    redriven = h.add("ExecutionRedriven", end, {"redriveCount": 1})
    started = h.add("TaskStarted", h.scheduled(redriven), dict(HTTP))
    h.add("TaskSucceeded", started, {**HTTP, "output": '{"StatusCode": 200}'})
    attempts = parse_history(h.events)
    assert [(a.state_name, a.attempt_number, a.redrive_count) for a in attempts] == [
        ("S", 1, 0),
        ("S", 2, 1),
    ]


# --------------------------------------------------------------------------- logs


def test_log_records_normalise_to_history_events() -> None:
    message = json.dumps(
        {
            "id": "5",
            "type": "TaskFailed",
            "previous_event_id": "4",
            "event_timestamp": "1716992195123",
            "details": {
                "resourceType": "http",
                "error": "States.Http.StatusCode.503",
                "cause": "Service Unavailable",
            },
            "execution_arn": "arn:aws:states:eu-west-1:1:execution:Sm:run-42",
            "redrive_count": "1",
        }
    )
    event = normalize_log_event(message)
    assert event is not None
    assert (event["id"], event["previousEventId"], event["type"]) == (5, 4, "TaskFailed")
    assert event["timestamp"] == datetime(2024, 5, 29, 14, 16, 35, 123000, tzinfo=UTC)
    assert event["taskFailedEventDetails"]["error"] == "States.Http.StatusCode.503"
    assert (event["_execution_arn"], event["_redrive_count"]) == (
        "arn:aws:states:eu-west-1:1:execution:Sm:run-42",
        1,
    )


@pytest.mark.parametrize(
    ("type_", "key"),
    [
        ("TaskStateEntered", "stateEnteredEventDetails"),
        ("PassStateExited", "stateExitedEventDetails"),
        ("MapIterationStarted", "mapIterationStartedEventDetails"),
        ("ExecutionRedriven", "executionRedrivenEventDetails"),
    ],
)
def test_log_details_land_under_the_history_member_name(type_: str, key: str) -> None:
    event = normalize_log_event({"id": "2", "type": type_, "details": {"name": "X"}})
    assert event is not None and event[key] == {"name": "X"}


@pytest.mark.parametrize(
    "message", ["not json", "[]", '{"type": "TaskFailed"}', '{"id": "x", "type": "T"}', "", b"\xff"]
)
def test_unusable_log_records_are_none(message: str | bytes) -> None:
    assert normalize_log_event(message) is None


def test_error_level_logs_without_scheduling_still_yield_the_failure() -> None:
    # At log level ERROR only failures are logged: no TaskStateEntered, no TaskScheduled.
    definition = {
        "StartAt": "Quote",
        "States": {
            "Quote": {
                "Type": "Task",
                "Resource": "arn:aws:states:::http:invoke",
                "Parameters": {"ApiEndpoint": "https://q.example.com/v1/q", "Method": "POST"},
            }
        },
    }
    records = [
        {
            "id": "5",
            "type": "TaskFailed",
            "previous_event_id": "4",
            "event_timestamp": "1716992195123",
            "details": {
                "resourceType": "http",
                "error": "States.Http.StatusCode.503",
                "cause": "Service Unavailable",
            },
        },
        {
            "id": "6",
            "type": "ExecutionFailed",
            "previous_event_id": "5",
            "event_timestamp": "1716992195130",
            "details": {"error": "States.Http.StatusCode.503"},
        },
    ]
    events = [normalize_log_event(r) for r in records]
    (attempt,) = parse_history([e for e in events if e], definition)
    assert (attempt.state_name, attempt.method, attempt.url, attempt.status_code) == (
        "Quote",
        "POST",
        "https://q.example.com/v1/q",
        503,
    )
    assert attempt.final_attempt


def test_express_log_attempts_parse_per_execution() -> None:
    records = load("express_logs.json")["events"]
    events = [normalize_log_event(r["message"]) for r in records]
    bad = sorted(
        (e for e in events if e and e["_execution_arn"].endswith("quote-bad")),
        key=lambda e: e["id"],
    )
    (attempt,) = parse_history(bad)
    assert attempt.status_code == 503 and attempt.duration_ms == 900


# --------------------------------------------------------------------------- timestamps


@pytest.mark.parametrize(
    "value",
    [
        1793614503.25,
        "1793614503.25",
        1793614503250,
        "1793614503250",
        "2026-11-02T10:15:03.250Z",
        "2026-11-02T10:15:03.250+00:00",
        "2026-11-02 11:15:03.250+01:00",
        datetime(2026, 11, 2, 10, 15, 3, 250000, tzinfo=UTC),
        datetime(2026, 11, 2, 10, 15, 3, 250000),  # naive: taken as UTC
    ],
)
def test_timestamps_in_every_format_become_utc_datetimes(value: object) -> None:
    assert parse_timestamp(value) == datetime(2026, 11, 2, 10, 15, 3, 250000, tzinfo=UTC)


@pytest.mark.parametrize(
    "value", [None, True, "", "soon", float("nan"), float("inf"), 1e300, [], "9" * 80]
)
def test_unusable_timestamps_are_none(value: object) -> None:
    assert parse_timestamp(value) is None


def test_iso_timestamp_histories_give_durations() -> None:
    attempts = attempts_of("rate_limited_429_iso_timestamps.json")
    assert all(a.duration_ms is not None for a in attempts)
    assert attempts[0].scheduled_at is not None and attempts[0].scheduled_at.tzinfo is UTC


# --------------------------------------------------------------------------- bad input


def test_malformed_fields_become_problems_not_exceptions() -> None:
    document = load("missing_fields.json")
    parser = HistoryParser()
    attempts = [*parser.feed(document["events"]), *parser.finish()]
    broken = attempts[0]
    assert broken.parameters_raw is not None and broken.parameters_raw.startswith('{"ApiEndpoint"')
    assert broken.response_truncated
    assert any("not valid JSON" in p for p in broken.problems)
    assert parser.problems  # the id-less / typeless / None events


def test_repeated_events_from_overlapping_pages_are_ignored() -> None:
    events = load("retries_503_then_success.json")["events"]
    parser = HistoryParser()
    attempts = [*parser.feed(events[:8]), *parser.feed(events[5:]), *parser.finish()]
    assert [a.attempt_number for a in attempts] == [1, 2, 3]
    assert any("repeated" in p for p in parser.problems)


@pytest.mark.parametrize(
    "events", [None, 3, "events", [None, 1, "x", {}], {"events": None}, [{"type": None}]]
)
def test_garbage_events_never_raise(events: Any) -> None:
    parser = HistoryParser()
    assert [*parser.feed(events), *parser.finish()] == []


def test_the_problem_list_is_bounded() -> None:
    parser = HistoryParser()
    list(parser.feed([None] * 1000))  # type: ignore[list-item]
    assert len(parser.problems) == 100 and "more problems" in parser.problems[-1]


# --------------------------------------------------------------------------- definitions


def test_http_states_are_found_in_branches_and_map_processors() -> None:
    http = {"Type": "Task", "Resource": "arn:aws:states:::http:invoke"}
    definition = {
        "StartAt": "Top",
        "States": {
            "Top": {
                **http,
                "Parameters": {
                    "ApiEndpoint": "https://a.io/x",
                    "Method": "post",
                    "Headers": {"X-Key.$": "$.k", "Accept": "json"},
                    "InvocationConfig": {"ConnectionArn": CONN},
                },
            },
            "Par": {
                "Type": "Parallel",
                "Branches": [
                    {
                        "StartAt": "B",
                        "States": {"B": {**http, "Parameters": {"ApiEndpoint.$": "$.u"}}},
                    }
                ],
            },
            "Old": {"Type": "Map", "Iterator": {"StartAt": "I", "States": {"I": http}}},
            "New": {
                "Type": "Map",
                "ItemProcessor": {
                    "StartAt": "P",
                    "States": {
                        "P": {
                            **http,
                            "Resource": "arn:aws-us-gov:states:::http:invoke",
                            "Arguments": {"ApiEndpoint": "{% $x %}", "Method": "GET"},
                        }
                    },
                },
            },
            "Lambda": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke"},
            "Token": {"Type": "Task", "Resource": "arn:aws:states:::http:invoke.waitForTaskToken"},
        },
    }
    states = http_states_from_definition(json.dumps(definition))
    assert set(states) == {"Top", "B", "I", "P"}
    assert states["Top"] == HttpStateInfo(
        "Top", "https://a.io/x", "POST", CONN, frozenset({"x-key", "accept"})
    )
    assert (
        states["B"].endpoint is None
        and states["P"].endpoint is None
        and states["P"].method == "GET"
    )


@pytest.mark.parametrize(
    "definition",
    [None, "", "{", "[]", '{"States": 3}', '{"States": {"A": 1}}', b"\x00", {"States": None}],
)
def test_unreadable_definitions_give_no_http_states(definition: Any) -> None:
    assert http_states_from_definition(definition) == {}


def test_a_call_in_flight_when_a_sibling_fails_the_execution_keeps_no_foreign_error() -> None:
    """Map: iteration 0 gets a 404 and fails the execution while iteration 1's call is in
    flight; the second call must not be reported as a second 404."""
    from executions.history import parse_history

    def http(kind: str, id_: int, prev: int, **details: object) -> dict[str, object]:
        key = {
            "TaskScheduled": "taskScheduledEventDetails",
            "TaskStarted": "taskStartedEventDetails",
            "TaskFailed": "taskFailedEventDetails",
        }[kind]
        return {
            "id": id_,
            "previousEventId": prev,
            "type": kind,
            "timestamp": 1716992192 + id_,
            key: {"resourceType": "http", "resource": "invoke", **details},
        }

    params = '{"ApiEndpoint": "https://api.example.com/v1/items/1", "Method": "GET"}'
    events = [
        {
            "id": 1,
            "previousEventId": 0,
            "type": "ExecutionStarted",
            "timestamp": 1716992192,
            "executionStartedEventDetails": {"input": "{}"},
        },
        {
            "id": 2,
            "previousEventId": 1,
            "type": "MapStateEntered",
            "timestamp": 1716992193,
            "stateEnteredEventDetails": {"name": "Each"},
        },
        {"id": 3, "previousEventId": 2, "type": "MapStateStarted", "timestamp": 1716992193},
        {
            "id": 4,
            "previousEventId": 3,
            "type": "MapIterationStarted",
            "timestamp": 1716992193,
            "mapIterationStartedEventDetails": {"name": "Each", "index": 0},
        },
        {
            "id": 5,
            "previousEventId": 3,
            "type": "MapIterationStarted",
            "timestamp": 1716992193,
            "mapIterationStartedEventDetails": {"name": "Each", "index": 1},
        },
        {
            "id": 6,
            "previousEventId": 4,
            "type": "TaskStateEntered",
            "timestamp": 1716992194,
            "stateEnteredEventDetails": {"name": "Call"},
        },
        {
            "id": 7,
            "previousEventId": 5,
            "type": "TaskStateEntered",
            "timestamp": 1716992194,
            "stateEnteredEventDetails": {"name": "Call"},
        },
        http("TaskScheduled", 8, 6, parameters=params),
        http("TaskScheduled", 9, 7, parameters=params),
        http("TaskStarted", 10, 8),
        http("TaskStarted", 11, 9),
        http("TaskFailed", 12, 10, error="States.Http.StatusCode.404", cause="Not Found"),
        {
            "id": 13,
            "previousEventId": 12,
            "type": "ExecutionFailed",
            "timestamp": 1716992205,
            "executionFailedEventDetails": {
                "error": "States.Http.StatusCode.404",
                "cause": "Not Found",
            },
        },
    ]
    attempts = parse_history(events)
    assert len(attempts) == 2
    failed = [a for a in attempts if a.error == "States.Http.StatusCode.404"]
    assert len(failed) == 1 and failed[0].status_code == 404
    cut = next(a for a in attempts if a is not failed[0])
    assert cut.error == "" and cut.status_code is None
    assert any("in flight" in p for p in cut.problems)
    # Cut off by the sibling's failure: aborted, so the 404 is counted once (issue 15 item 9).
    assert (cut.outcome, cut.closed_event_type) == ("aborted", "ExecutionFailed")
    assert failed[0].outcome == "failed"
