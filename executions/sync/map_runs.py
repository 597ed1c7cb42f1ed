"""Map Runs in the sync: record the runs a Distributed Map parent's history started, and link the
child executions that ran its items.

A child's ARN names its run's state machine and label (`execution:MACHINE/LABEL:NAME`,
executions.history.map_runs), and ListExecutions of the parent's state machine never returns it:
the children are found by listing each Map Run (ListExecutions with `mapRunArn`), and a child
stored some other way is linked by its ARN. What a run's events mean stays
`executions.history`'s business; this only stores them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from connections.aws import AwsError
from connections.aws.maps import MapRunDetail, describe_map_run
from executions import history
from executions.columns import pg_safe
from executions.models import Execution, MapRun
from executions.redaction import Redactor

if TYPE_CHECKING:
    from executions.sync.readers import StandardReader

# Runs whose children listing was cut short, listed again per machine and sync at most.
PENDING_PER_SYNC = 50
# Clock slack between a run's start (the parent's event) and its children's start dates.
SLACK = timedelta(seconds=1)
# The parent's events a Map Run is read from (a few per run, kept while the history streams).
MAP_EVENT_TYPES = frozenset(
    {
        "MapStateEntered",
        "MapRunStarted",
        "MapRunSucceeded",
        "MapRunFailed",
        "MapRunAborted",
        "MapRunRedriven",
    }
)


_END_EVENTS = {"SUCCEEDED": "MapRunSucceeded", "FAILED": "MapRunFailed", "ABORTED": "MapRunAborted"}


def map_events(events: Iterable[object]) -> list[Mapping[str, Any]]:
    """The page's Map Run events; junk (an event that is no object, a type that is no string)
    is the parser's to flag, not this filter's to trip over."""
    return [
        e
        for e in events
        if isinstance(e, Mapping)
        and isinstance(kind := e.get("type"), str)
        and kind in MAP_EVENT_TYPES
    ]


def stored_starts(parent: Execution) -> list[Mapping[str, Any]]:
    """The starts of the parent's stored Map Runs, as the events that began them: put before the
    new events of a read-on (after a redrive), so that `MapRunRedriven {mapRunArn}` and the run's
    new end find the run they belong to although its MapRunStarted is not read again."""
    events: list[Mapping[str, Any]] = []
    for run in MapRun.objects.filter(parent_execution=parent).order_by("started_at", "id"):
        events.append(
            {"type": "MapStateEntered", "stateEnteredEventDetails": {"name": run.map_state}}
        )
        events.append(
            {
                "type": "MapRunStarted",
                "timestamp": run.started_at,
                "mapRunStartedEventDetails": {"mapRunArn": run.arn},
            }
        )
        if run.redrive_count:
            details = {"mapRunArn": run.arn, "redriveCount": run.redrive_count}
            events.append({"type": "MapRunRedriven", "mapRunRedrivenEventDetails": details})
        if run.status in _END_EVENTS:  # as stored, until the new events say otherwise
            events.append(
                {
                    "type": _END_EVENTS[run.status],
                    "timestamp": run.stopped_at,
                    "mapRunFailedEventDetails": {"error": run.error, "cause": run.cause},
                }
            )
    return events


def record_map_runs(
    parent: Execution, runs: Sequence[history.MapRun], redactor: Redactor
) -> list[MapRun]:
    """Store (or bring up to date) the parent's Map Runs, then link the children already stored
    whose ARN names one of them."""
    stored = []
    for run in runs:
        if not run.arn:
            continue
        row, _ = MapRun.objects.update_or_create(
            arn=run.arn,
            defaults={
                "account_id": parent.account_id,
                "parent_execution": parent,
                "label": pg_safe(run.key[1][:256]),
                "map_state": pg_safe(run.map_state[:80]),
                "status": run.status,
                "error": pg_safe(redactor.text(run.error)[:256]),
                "cause": pg_safe(redactor.text(run.cause)),
                "redrive_count": run.redrive_count,
                "started_at": run.started_at,
                "stopped_at": run.ended_at,
                "children_listed": False,  # the parent changed: its children may have too
            },
        )
        stored.append(row)
    _link_stored_children(parent, runs, {r.arn: r for r in stored})
    return stored


def child_prefix(map_run_arn: str) -> str:
    """The ARN prefix the run's Standard children share: `…:execution:MACHINE/LABEL:`."""
    head, _, _ = map_run_arn.rpartition(":")
    return head.replace(":mapRun:", ":execution:", 1) + ":"


