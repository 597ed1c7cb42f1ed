"""The sandbox cuts off sibling calls like AWS when a Parallel branch or Map iteration fails.

Reference §8 and tests/fixtures/histories/siblings_cut_off.json: each sibling mid-call gets a
TaskStateAborted (a Map iteration then a MapIterationAborted) linking to the failure, before
the fan-out's own …StateFailed; a sibling cut off before it scheduled its task records nothing.
"""

from __future__ import annotations

from typing import Any

import pytest

from executions.classify import classify
from executions.history import parse_history
from tests.sandbox.support import Aws, Execution, http_task

SLOW = "/slow?seconds=1.9"


def _call(name: str, parameters: dict[str, Any]) -> dict[str, Any]:
    return {"StartAt": name, "States": {name: http_task(parameters)}}


def _get(url: str, connection: str) -> dict[str, Any]:
    return {"ApiEndpoint": url, "Method": "GET", "InvocationConfig": {"ConnectionArn": connection}}


def _run(aws: Aws, fanout: dict[str, Any], caught: bool, payload: Any = None) -> Execution:
    if caught:
        fanout = {**fanout, "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Handled"}]}
        fanout["Next"] = "Handled"
    else:
        fanout = {**fanout, "End": True}
    states: dict[str, Any] = {"Fanout": fanout}
    if caught:
        # A Wait outlives the siblings' late answers, which must not reach the history.
        states["Handled"] = {"Type": "Wait", "Seconds": 2, "End": True}
    machine = aws.state_machine({"StartAt": "Fanout", "States": states})
    try:
        run = aws.execute(machine, payload)
    finally:
        # Its failed execution is no business of the other tests sharing this sandbox.
        aws.sfn.delete_state_machine(stateMachineArn=machine)
    assert run.status == ("SUCCEEDED" if caught else "FAILED")
    return run


def _parallel(partner_url: str, connection: str, fail_after: str) -> dict[str, Any]:
    return {
        "Type": "Parallel",
        "Branches": [
            _call("Fails", _get(f"{partner_url}/status/500{fail_after}", connection)),
            _call("SlowA", _get(partner_url + SLOW, connection)),
            _call("SlowB", _get(partner_url + SLOW, connection)),
        ],
    }


def _failure_id(run: Execution) -> int:
    [failure] = run.of_type("TaskFailed")
    return int(failure["id"])


@pytest.mark.parametrize("caught", [True, False])
def test_each_sibling_call_a_branch_failure_cuts_off_gets_an_abort_linked_to_it(
    aws: Aws, partner_url: str, basic_connection: str, caught: bool
) -> None:
    # The failure answers after the siblings are in flight: the shape under test is calls cut
    # off mid-call (one cut off before it is scheduled is the next test's).
    run = _run(aws, _parallel(partner_url, basic_connection, "?delay=0.5"), caught)
    failure = _failure_id(run)
    aborts = run.of_type("TaskStateAborted")
    assert [e["previousEventId"] for e in aborts] == [failure, failure]
    [joined] = run.of_type("ParallelStateFailed")
    assert max(e["id"] for e in aborts) < joined["id"]
    attempts = parse_history(run.events)
    by_state = {a.state_name: a for a in attempts}
    assert len(attempts) == 3, [(a.state_name, a.outcome) for a in attempts]
    assert by_state["Fails"].outcome == "failed"
    for name in ("SlowA", "SlowB"):
        cut = by_state[name]
        assert (cut.outcome, cut.closed_event_type) == ("aborted", "TaskStateAborted")
        result = classify(cut)
        assert result.category is None
        assert "Fails failed (States.Http.StatusCode.500)" in result.evidence["aborted_by"]


@pytest.mark.parametrize("round_", range(3))
def test_a_branch_cut_off_before_it_scheduled_its_task_records_nothing(
    aws: Aws, partner_url: str, basic_connection: str, round_: int
) -> None:
    # The failure answers at once: a sibling may be cut off before or after its TaskScheduled.
    run = _run(aws, _parallel(partner_url, basic_connection, ""), caught=True)
    failure = _failure_id(run)
    scheduled = run.of_type("TaskScheduled")
    assert [e["previousEventId"] for e in run.of_type("TaskStateAborted")] == [failure] * (
        len(scheduled) - 1
    )
    assert not run.of_type("TaskSucceeded")
    attempts = parse_history(run.events)
    outcomes = sorted(a.outcome for a in attempts)
    assert outcomes == sorted(["failed"] + ["aborted"] * (len(scheduled) - 1))


def test_each_map_iteration_a_failure_cuts_off_is_aborted_after_its_call(
    aws: Aws, partner_url: str, basic_connection: str
) -> None:
    call = http_task({**_get("unused", basic_connection), "ApiEndpoint.$": "$.url"})
    del call["Parameters"]["ApiEndpoint"]
    fanout = {
        "Type": "Map",
        "ItemsPath": "$.urls",
        "ItemSelector": {"url.$": "$$.Map.Item.Value"},
        "ItemProcessor": {
            "ProcessorConfig": {"Mode": "INLINE"},
            "StartAt": "Call",
            "States": {"Call": call},
        },
    }
    urls = [f"{partner_url}/status/503?delay=0.5", partner_url + SLOW, partner_url + SLOW]
    run = _run(aws, fanout, caught=True, payload={"urls": urls})
    failure = _failure_id(run)
    cut = [e for e in run.events if e["type"] in ("TaskStateAborted", "MapIterationAborted")]
    assert [(e["type"], e["previousEventId"]) for e in cut] == [
        ("TaskStateAborted", failure),
        ("MapIterationAborted", failure),
    ] * 2
    indexes = {run.details(e)["index"] for e in cut if e["type"] == "MapIterationAborted"}
    assert indexes == {1, 2}
    [joined] = run.of_type("MapStateFailed")
    assert max(e["id"] for e in cut) < joined["id"]
    failed, *aborted = sorted(parse_history(run.events), key=lambda a: a.outcome != "failed")
    assert failed.branch_path == "Fanout[0]"
    assert sorted((a.branch_path, a.outcome, a.closed_event_type) for a in aborted) == [
        ("Fanout[1]", "aborted", "TaskStateAborted"),
        ("Fanout[2]", "aborted", "TaskStateAborted"),
    ]
    assert {a.aborted_by for a in aborted} == {
        "Call failed (States.Http.StatusCode.503) in Fanout[0]"
    }
