"""HTTP Tasks inside moto's Retry, Catch, Map and Parallel: event structure as on AWS."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from tests.sandbox.support import Aws, http_task, single_state, unique


def _retry(errors: list[str], attempts: int = 2) -> list[dict[str, Any]]:
    return [
        {
            "ErrorEquals": errors,
            "IntervalSeconds": 1,
            "MaxAttempts": attempts,
            "BackoffRate": 1.0,
            "JitterStrategy": "NONE",
        }
    ]


def _flaky(partner_url: str, connection: str, fail: int) -> dict[str, Any]:
    return {
        "ApiEndpoint": f"{partner_url}/flaky",
        "Method": "GET",
        "QueryParameters": {"key": unique("flaky"), "fail": str(fail), "of": "3"},
        "InvocationConfig": {"ConnectionArn": connection},
    }


def test_retry_repeats_the_task_triple_inside_one_state_entry(
    aws: Aws, partner_url: str, basic_connection: str
) -> None:
    state = http_task(
        _flaky(partner_url, basic_connection, fail=2), Retry=_retry(["States.Http.StatusCode.503"])
    )
    run = aws.execute(aws.state_machine(single_state(state)))

    assert run.status == "SUCCEEDED"
    assert run.types() == [
        "ExecutionStarted",
        "TaskStateEntered",
        "TaskScheduled", "TaskStarted", "TaskFailed",
        "TaskScheduled", "TaskStarted", "TaskFailed",
        "TaskScheduled", "TaskStarted", "TaskSucceeded",
        "TaskStateExited",
        "ExecutionSucceeded",
    ]  # fmt: skip
    assert [e["id"] for e in run.events] == list(range(1, 14))
    assert [e["previousEventId"] for e in run.events] == [0, 0, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]
    failed, rescheduled = run.events[4], run.events[5]
    assert rescheduled["previousEventId"] == failed["id"]
    assert rescheduled["timestamp"] - failed["timestamp"] >= 0.9  # IntervalSeconds 1


def test_exhausted_retries_fail_the_execution_with_the_last_error(
    aws: Aws, partner_url: str, basic_connection: str
) -> None:
    state = http_task(
        _flaky(partner_url, basic_connection, fail=3), Retry=_retry(["States.Http.StatusCode.503"])
    )
    run = aws.execute(aws.state_machine(single_state(state)))

    assert run.status == "FAILED"
    assert len(run.of_type("TaskScheduled")) == 3
    assert run.types()[-2:] == ["TaskFailed", "ExecutionFailed"]
    assert run.details(run.events[-1]) == {
        "error": "States.Http.StatusCode.503",
        "cause": "Service Unavailable",
    }


def test_task_failed_matches_http_errors(aws: Aws, partner_url: str, basic_connection: str) -> None:
    state = http_task(
        _flaky(partner_url, basic_connection, fail=1),
        Retry=_retry(["States.TaskFailed"], attempts=1),
    )
    run = aws.execute(aws.state_machine(single_state(state)))
    assert run.status == "SUCCEEDED"


def test_catch_exits_the_state_with_error_and_cause(
    aws: Aws, partner_url: str, basic_connection: str
) -> None:
    definition = single_state(
        http_task(
            {
                "ApiEndpoint": f"{partner_url}/status/409",
                "Method": "POST",
                "RequestBody": {"a": 1},
                "InvocationConfig": {"ConnectionArn": basic_connection},
            },
            Catch=[{"ErrorEquals": ["States.Http.StatusCode.409"], "Next": "AlreadyDone"}],
        )
    )
    definition["States"]["AlreadyDone"] = {"Type": "Pass", "End": True}
    run = aws.execute(aws.state_machine(definition))

    assert run.status == "SUCCEEDED"
    failed_index = run.types().index("TaskFailed")
    assert run.types()[failed_index : failed_index + 3] == [
        "TaskFailed",
        "TaskStateExited",
        "PassStateEntered",
    ]
    exited = run.details(run.events[failed_index + 1])
    assert json.loads(exited["output"]) == {
        "Error": "States.Http.StatusCode.409",
        "Cause": "Conflict",
    }


def test_map_runs_one_http_task_per_item(aws: Aws, partner_url: str, basic_connection: str) -> None:
    definition = single_state(
        {
            "Type": "Map",
            "ItemsPath": "$.skus",
            "MaxConcurrency": 2,
            "ItemProcessor": {
                "ProcessorConfig": {"Mode": "INLINE"},
                "StartAt": "Get",
                "States": {
                    "Get": http_task(
                        {
                            "ApiEndpoint.$": f"States.Format('{partner_url}/inventory/{{}}', $.sku)",
                            "Method": "GET",
                            "InvocationConfig": {"ConnectionArn": basic_connection},
                        }
                    )
                },
            },
            "End": True,
        },
        name="CheckStock",
    )
    state_machine = aws.state_machine(definition)

    ok = aws.execute(state_machine, {"skus": [{"sku": "a"}, {"sku": "b"}, {"sku": "c"}]})
    missing = aws.execute(state_machine, {"skus": [{"sku": "a"}, {"sku": "missing-1"}]})

    assert ok.status == "SUCCEEDED"
    assert len(ok.of_type("TaskSucceeded")) == 3
    endpoints = sorted(
        json.loads(ok.details(e)["parameters"])["ApiEndpoint"] for e in ok.of_type("TaskScheduled")
    )
    assert endpoints == [f"{partner_url}/inventory/{s}" for s in "abc"]
    assert missing.status == "FAILED"
    assert "MapStateFailed" in missing.types()
    assert missing.details(missing.events[-1])["error"] == "States.Http.StatusCode.404"


def test_parallel_branches_call_in_parallel(
    aws: Aws, partner_url: str, basic_connection: str
) -> None:
    def branch(name: str, path: str) -> dict[str, Any]:
        return {
            "StartAt": name,
            "States": {
                name: http_task(
                    {
                        "ApiEndpoint": partner_url + path,
                        "Method": "GET",
                        "InvocationConfig": {"ConnectionArn": basic_connection},
                    }
                )
            },
        }

    definition = single_state(
        {
            "Type": "Parallel",
            "Branches": [branch("A", "/slow?seconds=0.6"), branch("B", "/slow?seconds=0.6")],
            "End": True,
        },
        name="Both",
    )
    run = aws.execute(aws.state_machine(definition))

    assert run.status == "SUCCEEDED"
    assert run.types()[1:3] == ["ParallelStateEntered", "ParallelStateStarted"]
    assert len(run.of_type("TaskSucceeded")) == 2
    started = [datetime.fromtimestamp(e["timestamp"]) for e in run.of_type("TaskStarted")]
    assert abs((started[0] - started[1]).total_seconds()) < 0.5
