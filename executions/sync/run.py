"""The run lifecycle: claim the account, open and close its SyncRun, pick the accounts due."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import DatabaseError, transaction
from django.db.models import Min
from django.utils import timezone

from connections.choices import SyncStatus
from connections.models import AwsAccount, SyncRun, sync_stale_after
from connections.unreadable import line_of
from executions.classification import reclassify_after_run
from executions.grouping import drop_empty_open, refresh_groups
from executions.models import FailureGroup, HttpAttempt

log = logging.getLogger(__name__)
Progress = Callable[[str], None]
ALREADY_RUNNING = "a sync of this account is already running"


@dataclass
class SyncSummary:
    account: str
    status: str = SyncStatus.OK
    api_calls: Counter[str] = field(default_factory=Counter)
    throttles: Counter[str] = field(default_factory=Counter)
    executions_added: int = 0
    executions_updated: int = 0
    attempts_added: int = 0
    errors: list[str] = field(default_factory=list)
    unreadable: list[dict[str, str]] = field(default_factory=list)
    skipped: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "account": self.account,
            "status": self.status,
            "api_calls": dict(self.api_calls),
            "throttles": dict(self.throttles),
            "executions_added": self.executions_added,
            "executions_updated": self.executions_updated,
            "attempts_added": self.attempts_added,
            "errors": self.errors,
            "unreadable": self.unreadable,
            "skipped": self.skipped,
        }


def due_account_ids(now: datetime | None = None) -> list[int]:
    """Enabled accounts whose own interval has passed since their last sync, unless a live
    run holds them (a stale run is due: the trigger takes it over)."""
    now = now or timezone.now()
    due = []
    for account in (
        AwsAccount.objects.enabled()
        .claimable(now)
        .only("pk", "last_synced_at", "sync_interval_seconds")
    ):
        last = account.last_synced_at
        if last is None or (now - last).total_seconds() >= account.sync_interval_seconds:
            due.append(account.pk)
    return due


class ClaimLostError(Exception):
    """This step's run no longer holds the account (closed, or taken over as stale)."""


def begin_sync(account: AwsAccount, trigger: str, *, one_at_a_time: bool = False) -> SyncRun | None:
    """Open a SyncRun holding the account's claim; None when a live run holds it.
    `one_at_a_time`: the caller runs the steps one after the other in this process."""
    now = timezone.now()
    with transaction.atomic():
        newest = HttpAttempt.objects.order_by("-id").values_list("id", flat=True).first()
        run = SyncRun.objects.create(
            account=account,
            trigger=trigger,
            attempts_above=newest or 0,
            steps_one_at_a_time=one_at_a_time,
        )
        # The UPDATE locks the account row until commit: a concurrent trigger waits, then sees
        # the fresh heartbeat and takes nothing.
        taken = (
            AwsAccount.objects.claimable(now)
            .filter(pk=account.pk)
            .update(sync_run=run, sync_heartbeat_at=now, sync_status=SyncStatus.RUNNING)
        )
        if not taken:
            transaction.set_rollback(True)
            return None
        # Holding the claim, no other run is live: unfinished ones lost their worker or steps.
        unfinished = SyncRun.objects.filter(account=account, finished_at=None).exclude(pk=run.pk)
        # They never had their final pass: this run's covers what they wrote too (0: a run
        # from before the mark existed, whose writes are not known).
        floor = unfinished.aggregate(floor=Min("attempts_above"))["floor"]
        if floor and floor < run.attempts_above:
            run.attempts_above = floor
            run.steps_one_at_a_time = False  # what they wrote may have raced
            run.save(update_fields=["attempts_above", "steps_one_at_a_time"])
        abandoned = unfinished.update(
            finished_at=now,
            status=SyncStatus.FAILED,
            errors=[
                f"no progress for {_minutes(sync_stale_after())}: its worker stopped or"
                " its queued steps were lost (e.g. a broker restart); the next run resumed"
                " from the stored cursors"
            ],
            progress="abandoned",
        )
    if abandoned:
        # Its writer died before flushing: groups it added attempts to have stale counts.
        refresh_groups(FailureGroup.objects.filter(account=account).values_list("pk", flat=True))
    return run


def _minutes(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    return f"{seconds // 60} min" if seconds >= 120 else f"{seconds} s"


def _final_pass(run: SyncRun) -> list[str]:
    """Reclassify what the run's writes gave new context once all its steps have committed
    (steps running at once cannot see each other's uncommitted failures); its problems.
    Steps that ran one after the other each saw all that came before (every batch reclassifies
    what it is new context for, `Classifier.reclassify_affected`): nothing to put right."""
    changed = 0
    try:
        if not run.steps_one_at_a_time:
            changed = reclassify_after_run(run.account, run.attempts_above)
        # What the run's reclassifications emptied goes now that none of its steps can still
        # write to it (grouping.refresh_groups says why not before).
        drop_empty_open(FailureGroup.objects.filter(account=run.account, count=0))
    except DatabaseError as exc:
        # Only the class name: a database message may quote stored values.
        log.warning("sync %s: final reclassification failed: %s", run.account.name, type(exc))
        return [
            "the final reclassification of this run failed (database error); "
            "`manage.py reclassify --all` brings the classifications up to date"
        ]
    if changed:
        log.info("sync %s: final pass reclassified %d attempts", run.account.name, changed)
    return []


def finish_sync(run_id: int) -> dict[str, Any]:
    """Close the run, set the account's status and release the claim.

    A run already closed (taken over as stale, its callback redelivered late) keeps the status
    it was closed with and touches neither the account nor the claim of the run that took over.
    """
    run = SyncRun.objects.select_related("account").get(pk=run_id)
    if run.finished_at is None:
        run.errors = list(run.errors) + _final_pass(run)
    problems = list(run.errors) + [line_of(p) for p in run.unreadable]
    # A resource that could not be read costs itself, not the run: partial, as for other errors.
    status = SyncStatus.FAILED if run.fatal else SyncStatus.PARTIAL if problems else SyncStatus.OK
    now = timezone.now()
    closed = SyncRun.objects.filter(pk=run_id, finished_at=None).update(
        finished_at=now, status=status, progress="done", errors=run.errors
    )
    if closed:
        AwsAccount.objects.filter(pk=run.account_id, sync_run=run_id).update(
            sync_run=None,
            sync_heartbeat_at=None,
            sync_status=status,
            last_synced_at=now,
            last_error="; ".join(problems[:3])[:2000] if status != SyncStatus.OK else "",
        )
    else:
        status = SyncStatus(run.status)
    return SyncSummary(
        account=run.account.name,
        status=status,
        api_calls=Counter(run.api_calls),
        throttles=Counter(run.throttles),
        executions_added=run.executions_added,
        executions_updated=run.executions_updated,
        attempts_added=run.attempts_added,
        # The unreadable resources as sentences too, for whoever reads only the errors.
        errors=problems,
        unreadable=list(run.unreadable),
    ).as_dict()
