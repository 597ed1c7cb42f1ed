"""Distributed Map parents and their child executions on the sandbox (reference §8, issue 15
item 5): MapRunStarted / MapRunFailed in the parent, the items as child executions named after
the run, each with its own history, listed by ListExecutions(mapRunArn)."""

from __future__ import annotations

from typing import Any

from tests.sandbox.support import Aws, http_task, unique


def _distributed(call: dict[str, Any], label: str = "batch") -> dict[str, Any]:
    return {
        "StartAt": "Fan",
        "States": {
            "Fan": {
                "Type": "Map",
                "Label": label,
                "ItemsPath": "$.items",
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                    "StartAt": "Call",
                    "States": {"Call": call},
                },
                "End": True,
            }
        },
    }


def _machine(aws: Aws, basic_connection: str) -> tuple[str, str]:
    name = unique("dmap")
    call = http_task(
        {
            "ApiEndpoint.$": "$.url",
            "Method": "GET",
            "InvocationConfig": {"ConnectionArn": basic_connection},
        }
    )
    return name, aws.state_machine(_distributed(call), name=name)


def test_a_failing_item_fails_the_map_run_over_its_tolerated_threshold(
    aws: Aws, partner_url: str, basic_connection: str
) -> None:
    name, machine = _machine(aws, basic_connection)
    items = [{"url": f"{partner_url}/status/500"}, {"url": f"{partner_url}/basic"}]
    parent = aws.execute(machine, {"items": items})

    assert parent.status == "FAILED"
    assert parent.types()[-4:] == ["MapStateStarted", "MapRunStarted", "MapRunFailed", "ExecutionFailed"]  # fmt: skip
    started = parent.details(parent.of_type("MapRunStarted")[0])
    run_arn = started["mapRunArn"]
    assert run_arn.startswith(f"arn:aws:states:us-east-1:123456789012:mapRun:{name}/batch:")
    failed = parent.of_type("MapRunFailed")[0]
    assert failed["previousEventId"] == parent.of_type("MapRunStarted")[0]["id"]
    assert parent.details(failed)["error"] == "States.ExceedToleratedFailureThreshold"
    assert parent.details(parent.of_type("ExecutionFailed")[0])["error"] == (
        "States.ExceedToleratedFailureThreshold"
    )
    run = aws.sfn.describe_map_run(mapRunArn=run_arn)
    assert run["status"] == "FAILED"

    children = aws.sfn.list_executions(mapRunArn=run_arn)["executions"]
    assert len(children) == 2
    assert all(c["executionArn"].startswith(f"arn:aws:states:us-east-1:123456789012:execution:{name}/batch:") for c in children)  # fmt: skip
    assert sorted(c["status"] for c in children) == ["FAILED", "SUCCEEDED"]
    bad = next(c for c in children if c["status"] == "FAILED")
    history = aws.history(bad["executionArn"])
    assert [e["id"] for e in history] == list(range(1, len(history) + 1))
    types = [e["type"] for e in history]
    assert types[0] == "ExecutionStarted" and types[-1] == "ExecutionFailed"
    assert "TaskFailed" in types
    assert history[-1]["executionFailedEventDetails"]["error"] == "States.Http.StatusCode.500"
    described = aws.sfn.describe_execution(executionArn=bad["executionArn"])
    assert described["status"] == "FAILED"
    assert described["mapRunArn"] == run_arn


def test_a_map_run_whose_items_all_succeed_succeeds(
    aws: Aws, partner_url: str, basic_connection: str
) -> None:
    _, machine = _machine(aws, basic_connection)
    parent = aws.execute(machine, {"items": [{"url": f"{partner_url}/basic"}] * 3})

    assert parent.status == "SUCCEEDED"
    assert "MapRunSucceeded" in parent.types()
    run_arn = parent.details(parent.of_type("MapRunStarted")[0])["mapRunArn"]
    children = aws.sfn.list_executions(mapRunArn=run_arn)["executions"]
    assert [c["status"] for c in children] == ["SUCCEEDED"] * 3
    # The machine's own listing does not return them, as on AWS.
    listed = aws.sfn.list_executions(stateMachineArn=machine)["executions"]
    assert [e["executionArn"] for e in listed] == [parent.arn]
