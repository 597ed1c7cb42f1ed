"""The sandbox emits what AWS records when a state fails after its call (issue 15 item 9)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from executions.classify import classify, classify_state_error
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


def _stopped_mid_call(aws: Aws, partner_url: str, connection: str, **stop: str) -> Any:
    machine = aws.state_machine(
        single_state(
            http_task(
                {
                    "ApiEndpoint": f"{partner_url}/slow?seconds=1.5",
                    "Method": "GET",
                    "InvocationConfig": {"ConnectionArn": connection},
                }
            )
        )
    )
    arn = aws.start(machine)
    deadline = time.monotonic() + 10
    while "TaskStarted" not in [e["type"] for e in aws.history(arn)]:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    answer = aws.sfn.stop_execution(executionArn=arn, **stop)
    assert answer["stopDate"] is not None
    return aws.wait(arn)


def test_stop_execution_mid_call_records_empty_abort_details(
    aws: Aws, partner_url: str, basic_connection: str
) -> None:
    run = _stopped_mid_call(aws, partner_url, basic_connection)
    aborted = run.events[-1]
    assert (aborted["type"], aborted["previousEventId"]) == ("ExecutionAborted", 0)
    assert run.details(aborted) == {}
    assert run.types()[-2] == "TaskStarted"  # the call was open: no TaskStateAborted (§8)
    (attempt,) = parse_history(run.events)
    assert (attempt.outcome, attempt.closed_event_type) == ("aborted", "ExecutionAborted")
    assert attempt.error == ""
    result = classify(attempt)
    assert (result.category, result.subcategory) == (None, "aborted")
    assert "no error or cause given" in result.hint


def test_stop_execution_keeps_the_error_and_cause_it_was_given(
    aws: Aws, partner_url: str, basic_connection: str
) -> None:
    run = _stopped_mid_call(
        aws, partner_url, basic_connection, error="Ops.Cancelled", cause="rolled back by ops-bot"
    )
    aborted = run.events[-1]
    assert (aborted["type"], aborted["previousEventId"]) == ("ExecutionAborted", 0)
    assert run.details(aborted) == {"error": "Ops.Cancelled", "cause": "rolled back by ops-bot"}
    assert run.status == "ABORTED"
    (attempt,) = parse_history(run.events)
    assert (attempt.outcome, attempt.error, attempt.cause) == (
        "aborted",
        "Ops.Cancelled",
        "rolled back by ops-bot",
    )
    result = classify(attempt)
    assert result.category is None and result.evidence["aborted_by"] == "StopExecution"
    assert "'Ops.Cancelled'" in result.hint and "'rolled back by ops-bot'" in result.hint
