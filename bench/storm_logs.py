"""The storm's logs-on run: its state machines log ALL with execution data, and every stored
copy of a template execution gets the template's log lines (as the sandbox wrote them when the
template ran), with its own ARN and times, so the sync reads the storm from the log first."""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bench.storm import Template

REGION = "us-west-2"  # bench.storm.STORM_REGION (imported from here, not back)


def log_group(status: int) -> str:
    return f"/aws/vendedlogs/states/storm-{status}"


def logging_configuration(sfn: Any, status: int) -> dict[str, Any]:
    logs = _client(sfn)
    logs.create_log_group(logGroupName=log_group(status))
    arn = f"arn:aws:logs:{REGION}:123456789012:log-group:{log_group(status)}:*"
    return {
        "level": "ALL",
        "includeExecutionData": True,
        "destinations": [{"cloudWatchLogsLogGroup": {"logGroupArn": arn}}],
    }


def _client(sfn: Any) -> Any:
    import boto3

    return boto3.client(
        "logs",
        endpoint_url=sfn.meta.endpoint_url,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def with_records(sfn: Any, template: Template, arn: str) -> Template:
    """The template's log records (waited for: the last is written as the execution ends),
    then its streams deleted, so that only the copies are in the log the sync reads."""
    from dataclasses import replace

    from sandbox.logs import LoggingTarget

    logs = _client(sfn)
    group = log_group(int(template.machine.name.rsplit("-", 1)[1]))
    deadline = time.monotonic() + 30
    while True:
        found = logs.filter_log_events(logGroupName=group)["events"]
        records = [json.loads(e["message"]) for e in found]
        if any(r["type"] == "ExecutionFailed" for r in records) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    if not any(r["type"] == "ExecutionFailed" for r in records):
        raise RuntimeError(f"{arn}: its log has no ExecutionFailed after 30 s")
    for stream in {e["logStreamName"] for e in found}:
        logs.delete_log_stream(logGroupName=group, logStreamName=stream)
    records.sort(key=lambda r: int(r["id"]))
    start = int(records[0]["event_timestamp"])
    for record in records:
        record["event_timestamp"] = int(record["event_timestamp"]) - start
    target = LoggingTarget.from_configuration(template.machine.loggingConfiguration)
    return replace(template, target=target, records=records)


def log_copy(template: Template, arn: str, began: datetime) -> None:
    """The copy's log lines, as the sandbox writes an execution's: the template's records with
    this execution's ARN and times, in its stream of the minute it began."""
    from sandbox.logs import put_record, stream_name

    stream = stream_name(template.machine.name, arn, began)
    start_ms = int(began.timestamp() * 1000)
    for record in template.records:
        stamp = str(start_ms + int(record["event_timestamp"]))
        put_record(
            template.target, stream, {**record, "execution_arn": arn, "event_timestamp": stamp}
        )
