"""Issue 15 item 5: Distributed Map Runs — parents' MapRun* events, children linked by the ARN
that names the Map Run, a run's failures together (one bad batch vs a broken endpoint), and
States.ExceedToleratedFailureThreshold explained."""

from __future__ import annotations

import io
import json
from typing import Any

from django.core.management import call_command

from executions.classify import THRESHOLD_ERROR, map_run_failures, map_run_hint
from executions.history import map_run_key, map_runs_in, parse_timestamp, run_of_child
from tests.executions.test_classify import FIXTURES

FIXTURE = FIXTURES / "map_run_failures.json"
RUN = "arn:aws:states:eu-west-1:111122223333:mapRun:Orders/ProcessOrders:5f0c6a1e"
CHILD = "arn:aws:states:eu-west-1:111122223333:execution:Orders/ProcessOrders:0000-1"


def _report() -> dict[str, Any]:
    out = io.StringIO()
    call_command("classify_history", str(FIXTURE), stdout=out)
    result: dict[str, Any] = json.loads(out.getvalue())
    return result


def test_children_are_linked_to_their_map_run_and_its_failures_shown_together() -> None:
    result = _report()
    broken, bad_items = result["map_runs"]
    assert broken["parent_execution_arn"].endswith(":execution:Orders:nightly-1")
    assert (broken["status"], broken["error"], broken["map_state"]) == (
        "FAILED",
        THRESHOLD_ERROR,
        "ProcessOrders",
    )
    # The label repeats across the parent's executions: each child goes to the run open when
    # it started.
    by_run: dict[str, list[str]] = {}
    for row in result["attempts"]:
        by_run.setdefault(row["map_run"], []).append(row["execution_arn"])
    assert [len(by_run[broken["map_run_arn"]]), len(by_run[bad_items["map_run_arn"]])] == [3, 4]
    assert (broken["children"], broken["failing_children"], broken["verdict"]) == (3, 3, "endpoint")
    assert broken["failures"] == [
        {"method": "POST", "endpoint": "https://api.partner.example/v1/orders/{id}",
         "category": "server_error", "subcategory": "http_503", "children": 3}
    ]  # fmt: skip
    assert "ToleratedFailurePercentage" in broken["hint"]
    assert "the endpoint is the problem, not the items" in broken["hint"]
    assert (bad_items["children"], bad_items["failing_children"]) == (4, 2)
    assert bad_items["verdict"] == "items" and "bad batch of items" in bad_items["hint"]


def test_a_history_without_map_runs_has_no_map_run_report() -> None:
    out = io.StringIO()
    call_command("classify_history", str(FIXTURES / "socket.json"), stdout=out)
    result = json.loads(out.getvalue())
    assert list(result) == ["attempts"]
    assert all(row["map_run"] == "" for row in result["attempts"])


def _event(i: int, kind: str, prev: int, **details: Any) -> dict[str, Any]:
    return {
        "id": i,
        "previousEventId": prev,
        "type": kind,
        "timestamp": 1793620000.0 + i,
        **details,
    }


def test_a_redriven_map_run_runs_again_and_counts_its_redrives() -> None:
    events = [
        _event(1, "MapStateEntered", 0, stateEnteredEventDetails={"name": "Fan"}),
        _event(2, "MapRunStarted", 1, mapRunStartedEventDetails={"mapRunArn": RUN}),
        _event(3, "MapRunFailed", 2, mapRunFailedEventDetails={"error": THRESHOLD_ERROR}),
        _event(4, "ExecutionRedriven", 0, executionRedrivenEventDetails={"redriveCount": 1}),
        _event(5, "MapRunRedriven", 4, mapRunRedrivenEventDetails={"mapRunArn": RUN, "redriveCount": 1}),
        _event(6, "MapRunSucceeded", 5),
    ]  # fmt: skip
    (run,) = map_runs_in(events, "parent")
    assert (run.status, run.error, run.redrive_count, run.map_state) == ("SUCCEEDED", "", 1, "Fan")
    assert run_of_child(CHILD, parse_timestamp(1793620002.5), [run]) is run


def test_map_run_keys_read_only_map_runs_and_their_children() -> None:
    assert map_run_key(RUN) == map_run_key(CHILD) == ("Orders", "ProcessOrders")
    for other in ("arn:aws:states:eu-west-1:1:execution:Orders:plain", "junk", None, 7):
        assert map_run_key(other) == ("", "")
    assert run_of_child("arn:aws:states:eu-west-1:1:execution:Orders:plain", None, []) is None


def test_mixed_failures_and_an_unknown_end_are_said_as_such() -> None:
    rows = [
        {"execution_arn": "a", "method": "GET", "endpoint": "e1", "category": "server_error",
         "subcategory": "http_500"},
        {"execution_arn": "b", "method": "GET", "endpoint": "e2", "category": "timeout",
         "subcategory": "task_timeout"},
    ]  # fmt: skip
    summary = map_run_failures(rows)
    assert summary["verdict"] == "mixed"
    assert "2 different ways" in map_run_hint("States.TaskFailed", summary)
    assert "no child execution was given" in map_run_hint(THRESHOLD_ERROR, map_run_failures([]))


def test_junk_map_run_events_never_raise() -> None:
    junk: list[Any] = [
        None, 7, "MapRunStarted", {"type": "MapRunStarted"},
        {"type": "MapRunStarted", "mapRunStartedEventDetails": "x"},
        {"type": "MapRunFailed", "id": "z", "previousEventId": {"a": 1},
         "mapRunFailedEventDetails": {"error": {"nested": True}, "cause": ["list"]}},
        {"type": "MapRunRedriven", "mapRunRedrivenEventDetails": {"redriveCount": "many"}},
        {"type": "MapStateEntered", "stateEnteredEventDetails": {"name": 5}},
    ]  # fmt: skip
    runs = map_runs_in(junk)
    # Two starts; the failure ends the newest, the ARN-less redrive reopens the newest.
    assert [r.status for r in runs] == ["RUNNING", "RUNNING"]
    assert all(isinstance(r.error, str) for r in runs)
