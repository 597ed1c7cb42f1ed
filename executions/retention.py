"""Retention: executions (with their attempts) that stopped more than RETENTION_DAYS ago go.

Pruning runs in small batches, each its own short transaction, so no statement holds locks on
more than BATCH rows and a sync writing at the same time waits at most one batch. It keeps no
state of its own: what is old is read from the data on every run, so a run that was killed
resumes where it stopped, and a second run at the same time takes other rows (SKIP LOCKED) or
finds nothing left. Failure groups and endpoints that may have lost attempts are recognised by
their own first-seen time (older than the cutoff), recounted from what is left, and a group
left empty is deleted when it is open (nothing to show: `grouping.drop_empty_open`) but kept,
at count 0 with its last known times, when someone resolved or ignored it: a recurrence is then
still a regression, or still muted. (docs/reliability.md, "Retention".)
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from connections.models import Endpoint
from executions.grouping import drop_empty_open
from executions.models import Execution, ExecutionQuerySet, FailureGroup, HttpAttempt

# Rows per DELETE (and per recount UPDATE): small enough that a batch takes milliseconds.
BATCH = 1000


def retention_problem(raw: object) -> str | None:
    """Why RETENTION_DAYS is unusable, in words (None when it is fine). 0 keeps everything."""
    try:
        days = int(str(raw).strip())
    except ValueError:
        return f"RETENTION_DAYS must be a whole number of days, not {raw!r}"
    if days < 0:
        return f"RETENTION_DAYS must be 0 (keep everything) or more, not {days}"
    return None


def retention_days() -> int:
    """The configured retention; 0 (keep everything) when unset. A bad value is refused by a
    system check (dashboard/checks.py) before anything runs; here it prunes nothing."""
    raw = settings.STEPSCOPE.get("RETENTION_DAYS", "30")
    return 0 if retention_problem(raw) else int(str(raw).strip())


def cutoff_for(days: int, now: datetime | None = None) -> datetime | None:
    return None if days <= 0 else (now or timezone.now()) - timedelta(days=days)


@dataclass
class PruneResult:
    cutoff: datetime | None
    executions: int = 0
    attempts: int = 0
    groups_recounted: int = 0
    groups_deleted: int = 0
    dry_run: bool = False

    def as_dict(self) -> dict[str, object]:
        return {
            "cutoff": self.cutoff.isoformat() if self.cutoff else None,
            "executions": self.executions,
            "attempts": self.attempts,
            "groups_recounted": self.groups_recounted,
            "groups_deleted": self.groups_deleted,
            "dry_run": self.dry_run,
        }


def old_executions(cutoff: datetime) -> ExecutionQuerySet:
    """Stopped before the cutoff (a running one, stop_date null, stays until it has stopped and
    aged; a redrive moves stop_date on). Answered from the exec_stop index."""
    return Execution.objects.filter(stop_date__lt=cutoff).order_by()


def prune(
    days: int | None = None, *, dry_run: bool = False, now: datetime | None = None
) -> PruneResult:
    """Delete what is older than the retention and bring groups and endpoints back in line."""
    cutoff = cutoff_for(retention_days() if days is None else days, now)
    result = PruneResult(cutoff=cutoff, dry_run=dry_run)
    if cutoff is None:
        return result
    if dry_run:
        old = old_executions(cutoff)
        result.executions = old.count()
        result.attempts = HttpAttempt.objects.filter(execution__in=old.values("pk")).count()
        return result
    # Attempts first, by their own ids, so one execution with thousands of Map iterations is
    # still deleted BATCH rows at a time; then the executions, which have none left by then.
    while (n := _delete_attempt_batch(cutoff)) > 0:
        result.attempts += n
    while (n := _delete_execution_batch(cutoff)) > 0:
        result.executions += n
    result.groups_recounted, result.groups_deleted = _refresh_groups(cutoff)
    _refresh_endpoints(cutoff)
    return result


def _delete_attempt_batch(cutoff: datetime) -> int:
    with transaction.atomic():
        ids = list(
            HttpAttempt.objects.filter(execution__stop_date__lt=cutoff)
            .order_by()
            .select_for_update(skip_locked=True, of=("self",))
            .values_list("pk", flat=True)[:BATCH]
        )
        if ids:
            # Nothing points at an attempt: one plain DELETE … WHERE id IN (…).
            HttpAttempt.objects.filter(pk__in=ids).delete()
        return len(ids)


def _delete_execution_batch(cutoff: datetime) -> int:
    with transaction.atomic():
        ids = list(
            old_executions(cutoff)
            .select_for_update(skip_locked=True)
            .values_list("pk", flat=True)[:BATCH]
        )
        if ids:
            # Django's delete: its cascade removes an attempt a sync added meanwhile (none,
            # normally), in one more statement bounded by the same ids.
            Execution.objects.filter(pk__in=ids).delete()
        return len(ids)


def _id_batches(queryset: QuerySet[Any]) -> Iterator[list[int]]:
    """The ids of `queryset` in keyset batches of BATCH, each batch inside its own short
    transaction (the caller's work on it included: the generator waits inside the block). Run
    it to the end: leaving the loop early closes the generator inside the block, which rolls
    that batch's work back."""
    last_id = 0
    while True:
        with transaction.atomic():
            ids = list(
                queryset.filter(pk__gt=last_id).order_by("pk").values_list("pk", flat=True)[:BATCH]
            )
            if not ids:
                return
            last_id = ids[-1]
            yield ids


def _refresh_groups(cutoff: datetime) -> tuple[int, int]:
    """Groups first seen before the cutoff are the only ones that can have lost attempts:
    recount them (FailureGroup.recount: exact count, first/last seen from what is left)."""
    recounted = deleted = 0
    for ids in _id_batches(FailureGroup.objects.filter(first_seen_at__lt=cutoff)):
        recounted += FailureGroup.objects.filter(pk__in=ids).recount()
        # An open group with no attempt left and nothing since the cutoff shows nothing.
        deleted += drop_empty_open(FailureGroup.objects.filter(pk__in=ids, last_seen_at__lt=cutoff))
    return recounted, deleted


def _refresh_endpoints(cutoff: datetime) -> None:
    """An endpoint's first seen is that of its oldest stored attempt, as for groups; one with
    none left keeps its times (it is configuration: templates, names, links)."""
    oldest = (
        HttpAttempt.objects.filter(endpoint=OuterRef("pk"))
        .order_by("occurred_at")
        .values("occurred_at")[:1]
    )
    for ids in _id_batches(Endpoint.objects.filter(first_seen_at__lt=cutoff)):
        Endpoint.objects.filter(pk__in=ids).update(
            first_seen_at=Coalesce(Subquery(oldest), F("first_seen_at"))
        )
