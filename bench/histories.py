"""Long Standard histories (up to the 25,000-event cap) shaped like the sandbox's Map runs.

Running 3,000 Map iterations of an HTTP task through moto's interpreter would take minutes, so
the long histories are written here instead, event for event in the shape the sandbox produces
for its Map over HTTP tasks (see `fanout_definition`): iterations interleave four at a time,
every event links to its predecessor in the same iteration through previousEventId, retries
repeat TaskScheduled/TaskStarted/TaskFailed inside one state entry, caught failures leave the
task state with {"Error", "Cause"} and move on to a Pass state. Timestamps are datetimes; the
caller formats them the way its server stores them.
"""

from __future__ import annotations

import json
import random
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

MAP_STATE = "FanOut"
TASK_STATE = "GetStock"
SKIP_STATE = "Skip"
CONCURRENCY = 4
HEAD_EVENTS = 3  # ExecutionStarted, MapStateEntered, MapStateStarted
TAIL_EVENTS = 3  # MapStateSucceeded, MapStateExited, ExecutionSucceeded
ROLE_ARN = "arn:aws:iam::123456789012:role/stepscope-sandbox-states"

# Iteration kinds: (name, weight, attempts as (status, error) pairs, caught).
_OK = (200, "")
_KINDS: tuple[tuple[str, int, tuple[tuple[int, str], ...], bool], ...] = (
    ("ok", 78, (_OK,), False),
    ("retried-503", 12, ((503, "Service Unavailable"), _OK), False),
    ("retried-429-twice", 3, ((429, "Too Many Requests"), (429, "Too Many Requests"), _OK), False),
    ("caught-404", 5, ((404, "Not Found"),), True),
    ("caught-503-exhausted", 2, ((503, "Service Unavailable"),) * 3, True),
)


def fanout_definition(partner_url: str, connection_arn: str) -> dict[str, Any]:
    """The state machine the long histories belong to: a Map over an HTTP task."""
    task = {
        "Type": "Task",
        "Resource": "arn:aws:states:::http:invoke",
        "Parameters": {
            "ApiEndpoint.$": f"States.Format('{partner_url}/inventory/{{}}', $.sku)",
            "Method": "GET",
            "InvocationConfig": {"ConnectionArn": connection_arn},
        },
        "Retry": [
            {
                "ErrorEquals": ["States.Http.StatusCode.429", "States.Http.StatusCode.503"],
                "IntervalSeconds": 1,
                "MaxAttempts": 2,
                "BackoffRate": 2.0,
            }
        ],
        "Catch": [{"ErrorEquals": ["States.ALL"], "Next": SKIP_STATE, "ResultPath": "$.error"}],
        "ResultSelector": {"available.$": "$.ResponseBody.available"},
        "End": True,
    }
    return {
        "Comment": "Checks stock for every SKU (Map over an HTTP task); bench long histories.",
        "StartAt": MAP_STATE,
        "States": {
            MAP_STATE: {
                "Type": "Map",
                "ItemsPath": "$.skus",
                "MaxConcurrency": CONCURRENCY,
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "INLINE"},
                    "StartAt": TASK_STATE,
                    "States": {TASK_STATE: task, SKIP_STATE: {"Type": "Pass", "End": True}},
                },
                "End": True,
            }
        },
    }


@dataclass
class _Event:
    type: str
    details_key: str | None
    details: dict[str, Any] | None
    # Index (in this iteration's event list) of the event it follows; -1: the Map start.
    follows: int


def _iteration_events(
    index: int, attempts: tuple[tuple[int, str], ...], caught: bool, partner_url: str, conn: str
) -> list[_Event]:
    sku = f"sku-{index}"
    item = json.dumps({"sku": sku}, separators=(",", ":"))
    params = json.dumps(
        {
            "ApiEndpoint": f"{partner_url}/inventory/{sku}",
            "Method": "GET",
            "InvocationConfig": {"ConnectionArn": conn},
        },
        separators=(",", ":"),
    )
    http = {"resource": "invoke", "resourceType": "http"}
    events = [
        _Event(
            "MapIterationStarted",
            "mapIterationStartedEventDetails",
            {"name": MAP_STATE, "index": index},
            -1,
        ),
        _Event(
            "TaskStateEntered",
            "stateEnteredEventDetails",
            {"name": TASK_STATE, "input": item, "inputDetails": {"truncated": False}},
            0,
        ),
    ]
    for status, text in attempts:
        events.append(
            _Event(
                "TaskScheduled",
                "taskScheduledEventDetails",
                {**http, "region": "us-east-1", "parameters": params},
                len(events) - 1,
            )
        )
        events.append(_Event("TaskStarted", "taskStartedEventDetails", dict(http), len(events) - 1))
        if status == 200:
            events.append(
                _Event(
                    "TaskSucceeded",
                    "taskSucceededEventDetails",
                    {
                        **http,
                        "output": _response(sku, index),
                        "outputDetails": {"truncated": False},
                    },
                    len(events) - 1,
                )
            )
        else:
            events.append(
                _Event(
                    "TaskFailed",
                    "taskFailedEventDetails",
                    {**http, "error": f"States.Http.StatusCode.{status}", "cause": text},
                    len(events) - 1,
                )
            )
    last_status, last_text = attempts[-1]
    if last_status == 200:
        output = json.dumps({"available": index % 40}, separators=(",", ":"))
    else:
        error = {"Error": f"States.Http.StatusCode.{last_status}", "Cause": last_text}
        output = json.dumps({"sku": sku, "error": error}, separators=(",", ":"))
    exited = {"name": TASK_STATE, "output": output, "outputDetails": {"truncated": False}}
    events.append(_Event("TaskStateExited", "stateExitedEventDetails", exited, len(events) - 1))
    if caught:
        entered = {"name": SKIP_STATE, "input": output, "inputDetails": {"truncated": False}}
        events.append(
            _Event("PassStateEntered", "stateEnteredEventDetails", entered, len(events) - 1)
        )
        left = {"name": SKIP_STATE, "output": output, "outputDetails": {"truncated": False}}
        events.append(_Event("PassStateExited", "stateExitedEventDetails", left, len(events) - 1))
    events.append(
        _Event(
            "MapIterationSucceeded",
            "mapIterationSucceededEventDetails",
            {"name": MAP_STATE, "index": index},
            len(events) - 1,
        )
    )
    return events


