"""Redrive a failure group: the dry run (how many, and why not the rest), the batch, its run.

The dry run reads what is stored (one DescribeExecution per execution would spend the quota
before anything is redriven); AWS's own NOT_REDRIVABLE answers arrive as "refused" rows when
the batch runs. The batch is its audit rows: one OperatorAction per eligible execution, each
with its clientToken, claimed one at a time with a conditional UPDATE. A redelivered task
(after a worker died) resumes with the rows still open; a cancelled batch stops before the
next row and marks the rest cancelled.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from connections.aws_operator import REDRIVABLE_STATUSES, REDRIVE_WINDOW
from connections.models import sync_stale_after
from executions.choices import ExecutionStatus, GroupStatus, StateMachineType
from executions.models import Execution, FailureGroup
from operations.choices import ActionKind, ActionOutcome
from operations.models import OperatorAction, RedriveBatch
from operations.redrive import carry_out_redrive, claimable, redrive_action

MAX_BATCH = 1000


@dataclass
class GroupDryRun:
    eligible: list[Execution] = field(default_factory=list)
    not_eligible: Counter[str] = field(default_factory=Counter)

    @property
    def reasons(self) -> list[tuple[str, int]]:
        # A list for templates: `.items` on a Counter is a lookup of the key "items" (0).
        return self.not_eligible.most_common()

    @property
    def total(self) -> int:
        return len(self.eligible) + sum(self.not_eligible.values())


def group_executions(group: FailureGroup) -> QuerySet[Execution]:
    return (
        Execution.objects.filter(attempts__failure_group=group)
        .select_related("state_machine")
        .distinct()
        .order_by("start_date", "id")
    )


def group_dry_run(group: FailureGroup) -> GroupDryRun:
    now = timezone.now()
    resolved_at = group.status_changed_at if group.status == GroupStatus.RESOLVED else None
    redriven_since: set[int] = set()
    if resolved_at is not None:
        redriven_since = set(
            OperatorAction.objects.filter(
                kind=ActionKind.REDRIVE,
                outcome=ActionOutcome.SUCCEEDED,
                created_at__gte=resolved_at,
                execution__attempts__failure_group=group,
            ).values_list("execution_id", flat=True)
        )
    dry = GroupDryRun()
    for execution in group_executions(group)[:MAX_BATCH]:
        reason = _why_not(execution, now, redriven_since)
        if reason:
            dry.not_eligible[reason] += 1
        else:
            dry.eligible.append(execution)
    return dry


def _why_not(execution: Execution, now: Any, redriven_since: set[int]) -> str:
    if execution.state_machine.type == StateMachineType.EXPRESS:
        return "Express (only Standard executions redrive)"
    if execution.status not in REDRIVABLE_STATUSES:
        return f"{execution.get_status_display()} (only failed, timed-out or aborted ones)"
    if execution.stop_date is not None and now - execution.stop_date > REDRIVE_WINDOW:
        return "closed more than 14 days ago"
    if execution.pk in redriven_since:
        return "already redriven since the group was resolved"
    return ""


def start_batch(user: Any, group: FailureGroup) -> RedriveBatch:
    """The batch and one PENDING row per eligible execution, then (on commit) its task."""
    from operations.tasks import run_redrive_batch

    dry = group_dry_run(group)
    with transaction.atomic():
        batch = RedriveBatch.objects.create(
            account_id=group.account_id, group=group, user=user, username=user.get_username()
        )
        rows = [redrive_action(user, execution, batch=batch) for execution in dry.eligible]
        OperatorAction.objects.bulk_create(rows)
        transaction.on_commit(lambda: run_redrive_batch.delay(batch.pk))
    return batch


def quota_share() -> float:
    percent = int(settings.STEPSCOPE["REDRIVE_QUOTA_PERCENT"])
    return max(1, min(100, percent)) / 100


def run_batch(batch_id: int) -> list[int]:
    """Redrive the batch's open rows in order; returns the executions redriven (to re-sync)."""
    redriven: list[int] = []
    share = quota_share()
    while True:
        batch = RedriveBatch.objects.filter(pk=batch_id).first()
        if batch is None:
            return redriven
        if batch.cancelled_at is not None:
            _cancel_open_rows(batch_id)
            break
        RedriveBatch.objects.filter(pk=batch_id).update(heartbeat_at=timezone.now())
        row = (
            batch.actions.filter(claimable(timezone.now()))
            .order_by("id")
            .values("pk", "execution_id")
            .first()
        )
        if row is None:
            if batch.actions.filter(outcome=ActionOutcome.RUNNING).exists():
                # A row another task holds (or one not stale yet): the batch stays open and the
                # beat resumes it once it goes silent.
                return redriven
            break
        if carry_out_redrive(row["pk"], share=share) == ActionOutcome.SUCCEEDED:
            redriven.append(row["execution_id"])
    RedriveBatch.objects.filter(pk=batch_id, finished_at__isnull=True).update(
        finished_at=timezone.now()
    )
    return redriven


