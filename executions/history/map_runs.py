"""Distributed Map Runs: what a parent's history says of them, and which run a child belongs to.

A Distributed Map's parent history holds no iteration events and no HTTP calls (reference §8):
`MapStateStarted {length: 0}` → `MapRunStarted {mapRunArn}` → `MapRunSucceeded` / `MapRunFailed
{error, cause}` / `MapRunAborted`, and on a redrive `MapRunRedriven {mapRunArn, redriveCount}`.
The calls live in child executions whose ARN names the Map Run's state machine and label
(`execution:MACHINE/LABEL:NAME` for `mapRun:MACHINE/LABEL:ID`). A label repeats across the
parent's executions (it is the Map state's `Label`), so a child is linked by label and time:
the run of that label that was open when the child started.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from connections.arn import parse
from executions.history.events import as_int, as_text, parse_timestamp

RUNNING, SUCCEEDED, FAILED, ABORTED = "RUNNING", "SUCCEEDED", "FAILED", "ABORTED"
_ENDS = {"MapRunSucceeded": SUCCEEDED, "MapRunFailed": FAILED, "MapRunAborted": ABORTED}


@dataclass(slots=True)
class MapRun:
    """One Map Run of a Distributed Map state, as its parent's history tells it."""

    arn: str
    parent_execution_arn: str
    map_state: str  # the Map state's name ("" when its MapStateEntered was not seen)
    status: str = RUNNING
    error: str = ""
    cause: str = ""
    redrive_count: int = 0
    started_at: datetime | None = None
    ended_at: datetime | None = None

    @property
    def key(self) -> tuple[str, str]:
        return map_run_key(self.arn)


def map_run_key(arn: object) -> tuple[str, str]:
    """(state machine, label) of a Map Run ARN or of a Map Run's child execution ARN;
    ("", "") for any other text."""
    parsed = parse(arn)
    if parsed is None or parsed.service != "states":
        return ("", "")
    kind, _, rest = parsed.resource.partition(":")
    if kind not in ("mapRun", "execution"):
        return ("", "")
    path, _, name = rest.rpartition(":")
    machine, slash, label = path.partition("/")
    if not (slash and machine and label and name):
        return ("", "")  # a plain execution (no label), or not a Map Run's at all
    return (machine, label)


def map_runs_in(events: Iterable[object], execution_arn: str = "") -> list[MapRun]:
    """The Map Runs a parent's history started, in order, with how each ended."""
    runs: list[MapRun] = []
    by_event: dict[int, MapRun] = {}
    by_arn: dict[str, MapRun] = {}
    map_state = ""
    run: MapRun | None
    for event in events:
        if not isinstance(event, Mapping):
            continue
        kind = event.get("type")
        event_id, prev = as_int(event.get("id")), as_int(event.get("previousEventId"))
        at = parse_timestamp(event.get("timestamp"))
        if kind == "MapStateEntered":
            name = _details(event, "stateEnteredEventDetails").get("name")
            map_state = name if isinstance(name, str) else ""
        elif kind == "MapRunStarted":
            arn = as_text(_details(event, "mapRunStartedEventDetails").get("mapRunArn"))
            started = MapRun(arn, execution_arn, map_state, started_at=at)
            runs.append(started)
            by_arn.setdefault(arn, started)
            if event_id is not None:
                by_event[event_id] = started
        elif kind == "MapRunRedriven":
            details = _details(event, "mapRunRedrivenEventDetails")
            arn = as_text(details.get("mapRunArn"))
            run = (by_arn.get(arn) if arn else None) or (runs[-1] if runs else None)
            if run is not None:
                run.status, run.error, run.cause, run.ended_at = RUNNING, "", "", None
                count = as_int(details.get("redriveCount"))
                run.redrive_count = count if count is not None else run.redrive_count + 1
        elif kind in _ENDS:
            # The end names its start; failing that (a lost page), the newest open run.
            run = by_event.get(prev) if prev is not None else None
            if run is None:
                run = next((r for r in reversed(runs) if r.status == RUNNING), None)
            if run is not None:
                details = _details(event, "mapRunFailedEventDetails")
                run.status, run.ended_at = _ENDS[kind], at
                run.error, run.cause = as_text(details.get("error")), as_text(details.get("cause"))
    return runs


def run_of_child(
    child_arn: str, started_at: datetime | None, runs: Sequence[MapRun]
) -> MapRun | None:
    """The Map Run a child execution belongs to: same machine and label, open when it started
    (the newest started before it when times do not tell); None when none matches."""
    key = map_run_key(child_arn)
    if key == ("", ""):
        return None
    same = [r for r in runs if r.key == key]
    if len(same) <= 1 or started_at is None:
        return same[-1] if same else None
    before = [r for r in same if r.started_at is None or r.started_at <= started_at]
    open_then = [r for r in before if r.ended_at is None or started_at <= r.ended_at]
    chosen = open_then or before
    return chosen[-1] if chosen else same[0]


def _details(event: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    details = event.get(key)
    return details if isinstance(details, Mapping) else {}
