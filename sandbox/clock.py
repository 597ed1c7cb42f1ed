"""Planned pasts: executions that run now but read as if they ran hours or days ago.

The demo's day (sandbox.day) plans each execution at an offset before now. The sandbox runs it
now, for real, and shifts what AWS would report back by that offset: the start date it stores,
and at read time the stop date (DescribeExecution, ListExecutions), every history event's
timestamp (GetExecutionHistory), the CloudWatch log events (timestamp, `event_timestamp`,
stream name) and a connection's LastModifiedTime when its call de-authorized it. Stepscope then reads the day through its normal sync path, as it would from AWS.

A shift is registered by execution name before the execution starts (POST /_sandbox/clock
{"shifts": {name: seconds}}); executions with no registered shift are not touched. The plan's
connections, made just before it runs, are dated back too ({"connections": {ARN: seconds}}:
CreationTime, LastModifiedTime, LastAuthorizedTime), so that they existed before its first
execution. A planned
Express execution's ARN ends in a uuid5 of its name, so that a rerun of the same plan names the
same executions (AWS's is random; names of planned executions are unique).
"""

from __future__ import annotations

import contextlib
import datetime
import threading
import uuid
from collections.abc import Iterator
from typing import Any

_shifts: dict[str, datetime.timedelta] = {}
_lock = threading.Lock()
_EXPRESS_ID_NAMESPACE = uuid.UUID("0b3c6a52-7d1e-4f0a-9c55-2e8d4b7f1a63")
MAX_SHIFT = datetime.timedelta(days=30)


def configure(payload: Any) -> int:
    """Register shifts: {"shifts": {execution name: seconds before now}}. Answers how many of
    the names were registered already (a plan run before on this sandbox)."""
    if not isinstance(payload, dict) or not isinstance(payload.get("shifts", {}), dict):
        raise ValueError('expected {"shifts": {execution name: seconds}}')
    parsed: dict[str, datetime.timedelta] = {}
    for name, seconds in payload.get("shifts", {}).items():
        if not isinstance(seconds, int | float) or isinstance(seconds, bool):
            raise ValueError(f"shift of {name!r} is not a number of seconds")
        shift = datetime.timedelta(seconds=float(seconds))
        if not datetime.timedelta(0) <= shift <= MAX_SHIFT:
            raise ValueError(f"shift of {name!r} is not between 0 and {MAX_SHIFT.days} days")
        parsed[str(name)] = shift
    made = _connections(payload.get("connections", {}))
    with _lock:
        known = sum(1 for name in parsed if name in _shifts)
        _shifts.update(parsed)
    for connection, shift in made:
        _backdate_connection(connection, shift)
    return known


def _connections(raw: Any) -> list[tuple[Any, datetime.timedelta]]:
    """{"connections": {connection ARN: seconds}}: connections made (or re-authorized) for a
    plan, dated back so that they existed before its first execution."""
    from sandbox import eventbridge

    if not isinstance(raw, dict):
        raise ValueError('expected {"connections": {connection ARN: seconds}}')
    found = []
    for arn, seconds in raw.items():
        connection = eventbridge.find(str(arn))
        if connection is None:
            raise ValueError(f"no connection {arn!r}")
        if not isinstance(seconds, int | float) or isinstance(seconds, bool):
            raise ValueError(f"shift of {arn!r} is not a number of seconds")
        shift = datetime.timedelta(seconds=float(seconds))
        if not datetime.timedelta(0) <= shift <= MAX_SHIFT:
            raise ValueError(f"shift of {arn!r} is not between 0 and {MAX_SHIFT.days} days")
        found.append((connection, shift))
    return found


def _backdate_connection(connection: Any, shift: datetime.timedelta) -> None:
    from sandbox import eventbridge

    seconds = shift.total_seconds()
    modified, authorized = (
        eventbridge.last_modified(connection),
        eventbridge.last_authorized(connection),
    )
    connection.creation_time = float(connection.creation_time) - seconds
    connection.last_modified_time = modified - seconds
    connection.last_authorized_time = authorized - seconds


def reset() -> None:
    with _lock:
        _shifts.clear()


def snapshot() -> dict[str, Any]:
    with _lock:
        return {"shifts": len(_shifts)}


def shift_for_name(name: str | None) -> datetime.timedelta | None:
    with _lock:
        return _shifts.get(name or "")


def shift_for_arn(arn: str | None) -> datetime.timedelta | None:
    """arn:aws:states:<region>:<account>:execution|express:<machine>:<name>[:<id>]"""
    parts = (arn or "").split(":")
    return shift_for_name(parts[7]) if len(parts) >= 8 else None


def express_id(name: str) -> uuid.UUID | None:
    """The id ending a planned Express execution's ARN (None: not planned, a random one)."""
    return uuid.uuid5(_EXPRESS_ID_NAMESPACE, name) if shift_for_name(name) is not None else None


def back(value: Any, shift: datetime.timedelta | None) -> Any:
    """`value` (a datetime, an ISO string as moto's events hold, or epoch milliseconds as a
    string or int, as log records hold) moved `shift` into the past; anything else unchanged."""
    if not shift or value is None:
        return value
    if isinstance(value, datetime.datetime):
        return value - shift
    if isinstance(value, int) and not isinstance(value, bool):
        return value - int(shift.total_seconds() * 1000)
    if isinstance(value, str):
        if value.isdigit():
            return str(int(value) - int(shift.total_seconds() * 1000))
        try:
            parsed = datetime.datetime.fromisoformat(value)
        except ValueError:
            return value
        return (parsed - shift).isoformat(timespec="milliseconds")
    return value


def shifted_events(arn: str | None, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    shift = shift_for_arn(arn)
    if shift is None:
        return events
    return [{**event, "timestamp": back(event.get("timestamp"), shift)} for event in events]


def execution_arn_of(env: Any) -> str | None:
    """The running execution's ARN from moto's evaluation environment (None if it has none)."""
    try:
        return str(env.states.context_object.context_object_data["Execution"]["Id"])
    except (AttributeError, KeyError, TypeError):
        return None


@contextlib.contextmanager
def backdating(connection: Any, execution_arn: str | None) -> Iterator[None]:
    """A connection state change (a de-authorization) made inside the block by a planned
    execution's call is dated back with it: DescribeConnection's LastModifiedTime (epoch
    seconds) is when Stepscope records the change."""
    before = getattr(connection, "last_modified_time", None)
    try:
        yield
    finally:
        shift = shift_for_arn(execution_arn)
        after = getattr(connection, "last_modified_time", None)
        if shift and isinstance(after, int | float) and after != before:
            connection.last_modified_time = after - shift.total_seconds()


def install(responses: Any) -> None:
    """Shift the stop date DescribeExecution and ListExecutions answer (after redrive.install)."""
    original_describe = responses.describe_execution
    original_list = responses.list_executions

    def describe_execution(self: Any) -> Any:
        result = original_describe(self)
        _shift_stop(result.result)
        return result

    def list_executions(self: Any) -> Any:
        result = original_list(self)
        for item in result.result.get("executions", []):
            _shift_stop(item)
        return result

    responses.describe_execution = describe_execution
    responses.list_executions = list_executions


def _shift_stop(item: dict[str, Any]) -> None:
    shift = shift_for_arn(item.get("executionArn"))
    if shift is not None and item.get("stopDate") is not None:
        item["stopDate"] = back(item["stopDate"], shift)