def _link_stored_children(
    parent: Execution, runs: Sequence[history.MapRun], rows: Mapping[str, MapRun]
) -> None:
    for prefix in {child_prefix(arn) for arn in rows}:
        children = Execution.objects.filter(
            account_id=parent.account_id, arn__startswith=prefix, map_run__isnull=True
        ).only("pk", "arn", "start_date")
        for child in children:
            # A label repeats across the parent's executions: only a run open when the child
            # started is its run (another execution's run of that label is not).
            run = history.run_of_child(child.arn, child.start_date, runs)
            row = rows.get(run.arn) if run is not None else None
            if row is not None and _open_at(row, child.start_date):
                Execution.objects.filter(pk=child.pk).update(map_run=row, parent_execution=parent)


def _open_at(run: MapRun, at: datetime) -> bool:
    if run.started_at is None:
        return False
    return run.started_at - SLACK <= at and (run.stopped_at is None or at <= run.stopped_at + SLACK)


def links_for(
    account_id: int, arn: str, start: datetime, known: Mapping[str, MapRun]
) -> dict[str, Any]:
    """The Execution fields linking a child to its Map Run and parent: the run it was listed
    under, else the stored run its ARN names that was open when it started; {} for an
    execution that is no Map Run's child (its links, if any, stay as they are)."""
    run = known.get(arn)
    if run is None and history.map_run_key(arn) != ("", ""):
        run = _stored_run_named(account_id, arn, start)
    if run is None:
        return {}
    return {"map_run": run, "parent_execution_id": run.parent_execution_id}


def _stored_run_named(account_id: int, arn: str, start: datetime) -> MapRun | None:
    machine, label = history.map_run_key(arn)
    head = arn.split(":execution:", 1)[0]
    candidates = MapRun.objects.filter(
        account_id=account_id, arn__startswith=f"{head}:mapRun:{machine}/{label}:"
    )
    open_then = [run for run in candidates if _open_at(run, start)]
    return open_then[0] if len(open_then) == 1 else None


def apply_detail(row: MapRun, detail: MapRunDetail) -> None:
    """What DescribeMapRun adds to the stored run: the tolerated failure figures and counts."""
    MapRun.objects.filter(pk=row.pk).update(
        tolerated_failure_percentage=detail.tolerated_failure_percentage,
        tolerated_failure_count=detail.tolerated_failure_count,
        execution_counts=detail.execution_counts,
        read_problem="",
    )


def note_unreadable(row: MapRun, problem: str, *, listed: bool) -> None:
    MapRun.objects.filter(pk=row.pk).update(
        read_problem=pg_safe(problem[:2000]), children_listed=listed
    )


def read_children(reader: StandardReader) -> None:
    """List the child executions of each Map Run stored in this sync, and of the machine's runs
    whose listing did not finish before (a transient error), and read them like any execution
    of the machine (ListExecutions of the machine never returns them). A Map Run AWS will not
    let us read or list costs only itself: its problem is stored on it and shown."""
    queued = {row.pk for row in reader.new_runs}
    pending = MapRun.objects.filter(
        parent_execution__state_machine=reader.machine, children_listed=False
    ).exclude(pk__in=queued)
    reader.new_runs.extend(pending.order_by("started_at", "id")[:PENDING_PER_SYNC])
    while reader.new_runs:
        row = reader.new_runs.pop(0)
        try:
            apply_detail(row, describe_map_run(reader.api, row.arn))
            for items in reader.api.execution_pages(map_run_arn=row.arn):
                reader.sync.beat()
                reader.read_children(items, row)
        except AwsError as exc:
            # Refused: given up until the parent changes. Transient: listed again next sync.
            note_unreadable(row, str(exc), listed=not exc.transient)
            reader.sync.note_error(f"Map Run {row.arn}: {exc.code}")
            if exc.transient:
                reader._write_unwritten()
                return  # AWS is struggling: the rest wait for the next sync too
        else:
            MapRun.objects.filter(pk=row.pk).update(children_listed=True)
        reader._write_unwritten()
