"""The sandbox cuts off sibling calls like AWS when a Parallel branch fails (issue 15 item 9)."""

from __future__ import annotations

from typing import Any

import pytest

from executions.classify import classify
from executions.history import parse_history
from tests.sandbox.support import Aws, http_task


def _branch(name: str, url: str, connection: str) -> dict[str, Any]:
    parameters = {
        "ApiEndpoint": url,
        "Method": "GET",
        "InvocationConfig": {"ConnectionArn": connection},
    }
    return {"StartAt": name, "States": {name: http_task(parameters)}}


@pytest.mark.parametrize("caught", [True, False])
def test_each_sibling_call_a_branch_failure_cuts_off_ends_aborted_naming_it(
    aws: Aws, partner_url: str, basic_connection: str, caught: bool
) -> None:
    fanout: dict[str, Any] = {
        "Type": "Parallel",
        "Branches": [
            # The failure waits until both siblings are in flight (the sandbox starts branches
            # on threads; a branch cut off before its TaskScheduled is another shape).
            _branch("Fails", f"{partner_url}/status/500?delay=1", basic_connection),
            _branch("SlowA", f"{partner_url}/slow?seconds=1.9", basic_connection),
            _branch("SlowB", f"{partner_url}/slow?seconds=1.9", basic_connection),
        ],
        "End": True,
    }
    if caught:
        fanout = {**fanout, "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Handled"}]}
        del fanout["End"]
        fanout["Next"] = "Handled"
    states: dict[str, Any] = {"Fanout": fanout, "Handled": {"Type": "Pass", "End": True}}
    if not caught:
        del states["Handled"]
    machine = aws.state_machine({"StartAt": "Fanout", "States": states})
    try:
        run = aws.execute(machine)
    finally:
        # Its failed execution is no business of the other tests sharing this sandbox.
        aws.sfn.delete_state_machine(stateMachineArn=machine)
    assert run.status == ("SUCCEEDED" if caught else "FAILED")
    # The sandbox (moto) records no TaskStateAborted for the siblings, unlike AWS (reference
    # §8, tests/fixtures/histories/siblings_cut_off.json): the Parallel's failure ends them.
    assert not run.of_type("TaskStateAborted")
    attempts = parse_history(run.events)
    by_state = {a.state_name: a for a in attempts}
    assert len(attempts) == 3, [(a.state_name, a.outcome) for a in attempts]
    assert by_state["Fails"].outcome == "failed"
    for name in ("SlowA", "SlowB"):
        cut = by_state[name]
        assert (cut.outcome, cut.closed_event_type) == ("aborted", "ParallelStateFailed")
        result = classify(cut)
        assert result.category is None
        assert "Fails failed (States.Http.StatusCode.500)" in result.evidence["aborted_by"]
