"""What the events say of the execution itself: its own error, newest event id, status, times."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from executions.history import (
    ExecutionSummary,
    HttpStateInfo,
    LogEventsByExecution,
    summarize_logged,
)

T0 = 1_764_600_000_000  # ms
ARN = "arn:aws:states:eu-west-1:111122223333:express:orders:run-7:5f0c2a1e"


def test_history_summary_keeps_the_newest_event_id_and_the_executions_own_error() -> None:
    first = ExecutionSummary().after(
        [{"id": 1, "type": "ExecutionStarted"}, {"id": "3", "type": "TaskStateEntered"}]
    )
    second = first.after(
        [
            {"id": 2, "type": "TaskFailed", "taskFailedEventDetails": {"error": "States.Http"}},
            {
                "id": 4,
                "type": "ExecutionFailed",
                "executionFailedEventDetails": {"error": "Boom", "cause": None},
            },
        ]
    )
    assert first == ExecutionSummary(last_event_id=3)
    assert second == ExecutionSummary(last_event_id=4, error="Boom", cause="")


def test_history_summary_skips_what_the_parser_flags_as_unreadable() -> None:
    events: Any = ["not an event", {"id": True}, {"id": 2**63}, {"id": 1.5}, {"id": 7}]
    assert ExecutionSummary().after(events) == ExecutionSummary(last_event_id=7)
    assert ExecutionSummary(last_event_id=9).after({"events": []}).last_event_id == 9


def _log(event_id: int, kind: str, ms: int, **details: Any) -> dict[str, Any]:
    record = {
        "id": str(event_id),
        "previous_event_id": str(event_id - 1),
        "type": kind,
        "event_timestamp": str(ms),
        "execution_arn": ARN,
        "redrive_count": "1",
        "details": details,
    }
    return {"eventId": f"e{event_id}", "timestamp": ms, "message": json.dumps(record)}


def test_log_events_are_regrouped_per_execution_in_id_order_without_repeats() -> None:
    collected = LogEventsByExecution(newest_ms=5)
    for raw in [_log(2, "ExecutionFailed", T0 + 2), _log(1, "ExecutionStarted", T0 + 1)]:
        collected.add(raw)
    collected.add(_log(2, "ExecutionFailed", T0 + 2))  # an overlapping window repeats it
    collected.add({"eventId": "junk", "timestamp": T0 + 3, "message": "not json"})
    [(arn, events)] = collected.executions()
    assert arn == ARN
    assert [e["id"] for e in events] == [1, 2]
    assert collected.newest_ms == T0 + 3


def test_logged_execution_takes_status_times_and_error_from_its_events() -> None:
    collected = LogEventsByExecution()
    collected.add(_log(1, "ExecutionStarted", T0 + 1000))
    collected.add(_log(2, "ExecutionFailed", T0 + 2000, error="Boom", cause="it broke"))
    [(arn, events)] = collected.executions()
    logged = summarize_logged(arn, events)
    assert (logged.status, logged.finished, logged.name) == ("FAILED", True, "run-7")
    assert logged.start == datetime.fromtimestamp((T0 + 1000) / 1000, UTC)
    assert logged.stop == datetime.fromtimestamp((T0 + 2000) / 1000, UTC)
    assert (logged.error, logged.cause) == ("Boom", "it broke")
    assert (logged.redrive_count, logged.last_event_id) == (1, 2)


def test_logged_execution_without_a_terminal_event_is_running() -> None:
    logged = summarize_logged("short-arn", [{"id": 3, "type": "TaskStateEntered"}])
    assert (logged.status, logged.finished, logged.name) == ("RUNNING", False, "short-arn")
    assert (logged.start, logged.stop, logged.last_event_id) == (None, None, 3)


def test_http_state_info_as_stored_on_the_state_machine() -> None:
    info = HttpStateInfo("Call", "https://x.test", "GET", None, frozenset({"b", "a"}))
    assert info.as_dict() == {
        "endpoint": "https://x.test",
        "method": "GET",
        "connection_arn": None,
        "header_names": ["a", "b"],
    }
