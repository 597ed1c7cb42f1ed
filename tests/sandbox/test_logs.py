"""CloudWatch Logs execution logging, and Express workflows known only through it."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from executions.history import normalize_log_event, parse_history
from tests.sandbox.support import Aws, http_task, single_state

STREAM = re.compile(r"^states/(?P<name>[^/]+)/\d{4}-\d{2}-\d{2}-\d{2}-\d{2}/[0-9a-f]{8}$")


def _logged_machine(
    aws: Aws, partner_url: str, connection: str, path: str, level: str, data: bool, **kw
) -> tuple[str, str]:
    group, group_arn = aws.log_group()
    logging = {
        "level": level,
        "includeExecutionData": data,
        "destinations": [{"cloudWatchLogsLogGroup": {"logGroupArn": group_arn}}],
    }
    task = http_task(
        {
            "ApiEndpoint": partner_url + path,
            "Method": "GET",
            "InvocationConfig": {"ConnectionArn": connection},
        }
    )
    return aws.state_machine(single_state(task), logging=logging, **kw), group


def _records_for(aws: Aws, group: str, execution_arn: str, expected: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 5
    while True:
        records = [r for r in aws.log_records(group) if r["execution_arn"] == execution_arn]
        if len(records) >= expected or time.monotonic() > deadline:
            return sorted(records, key=lambda r: int(r["id"]))
        time.sleep(0.05)


def test_level_all_logs_every_event_in_the_aws_format(
    aws: Aws, partner_url: str, basic_connection: str
) -> None:
    state_machine, group = _logged_machine(aws, partner_url, basic_connection, "/ok", "ALL", True)
    run = aws.execute(state_machine)
    records = _records_for(aws, group, run.arn, len(run.events))

    assert [r["type"] for r in records] == run.types()
    for record, event in zip(records, run.events, strict=True):
        assert set(record) == {
            "id",
            "type",
            "details",
            "previous_event_id",
            "event_timestamp",
            "execution_arn",
            "redrive_count",
            "_stream",
        }
        assert all(
            isinstance(record[k], str)
            for k in (
                "id",
                "type",
                "previous_event_id",
                "event_timestamp",
                "execution_arn",
                "redrive_count",
            )
        )
        assert record["id"] == str(event["id"]) and record["previous_event_id"] == str(
            event["previousEventId"]
        )
        assert abs(int(record["event_timestamp"]) - event["timestamp"] * 1000) <= 1
        assert record["redrive_count"] == "0"
        assert STREAM.match(record["_stream"])
    scheduled = next(r for r in records if r["type"] == "TaskScheduled")
    assert scheduled["details"]["resourceType"] == "http" and "parameters" in scheduled["details"]


def test_level_error_logs_only_failures(aws: Aws, partner_url: str, basic_connection: str) -> None:
    state_machine, group = _logged_machine(
        aws, partner_url, basic_connection, "/status/503", "ERROR", True
    )
    run = aws.execute(state_machine)
    records = _records_for(aws, group, run.arn, 2)

    assert [r["type"] for r in records] == ["TaskFailed", "ExecutionFailed"]
    assert records[0]["details"] == {
        "resourceType": "http",
        "resource": "invoke",
        "error": "States.Http.StatusCode.503",
        "cause": "Service Unavailable",
    }


def test_level_fatal_logs_only_the_execution_failure(
    aws: Aws, partner_url: str, basic_connection: str
) -> None:
    state_machine, group = _logged_machine(
        aws, partner_url, basic_connection, "/status/500", "FATAL", True
    )
    run = aws.execute(state_machine)
    assert [r["type"] for r in _records_for(aws, group, run.arn, 1)] == ["ExecutionFailed"]


def test_without_execution_data_inputs_outputs_and_parameters_are_dropped(
    aws: Aws, partner_url: str, basic_connection: str
) -> None:
    state_machine, group = _logged_machine(aws, partner_url, basic_connection, "/ok", "ALL", False)
    run = aws.execute(state_machine, {"secret": "s3cr3t"})
    records = _records_for(aws, group, run.arn, len(run.events))

    assert records
    for record in records:
        assert not {"input", "output", "parameters"} & set(record["details"])
    assert "s3cr3t" not in str(records)


def test_express_executions_are_known_only_through_logs(
    aws: Aws, partner_url: str, basic_connection: str
) -> None:
    state_machine, group = _logged_machine(
        aws, partner_url, basic_connection, "/status/502", "ALL", True, express=True
    )
    execution_arn = aws.start(state_machine)

    assert ":express:" in execution_arn
    assert aws.sfn.describe_state_machine(stateMachineArn=state_machine)["type"] == "EXPRESS"
    listed = [
        m
        # Every page: the session's sandbox holds more machines than one page shows.
        for page in aws.sfn.get_paginator("list_state_machines").paginate()
        for m in page["stateMachines"]
        if m["stateMachineArn"] == state_machine
    ]
    assert [m["type"] for m in listed] == ["EXPRESS"]
    with pytest.raises(aws.sfn.exceptions.ClientError) as raised:
        aws.sfn.list_executions(stateMachineArn=state_machine)
    assert raised.value.response["Error"]["Code"] == "StateMachineTypeNotSupported"
    records = _records_for(aws, group, execution_arn, 7)
    assert records[-1]["type"] == "ExecutionFailed"
    assert records[-1]["details"]["error"] == "States.Http.StatusCode.502"
    assert {r["_stream"].split("/")[1] for r in records} == {state_machine.rsplit(":", 1)[1]}


def test_missing_log_group_does_not_break_the_execution(
    aws: Aws, partner_url: str, basic_connection: str
) -> None:
    logging = {
        "level": "ALL",
        "includeExecutionData": True,
        "destinations": [
            {
                "cloudWatchLogsLogGroup": {
                    "logGroupArn": "arn:aws:logs:us-east-1:123456789012:log-group:/nowhere:*"
                }
            }
        ],
    }
    task = http_task(
        {
            "ApiEndpoint": f"{partner_url}/ok",
            "Method": "GET",
            "InvocationConfig": {"ConnectionArn": basic_connection},
        }
    )
    run = aws.execute(aws.state_machine(single_state(task), logging=logging))
    assert run.status == "SUCCEEDED"


def test_an_express_error_level_log_gives_each_failure_its_own_attempt(
    aws: Aws, partner_url: str, basic_connection: str
) -> None:
    # Issue 15 item 2: a 429 then a 500, logged at level ERROR (no TaskScheduled lines).
    key = f"seq-{time.monotonic_ns()}"
    retry = [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 1, "MaxAttempts": 1}]
    path = f"/sequence?key={key}&statuses=429,500"
    group, group_arn = aws.log_group()
    logging = {
        "level": "ERROR",
        "includeExecutionData": True,
        "destinations": [{"cloudWatchLogsLogGroup": {"logGroupArn": group_arn}}],
    }
    task = http_task(
        {
            "ApiEndpoint": partner_url + path,
            "Method": "GET",
            "InvocationConfig": {"ConnectionArn": basic_connection},
        },
        Retry=retry,
    )
    definition = single_state(task, "Quote")
    machine = aws.state_machine(definition, logging=logging, express=True)
    arn = aws.start(machine)
    records = _records_for(aws, group, arn, 3)
    assert [r["type"] for r in records] == ["TaskFailed", "TaskFailed", "ExecutionFailed"]

    events = [e for e in map(normalize_log_event, records) if e is not None]
    attempts = parse_history(events, definition)
    assert [(a.state_name, a.attempt_number, a.status_code) for a in attempts] == [
        ("Quote", 1, 429),
        ("Quote", 2, 500),
    ]
    assert [a.final_attempt for a in attempts] == [False, True]
    assert attempts[0].url == partner_url + path  # from the definition
    assert all("no TaskScheduled" in " ".join(a.problems) for a in attempts)
