"""The sandbox emits what AWS records when a state fails after its call (issue 15 item 9)."""

from __future__ import annotations

import time

import pytest

from executions.classify import classify_state_error
from executions.history import parse_history
from tests.sandbox.support import Aws, http_task, single_state


@pytest.mark.parametrize(
    ("fields", "path"),
    [
        ({"ResultSelector": {"id.$": "$.ResponseBody.nope"}}, "$.ResponseBody.nope"),
        ({"OutputPath": "$.Nope"}, "$.Nope"),
    ],
)
def test_a_200_then_a_failing_path_fails_the_state_not_the_call(
    aws: Aws, partner_url: str, basic_connection: str, fields: dict[str, object], path: str
) -> None:
    parameters = {
        "ApiEndpoint": f"{partner_url}/ok",
        "Method": "GET",
        "InvocationConfig": {"ConnectionArn": basic_connection},
    }
    # A Retry that would run if the failure were the call's: AWS does not retry it.
    retry = [{"ErrorEquals": ["States.Runtime"], "MaxAttempts": 2, "IntervalSeconds": 1}]
    run = aws.run_task(parameters, Retry=retry, **fields)
    assert run.status == "FAILED"
    assert run.types()[-2:] == ["TaskSucceeded", "ExecutionFailed"]
    assert not run.of_type("TaskFailed") and len(run.of_type("TaskScheduled")) == 1
    assert path in run.details(run.events[-1])["cause"]

    (attempt,) = parse_history(run.events)
    assert (attempt.outcome, attempt.status_code, attempt.state_error) == (
        "succeeded",
        200,
        "States.Runtime",
    )
    state = classify_state_error(attempt)
    assert state is not None and state.category == "invalid_request"
    assert state.evidence["jsonpath"] == path


def test_stop_execution_mid_call_records_empty_abort_details(
    aws: Aws, partner_url: str, basic_connection: str
) -> None:
    machine = aws.state_machine(
        single_state(
            http_task(
                {
                    "ApiEndpoint": f"{partner_url}/slow?seconds=1.5",
                    "Method": "GET",
                    "InvocationConfig": {"ConnectionArn": basic_connection},
                }
            )
        )
    )
    arn = aws.start(machine)
    deadline = time.monotonic() + 10
    while "TaskStarted" not in [e["type"] for e in aws.history(arn)]:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    aws.sfn.stop_execution(executionArn=arn)
    run = aws.wait(arn)
    aborted = run.events[-1]
    assert (aborted["type"], aborted["previousEventId"]) == ("ExecutionAborted", 0)
    assert run.details(aborted) == {}
    (attempt,) = parse_history(run.events)
    assert attempt.closed_event_type == "ExecutionAborted" and attempt.error == ""