def cancel_batch(batch: RedriveBatch) -> None:
    """Stops the batch before its next row (the row being redriven finishes)."""
    RedriveBatch.objects.filter(pk=batch.pk, cancelled_at__isnull=True).update(
        cancelled_at=timezone.now()
    )
    if batch.finished_at is not None:
        return
    _cancel_open_rows(batch.pk)


def _cancel_open_rows(batch_id: int) -> None:
    # Only PENDING rows: a RUNNING one is in AWS's hands and is finished by its task.
    OperatorAction.objects.filter(batch_id=batch_id, outcome=ActionOutcome.PENDING).update(
        outcome=ActionOutcome.CANCELLED,
        message="The batch was cancelled.",
        finished_at=timezone.now(),
    )


@dataclass(frozen=True)
class Progress:
    total: int
    open: int
    redriven: int
    refused: int
    failed: int
    cancelled: int
    succeeded: int  # redriven executions that then succeeded (as last read)
    failed_again: int

    @property
    def done(self) -> bool:
        return self.open == 0


def progress(batch: RedriveBatch) -> Progress:
    by_outcome = Counter(batch.actions.values_list("outcome", flat=True))
    statuses = Counter(
        batch.actions.filter(outcome=ActionOutcome.SUCCEEDED).values_list(
            "execution__status", flat=True
        )
    )
    return Progress(
        total=sum(by_outcome.values()),
        open=by_outcome[ActionOutcome.PENDING] + by_outcome[ActionOutcome.RUNNING],
        redriven=by_outcome[ActionOutcome.SUCCEEDED],
        refused=by_outcome[ActionOutcome.REFUSED],
        failed=by_outcome[ActionOutcome.FAILED],
        cancelled=by_outcome[ActionOutcome.CANCELLED],
        succeeded=statuses[ExecutionStatus.SUCCEEDED],
        failed_again=sum(statuses[s] for s in REDRIVABLE_STATUSES),
    )


def resume_stale_batches() -> list[int]:
    """Batches whose task went silent (a killed worker: its message waits an hour in Redis),
    each taken with a conditional UPDATE so two beats queue it once; returns their ids."""
    stale = timezone.now() - sync_stale_after()
    resumed = []
    candidates = RedriveBatch.objects.filter(finished_at__isnull=True).filter(
        Q(heartbeat_at__lt=stale) | Q(heartbeat_at__isnull=True, created_at__lt=stale)
    )
    for batch_id in candidates.values_list("pk", flat=True)[:100]:
        taken = (
            RedriveBatch.objects.filter(pk=batch_id, finished_at__isnull=True)
            .filter(Q(heartbeat_at__lt=stale) | Q(heartbeat_at__isnull=True))
            .update(heartbeat_at=timezone.now())
        )
        if taken:
            resumed.append(batch_id)
    return resumed
