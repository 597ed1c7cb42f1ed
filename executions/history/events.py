"""Event-shape helpers: scalars, timestamps, detail keys, and CloudWatch log records as events.

Everything here runs once or several times per history event, so the common well-formed case
(an int id, epoch-second timestamps, JSON strings without padding) is checked first and the
general, tolerant path only runs when that fails.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import msgspec

HTTP_STATUS_ERROR_PREFIX = "States.Http.StatusCode."

_EPOCH_MS_THRESHOLD = 1e11  # 1e11 s is the year 5138, so anything larger is milliseconds
# msgspec decodes a `parameters`/`output` string to the same values as json.loads (integers of
# any size included) in under half its time; what it refuses and json.loads may take (NaN, a
# BOM, lone surrogates, 1e400) goes on to the scanner and json.loads, which give the answer.
_decode_json: Callable[[str | bytes], Any] = msgspec.json.Decoder().decode
# On a small string json.loads() spends more time around the scan than in it (type and BOM
# checks, two whitespace regexes); `load_json` calls the scanner directly.
_scan_json: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]  # typeshed lacks it


# --------------------------------------------------------------------------- scalars


def load_json(raw: str | bytes) -> Any:
    """`json.loads(raw)`, or None when it is not JSON; never raises."""
    try:
        return _decode_json(raw)
    except (msgspec.DecodeError, ValueError, RecursionError):
        pass  # ValueError: a str msgspec cannot encode to UTF-8 (a lone surrogate)
    if type(raw) is str:
        try:
            value, end = _scan_json(raw, 0)
        except (StopIteration, ValueError, RecursionError):
            pass  # leading whitespace, a BOM or an error: json.loads gives the exact answer
        else:
            if end == len(raw):
                return value
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        return None


# Ids are 64-bit and counts 32-bit in the AWS API, and the columns that store them are sized
# to match: a value outside is not one (a broken emulator or proxy may send it).
BIGINT_MAX = 2**63 - 1
INT_MAX = 2**31 - 1


def in_range(value: object, top: int, bottom: int = 0) -> int | None:
    """`value` when it is an int between `bottom` and `top`, else None."""
    return value if isinstance(value, int) and bottom <= value <= top else None


def as_int(value: object) -> int | None:
    """An int from an int, an integral float or a decimal string; None otherwise."""
    if type(value) is int:  # bools are not ints here: type(True) is bool
        return value
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    if isinstance(value, str) and 0 < len(value) < 20:
        try:
            return int(value)
        except ValueError:
            return None
    return None


@lru_cache(maxsize=1024)
def status_from_error(error: str) -> int | None:
    """`States.Http.StatusCode.404` → 404."""
    # Cached: a history repeats the same few error names for every failed call.
    if error.startswith(HTTP_STATUS_ERROR_PREFIX):
        code = as_int(error[len(HTTP_STATUS_ERROR_PREFIX) :])
        if code is not None and 100 <= code <= 999:
            return code
    return None


def as_text(value: object) -> str:
    """A string field as is; anything else as JSON (empty for None or the unprintable)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    # Emulators sometimes put the response body object itself in `cause`.
    try:
        return json.dumps(value, default=str)
    except (ValueError, TypeError, RecursionError):
        return ""


def as_list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


# --------------------------------------------------------------------------- timestamps


def parse_timestamp(value: object) -> datetime | None:
    """datetime, epoch seconds or milliseconds (number or numeric string), or ISO 8601 → UTC."""
    if (type(value) is float or type(value) is int) and abs(value) < _EPOCH_MS_THRESHOLD:
        # The raw API's epoch seconds: the common case, kept free of the checks below.
        try:
            return datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    try:
        if isinstance(value, datetime):
            aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
            return aware.astimezone(UTC)
        if isinstance(value, bool):
            return None
        if isinstance(value, int | float):
            return _from_epoch(float(value))
        if isinstance(value, str):
            return _timestamp_from_text(value.strip())
    except (ValueError, OverflowError, OSError):
        pass
    return None


def _timestamp_from_text(text: str) -> datetime | None:
    if not text or len(text) > 64:
        return None
    try:
        return _from_epoch(float(text))
    except ValueError:
        pass
    parsed = datetime.fromisoformat(text)
    aware = parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
    return aware.astimezone(UTC)


def _from_epoch(seconds: float) -> datetime | None:
    if not math.isfinite(seconds):
        return None
    if abs(seconds) >= _EPOCH_MS_THRESHOLD:
        seconds /= 1000.0
    return datetime.fromtimestamp(seconds, UTC)


def event_list(events: object) -> Iterable[Any] | None:
    """The events of a page (a whole GetExecutionHistory response is accepted in place of its
    events list), or None when they are not a list."""
    if isinstance(events, Mapping):
        events = events.get("events")
    if isinstance(events, str | bytes) or not isinstance(events, Iterable):
        return None
    return events


# --------------------------------------------------------------------------- detail keys


@lru_cache(maxsize=512)
def details_key(event_type: str) -> str:
    """The HistoryEvent member that holds an event type's details (`TaskFailed` → taskFailed…)."""
    return _details_key(event_type)


def _details_key(event_type: str) -> str:
    if event_type.endswith("StateEntered"):
        return "stateEnteredEventDetails"
    if event_type.endswith("StateExited"):
        return "stateExitedEventDetails"
    return event_type[:1].lower() + event_type[1:] + "EventDetails"


# The hot path looks known types up here instead of calling details_key().
DETAILS_KEYS = {
    t: _details_key(t)
    for t in (
        "TaskStateEntered", "TaskScheduled", "TaskStarted", "TaskSucceeded", "TaskFailed",
        "TaskTimedOut", "TaskStartFailed", "TaskSubmitFailed", "TaskSubmitted", "TaskStateExited",
        "TaskStateAborted", "EvaluationFailed", "ExecutionRedriven", "MapIterationStarted",
        "ExecutionFailed", "ExecutionTimedOut", "ExecutionAborted", "ParallelStateEntered",
        "MapStateEntered", "PassStateEntered", "ChoiceStateEntered", "WaitStateEntered",
    )
}  # fmt: skip


# --------------------------------------------------------------------------- log events


def normalize_log_event(message: str | bytes | Mapping[str, Any]) -> dict[str, Any] | None:
    """A CloudWatch execution-log record as a GetExecutionHistory-shaped event, or None.

    Log records carry every envelope field as a string and the timestamp in milliseconds;
    `details` holds what history puts under `<type>EventDetails`.
    """
    record = load_json(message) if isinstance(message, str | bytes) else message
    if not isinstance(record, Mapping):
        return None
    event_type = record.get("type")
    event_id = as_int(record.get("id"))
    if not isinstance(event_type, str) or not event_type or event_id is None:
        return None
    arn = record.get("execution_arn")
    event: dict[str, Any] = {
        "id": event_id,
        "previousEventId": as_int(record.get("previous_event_id")) or 0,
        "type": event_type,
        "timestamp": parse_timestamp(record.get("event_timestamp")),
        "_execution_arn": arn if isinstance(arn, str) else "",
        "_redrive_count": as_int(record.get("redrive_count")) or 0,
    }
    details = record.get("details")
    if isinstance(details, Mapping):
        event[details_key(event_type)] = dict(details)
    return event
