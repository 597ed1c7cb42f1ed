"""CloudWatch Logs execution logging, in the format Step Functions writes.

moto's interpreter accepts a logging session per execution but its backend passes none, and the
session it ships cannot write to moto's own Logs backend. `ExecutionLogSession` implements the
four members the interpreter's `EventManager` calls (`execution_arn`, `configuration`,
`log_level_filter`, `publish_history_log`) and writes each event as AWS does: a JSON object whose
scalar fields are strings, in stream `states/<name>/<YYYY-MM-DD-HH-MM>/<8 hex>` of the group named
by the state machine's loggingConfiguration.
"""

from __future__ import annotations

import datetime
import json
import threading
import zlib
from dataclasses import dataclass
from typing import Any

from moto.logs.models import logs_backends
from moto.stepfunctions.parser.api import LogLevel
from moto.stepfunctions.parser.asl.eval.event.logging import is_logging_enabled_for

from sandbox import clock

# AWS spreads one state machine's log events over a few streams per minute.
_STREAMS_PER_MINUTE = 4
# Dropped from `details` when includeExecutionData is false.
_EXECUTION_DATA_KEYS = ("input", "inputDetails", "output", "outputDetails", "parameters")
_lock = threading.Lock()


@dataclass(frozen=True)
class LoggingTarget:
    """Where and what an execution logs, from a state machine's loggingConfiguration."""

    account_id: str
    region: str
    log_group_name: str
    level: str
    include_execution_data: bool

    @classmethod
    def from_configuration(cls, configuration: dict[str, Any] | None) -> LoggingTarget | None:
        configuration = configuration or {}
        level = configuration.get("level", "OFF")
        destinations = configuration.get("destinations") or []
        if level == "OFF" or len(destinations) != 1:
            return None
        arn = (destinations[0].get("cloudWatchLogsLogGroup") or {}).get("logGroupArn", "")
        # arn:aws:logs:<region>:<account>:log-group:<name>:*
        parts = arn.split(":")
        if len(parts) < 7 or parts[2] != "logs" or parts[5] != "log-group":
            return None
        return cls(
            account_id=parts[4],
            region=parts[3],
            log_group_name=parts[6],
            level=level,
            include_execution_data=bool(configuration.get("includeExecutionData", False)),
        )


class ExecutionLogSession:
    """One execution's log writer, handed to moto's interpreter."""

    def __init__(self, execution_arn: str, state_machine_name: str, target: LoggingTarget):
        self.execution_arn = execution_arn
        self.configuration = target
        # Each log line says which run of the execution wrote it, as AWS's `redrive_count`
        # does; sandbox/redrive.py raises it before the redriven run logs.
        self.redrive_count = 0
        # A planned past (sandbox.clock) logs as if it ran that long ago.
        self.shift = clock.shift_for_arn(execution_arn)
        self.log_stream_name = stream_name(
            state_machine_name,
            execution_arn,
            clock.back(datetime.datetime.now(tz=datetime.UTC), self.shift),
        )

    def log_level_filter(self, history_event_type: Any) -> bool:
        return bool(is_logging_enabled_for(LogLevel(self.configuration.level), history_event_type))

    def publish_history_log(self, history_log: dict[str, Any]) -> None:
        record = log_record(
            history_log, self.configuration.include_execution_data, self.redrive_count
        )
        record["event_timestamp"] = clock.back(record["event_timestamp"], self.shift)
        put_record(self.configuration, self.log_stream_name, record)


def session_for(
    execution_arn: str, state_machine_name: str, configuration: dict[str, Any] | None
) -> ExecutionLogSession | None:
    target = LoggingTarget.from_configuration(configuration)
    if target is None:
        return None
    return ExecutionLogSession(execution_arn, state_machine_name, target)


def stream_name(state_machine_name: str, execution_arn: str, now: datetime.datetime) -> str:
    shard = zlib.crc32(execution_arn.encode()) % _STREAMS_PER_MINUTE
    return f"states/{state_machine_name}/{now:%Y-%m-%d-%H-%M}/{shard:08x}"


def log_record(
    history_log: dict[str, Any], include_execution_data: bool, redrive_count: int = 0
) -> dict[str, str | Any]:
    """The JSON object AWS writes for one history event (all scalars as strings)."""
    details = dict(history_log.get("details") or {})
    if not include_execution_data:
        for key in _EXECUTION_DATA_KEYS:
            details.pop(key, None)
    return {
        "id": str(history_log["id"]),
        "type": str(getattr(history_log["type"], "value", history_log["type"])),
        "details": details,
        "previous_event_id": str(history_log["previous_event_id"]),
        "event_timestamp": str(_epoch_millis(history_log["event_timestamp"])),
        "execution_arn": str(history_log["execution_arn"]),
        "redrive_count": str(redrive_count),
    }


def put_record(target: LoggingTarget, stream: str, record: dict[str, Any]) -> None:
    """One log line, stamped with its own `event_timestamp` (the benchmark's storm writes the
    records of the copies it stores this way, in the shape an execution logs)."""
    event = {"timestamp": int(record["event_timestamp"]), "message": json.dumps(record)}
    _put(target, stream, event)


def _epoch_millis(value: str | datetime.datetime) -> int:
    if isinstance(value, str):
        value = datetime.datetime.fromisoformat(value)
    return int(value.timestamp() * 1000)


def _put(target: LoggingTarget, stream: str, event: dict[str, Any]) -> None:
    backend = logs_backends[target.account_id][target.region]
    with _lock:
        group = backend.groups.get(target.log_group_name)
        if group is None:
            # As on AWS, a missing log group loses the logs, not the execution.
            return
        if stream not in group.streams:
            backend.create_log_stream(target.log_group_name, stream)
        backend.put_log_events(target.log_group_name, stream, [event])
