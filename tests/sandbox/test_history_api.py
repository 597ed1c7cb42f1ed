"""GetExecutionHistory paging and options, which moto alone ignores."""

from __future__ import annotations

import json

import pytest

from tests.sandbox.support import Aws


@pytest.fixture(scope="module")
def execution_arn(aws: Aws) -> str:
    definition = {
        "StartAt": "A",
        "States": {
            "A": {"Type": "Pass", "Next": "B"},
            "B": {"Type": "Pass", "Result": {"secret": "s3"}, "End": True},
        },
    }
    return aws.execute(aws.state_machine(definition), {"in": 1}).arn


def test_history_pages_with_max_results_and_next_token(aws: Aws, execution_arn: str) -> None:
    first = aws.sfn.get_execution_history(executionArn=execution_arn, maxResults=2)
    second = aws.sfn.get_execution_history(
        executionArn=execution_arn, maxResults=2, nextToken=first["nextToken"]
    )
    everything = aws.sfn.get_execution_history(executionArn=execution_arn)

    assert [e["id"] for e in first["events"]] == [1, 2]
    assert [e["id"] for e in second["events"]] == [3, 4]
    assert [e["id"] for e in everything["events"]] == [1, 2, 3, 4, 5, 6]
    assert "nextToken" not in everything


def test_history_in_reverse_order(aws: Aws, execution_arn: str) -> None:
    events = aws.sfn.get_execution_history(
        executionArn=execution_arn, reverseOrder=True, maxResults=3
    )["events"]
    assert [e["id"] for e in events] == [6, 5, 4]


def test_history_without_execution_data(aws: Aws, execution_arn: str) -> None:
    events = aws.sfn.get_execution_history(executionArn=execution_arn, includeExecutionData=False)[
        "events"
    ]
    assert "s3" not in json.dumps(events, default=str)
    assert all("input" not in e.get("stateEnteredEventDetails", {}) for e in events)


def test_bad_history_token_is_invalid_token(aws: Aws, execution_arn: str) -> None:
    with pytest.raises(aws.sfn.exceptions.InvalidToken):
        aws.sfn.get_execution_history(executionArn=execution_arn, nextToken="bm9wZQ==")
