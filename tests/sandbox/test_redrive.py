"""RedriveExecution and DescribeExecution's redrive fields on the sandbox (reference §7, §8)."""

from __future__ import annotations

import datetime

import pytest
from botocore.exceptions import ClientError

from tests.sandbox.support import Aws, http_task, single_state, unique


def test_a_failed_execution_redrives_from_the_failed_state_once_the_partner_is_fixed(
    aws: Aws, partner_url: str
) -> None:
    key = unique("redrive")
    # The first two calls fail (no Retry), the third succeeds: the partner is "fixed".
    calls = {
        "ApiEndpoint": f"{partner_url}/sequence?key={key}&statuses=200,500,200",
        "Method": "GET",
    }
    first = http_task(calls, ResultPath="$.first")
    del first["End"]
    definition = {
        "StartAt": "First",
        "States": {
            "First": {**first, "Next": "Second"},
            "Second": http_task(calls, ResultPath="$.second"),
        },
    }
    machine = aws.state_machine(definition)
    arn = aws.start(machine, {"order": 7})
    failed = aws.wait(arn)
    assert failed.status == "FAILED"
    described = aws.sfn.describe_execution(executionArn=arn)
    assert (described["redriveStatus"], described["redriveCount"]) == ("REDRIVABLE", 0)

    answer = aws.sfn.redrive_execution(executionArn=arn)
    redriven = aws.wait(arn)

    assert "redriveDate" in answer
    assert redriven.status == "SUCCEEDED"
    types = redriven.types()
    at = types.index("ExecutionRedriven")
    assert types[:at][-1] == "ExecutionFailed"
    # Resumes at the failed state: First is not entered again.
    entered = [
        e["stateEnteredEventDetails"]["name"]
        for e in redriven.events[at:]
        if "stateEnteredEventDetails" in e
    ]
    assert entered == ["Second"]
    event = redriven.events[at]
    assert event["executionRedrivenEventDetails"] == {"redriveCount": 1}
    assert event["id"] == redriven.events[at - 1]["id"] + 1
    assert types[-1] == "ExecutionSucceeded"
    described = aws.sfn.describe_execution(executionArn=arn)
    assert described["status"] == "SUCCEEDED" and described["redriveCount"] == 1
    assert "redriveDate" in described
    assert (described["redriveStatus"], described["redriveStatusReason"]) == (
        "NOT_REDRIVABLE",
        "Execution is SUCCEEDED and cannot be redriven",
    )


def test_ineligible_executions_answer_aws_errors(aws: Aws, partner_url: str) -> None:
    machine = aws.state_machine(
        single_state(http_task({"ApiEndpoint": f"{partner_url}/ok", "Method": "GET"}))
    )
    succeeded = aws.execute(machine)
    assert succeeded.status == "SUCCEEDED"

    with pytest.raises(ClientError) as refused:
        aws.sfn.redrive_execution(executionArn=succeeded.arn)
    assert refused.value.response["Error"]["Code"] == "ExecutionNotRedrivable"
    assert "SUCCEEDED" in refused.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as missing:
        aws.sfn.redrive_execution(executionArn=succeeded.arn + "-nope")
    assert missing.value.response["Error"]["Code"] == "ExecutionDoesNotExist"
    express = aws.state_machine(
        single_state(http_task({"ApiEndpoint": f"{partner_url}/status/500", "Method": "GET"})),
        express=True,
    )
    express_arn = aws.start(express)
    with pytest.raises(ClientError) as not_standard:
        aws.sfn.redrive_execution(executionArn=express_arn)
    assert not_standard.value.response["Error"]["Code"] == "InvalidArn"


def test_an_execution_closed_over_14_days_ago_is_not_redrivable(aws: Aws, partner_url: str) -> None:
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    machine = aws.state_machine(
        single_state(http_task({"ApiEndpoint": f"{partner_url}/status/500", "Method": "GET"}))
    )
    failed = aws.execute(machine)
    assert failed.status == "FAILED"
    # Time travel in the sandbox's own process: the execution closed 15 days ago.
    parts = failed.arn.split(":")
    execution = stepfunctions_parser_backends[parts[4]][parts[3]].describe_execution(failed.arn)
    assert execution.stop_date is not None
    execution.stop_date = execution.stop_date - datetime.timedelta(days=15)

    described = aws.sfn.describe_execution(executionArn=failed.arn)
    assert described["redriveStatus"] == "NOT_REDRIVABLE"
    assert "14 days" in described["redriveStatusReason"]
    with pytest.raises(ClientError) as refused:
        aws.sfn.redrive_execution(executionArn=failed.arn)
    assert refused.value.response["Error"]["Code"] == "ExecutionNotRedrivable"


def test_the_same_client_token_again_is_the_same_redrive_and_a_new_one_is_refused(
    aws: Aws, partner_url: str
) -> None:
    # AWS answers the last 10 tokens that redrove an execution again (for 15 minutes): a task
    # killed after its call reached AWS retries with the same token and is not refused.
    url = f"{partner_url}/sequence?key={unique('token')}&statuses=500,200"
    machine = aws.state_machine(single_state(http_task({"ApiEndpoint": url, "Method": "GET"})))
    arn = aws.start(machine)
    assert aws.wait(arn).status == "FAILED"

    first = aws.sfn.redrive_execution(executionArn=arn, clientToken="retry-me")
    again = aws.sfn.redrive_execution(executionArn=arn, clientToken="retry-me")
    assert aws.wait(arn).status == "SUCCEEDED"
    after = aws.sfn.redrive_execution(executionArn=arn, clientToken="retry-me")

    assert first["redriveDate"] == again["redriveDate"] == after["redriveDate"]
    with pytest.raises(ClientError) as refused:
        aws.sfn.redrive_execution(executionArn=arn, clientToken="another")
    assert refused.value.response["Error"]["Code"] == "ExecutionNotRedrivable"
    described = aws.sfn.describe_execution(executionArn=arn)
    assert described["redriveCount"] == 1


def test_a_redriven_runs_log_lines_carry_its_redrive_count(aws: Aws, partner_url: str) -> None:
    """AWS writes `redrive_count` on each log line: 0 for the first run, 1 for the first
    redrive's. Before, the sandbox wrote "0" on every line, redrive or not."""
    group, group_arn = aws.log_group()
    logging = {
        "level": "ALL",
        "includeExecutionData": True,
        "destinations": [{"cloudWatchLogsLogGroup": {"logGroupArn": group_arn}}],
    }
    key = unique("logged-redrive")
    calls = {"ApiEndpoint": f"{partner_url}/sequence?key={key}&statuses=500,200", "Method": "GET"}
    arn = aws.start(aws.state_machine(single_state(http_task(calls)), logging=logging))
    assert aws.wait(arn).status == "FAILED"
    aws.sfn.redrive_execution(executionArn=arn)
    assert aws.wait(arn).status == "SUCCEEDED"

    records = [r for r in aws.log_records(group) if r["execution_arn"] == arn]
    by_count: dict[str, set[str]] = {}
    for record in records:
        by_count.setdefault(record["redrive_count"], set()).add(record["type"])
    assert set(by_count) == {"0", "1"}
    assert "ExecutionFailed" in by_count["0"] and "ExecutionSucceeded" in by_count["1"]
    assert "ExecutionSucceeded" not in by_count["0"]