def _response(sku: str, index: int) -> str:
    body = {"sku": sku, "available": index % 40}
    return json.dumps(
        {
            "Headers": {
                "server": ["PartnerAPI/1.0 Python/3.11"],
                "date": ["Thu, 26 Nov 2026 18:37:39 GMT"],
                "content-type": ["application/json"],
                "content-length": [str(len(json.dumps(body)))],
            },
            "ResponseBody": body,
            "StatusCode": 200,
            "StatusText": "OK",
        },
        separators=(",", ":"),
    )


Attempts = tuple[tuple[int, str], ...]  # (status, status text) per attempt


def _plan(target_events: int, rng: random.Random) -> list[tuple[Attempts, bool]]:
    """Iteration shapes whose events, with head and tail, come to at most `target_events`."""
    budget = target_events - HEAD_EVENTS - TAIL_EVENTS
    weights = [k[1] for k in _KINDS]
    plan: list[tuple[Attempts, bool]] = []
    while True:
        _, _, attempts, caught = rng.choices(_KINDS, weights=weights)[0]
        size = 4 + 3 * len(attempts) + (2 if caught else 0)
        if size > budget:
            # Fill what is left with the smallest shape that fits, then stop.
            if budget >= 7:
                plan.append(((_OK,), False))
            return plan
        plan.append((attempts, caught))
        budget -= size


def map_history(
    *,
    target_events: int,
    partner_url: str,
    connection_arn: str,
    start: datetime,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """One SUCCEEDED execution of `fanout_definition` with at most `target_events` events."""
    rng = random.Random(seed)
    plan = _plan(target_events, rng)
    skus = [{"sku": f"sku-{i}"} for i in range(len(plan))]
    items = json.dumps({"skus": skus}, separators=(",", ":"))
    clock = _Clock(start, rng)
    history: list[dict[str, Any]] = []

    def emit(kind: str, key: str | None, details: dict[str, Any] | None, prev: int) -> int:
        event: dict[str, Any] = {"id": len(history) + 1, "previousEventId": prev, "type": kind}
        event["timestamp"] = clock.tick()
        if key is not None and details is not None:
            event[key] = details
        history.append(event)
        return len(history)

    emit(
        "ExecutionStarted",
        "executionStartedEventDetails",
        {"input": items, "inputDetails": {"truncated": False}, "roleArn": ROLE_ARN},
        0,
    )
    entered = emit(
        "MapStateEntered",
        "stateEnteredEventDetails",
        {"name": MAP_STATE, "input": items, "inputDetails": {"truncated": False}},
        0,
    )
    map_started = emit(
        "MapStateStarted", "mapStateStartedEventDetails", {"length": len(plan)}, entered
    )
    last = map_started
    for ids, event in _interleaved(plan, partner_url, connection_arn):
        prev = map_started if event.follows < 0 else ids[event.follows]
        ids.append(emit(event.type, event.details_key, event.details, prev))
        last = ids[-1]
    outputs = json.dumps([{"available": i % 40} for i in range(len(plan))], separators=(",", ":"))
    done = emit("MapStateSucceeded", None, None, last)
    exited = emit(
        "MapStateExited",
        "stateExitedEventDetails",
        {"name": MAP_STATE, "output": outputs, "outputDetails": {"truncated": False}},
        done,
    )
    emit(
        "ExecutionSucceeded",
        "executionSucceededEventDetails",
        {"output": outputs, "outputDetails": {"truncated": False}},
        exited,
    )
    return history


def _interleaved(
    plan: list[tuple[tuple[tuple[int, str], ...], bool]], partner_url: str, conn: str
) -> Iterator[tuple[list[int], _Event]]:
    """Events of all iterations, CONCURRENCY at a time, round-robin, each with the list the
    caller fills with that iteration's event ids (so later events can name their predecessor)."""
    pending = deque(enumerate(plan))
    running: list[tuple[list[int], deque[_Event]]] = []
    while pending or running:
        while pending and len(running) < CONCURRENCY:
            index, (attempts, caught) = pending.popleft()
            events = deque(_iteration_events(index, attempts, caught, partner_url, conn))
            running.append(([], events))
        for slot in list(running):
            ids, events = slot
            yield ids, events.popleft()
            if not events:
                running.remove(slot)


class _Clock:
    """Monotonic timestamps a few milliseconds apart, like a busy Map run."""

    def __init__(self, start: datetime, rng: random.Random) -> None:
        self.now = start
        self.rng = rng

    def tick(self) -> datetime:
        self.now += timedelta(milliseconds=self.rng.randint(1, 25))
        return self.now
