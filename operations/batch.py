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
from django.db.models import Count, F, Q, QuerySet
from django.utils import timezone

from connections.aws.operator import REDRIVABLE_STATUSES, REDRIVE_WINDOW
from connections.models import sync_stale_after
from executions.choices import ExecutionStatus, GroupStatus, StateMachineType
from executions.models import Execution, FailureGroup, HttpAttempt
from operations.choices import ActionKind, ActionOutcome
from operations.models import OperatorAction, RedriveBatch
from operations.redrive import carry_out_redrive, claimable, redrive_action

MAX_BATCH = 1000


@dataclass
class GroupDryRun:
    """The dry run of a group's or a filter's executions (the first MAX_BATCH, oldest first)."""

    eligible: list[Execution] = field(default_factory=list)
    not_eligible: Counter[str] = field(default_factory=Counter)
    truncated: bool = False  # more executions matched than one batch takes

    @property
    def reasons(self) -> list[tuple[str, int]]:
        # A list for templates: `.items` on a Counter is a lookup of the key "items" (0).
        return self.not_eligible.most_common()

    @property
    def total(self) -> int:
        return len(self.eligible) + sum(self.not_eligible.values())

    @property
    def account_ids(self) -> set[int]:
        return {e.account_id for e in self.eligible}


def group_executions(group: FailureGroup) -> QuerySet[Execution]:
    return Execution.objects.filter(attempts__failure_group=group).distinct()


def group_dry_run(group: FailureGroup) -> GroupDryRun:
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
    return dry_run_of(group_executions(group), redriven_since)


def filter_dry_run(executions: QuerySet[Execution]) -> GroupDryRun:
    """The executions a filter of the failing-executions page matches. "Already redriven since
    the group was resolved" asks of each execution's own groups: one that is resolved, and a
    redrive of the execution that succeeded after it was."""
    ids = list(_first_batch(executions).values_list("pk", flat=True))
    redriven_since = set(
        OperatorAction.objects.filter(
            kind=ActionKind.REDRIVE,
            outcome=ActionOutcome.SUCCEEDED,
            execution_id__in=ids[:MAX_BATCH],
            execution__attempts__failure_group__status=GroupStatus.RESOLVED,
            created_at__gte=F("execution__attempts__failure_group__status_changed_at"),
        ).values_list("execution_id", flat=True)
    )
    return dry_run_of(Execution.objects.filter(pk__in=ids), redriven_since)


def _first_batch(executions: QuerySet[Execution]) -> QuerySet[Execution]:
    # One more than a batch takes, to say that some were left out.
    return executions.order_by("start_date", "id")[: MAX_BATCH + 1]


def dry_run_of(executions: QuerySet[Execution], redriven_since: set[int]) -> GroupDryRun:
    now = timezone.now()
    dry = GroupDryRun()
    found = list(_first_batch(executions.select_related("state_machine")))
    dry.truncated = len(found) > MAX_BATCH
    found = found[:MAX_BATCH]
    refused = _refusals(found)
    for execution in found:
        reason = _why_not(execution, now, redriven_since) or refused.get(execution.pk, "")
        if reason:
            dry.not_eligible[reason] += 1
        else:
            dry.eligible.append(execution)
    return dry


def _refusals(executions: list[Execution]) -> dict[int, str]:
    """AWS's NOT_REDRIVABLE answers that still hold: the execution's last redrive was refused
    and it has not run since (a stop date after the refusal means it was redriven elsewhere).
    Stored answers only: asking DescribeExecution of each would spend the quota up front."""
    stops = {e.pk: e.stop_date for e in executions}
    last: dict[int, tuple[str, str, Any]] = {}
    rows = OperatorAction.objects.filter(kind=ActionKind.REDRIVE, execution_id__in=list(stops))
    for row in rows.order_by("created_at", "id").values_list(
        "execution_id", "outcome", "message", "created_at"
    ):
        last[row[0]] = row[1:]
    reasons = {}
    for pk, (outcome, message, at) in last.items():
        stop = stops.get(pk)
        if outcome == ActionOutcome.REFUSED and (stop is None or stop <= at):
            reasons[pk] = f"NOT_REDRIVABLE, AWS answered: {message[:200]}"
    return reasons


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
    dry = group_dry_run(group)
    return _create_batch(user, group.account_id, dry, group=group)


def start_filter_batch(
    user: Any, account_id: int, filters: dict[str, str], executions: QuerySet[Execution]
) -> RedriveBatch:
    """The batch of a filter's executions (dry run again at confirmation: what matches now),
    recording the filter; the caller has checked that they are all in `account_id`."""
    dry = filter_dry_run(executions.filter(account_id=account_id))
    return _create_batch(user, account_id, dry, filters=filters)


def _create_batch(user: Any, account_id: int, dry: GroupDryRun, **fields: Any) -> RedriveBatch:
    from operations.tasks import run_redrive_batch

    with transaction.atomic():
        batch = RedriveBatch.objects.create(
            account_id=account_id, user=user, username=user.get_username(), **fields
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
    running: int = 0  # redriven executions still running (as last read)

    @property
    def done(self) -> bool:
        return self.open == 0

    @property
    def settled(self) -> bool:
        """Nothing left to change the figures: no row open, no redriven execution running.
        The pages poll until then."""
        return self.open == 0 and self.running == 0


def progress(batch: RedriveBatch) -> Progress:
    return _progress_of(batch.actions.all())


def group_progress(group: FailureGroup) -> Progress:
    """The figures of every redrive of the group's executions (one alone, the group's batches,
    a filter's): a semi-join on the group's attempts, then two grouped counts."""
    members = HttpAttempt.objects.filter(failure_group_id=group.pk).values("execution_id")
    return _progress_of(
        OperatorAction.objects.filter(kind=ActionKind.REDRIVE, execution_id__in=members)
    )


def _progress_of(actions: QuerySet[OperatorAction]) -> Progress:
    by_outcome = Counter(dict(actions.order_by().values_list("outcome").annotate(n=Count("id"))))
    # Each execution once, whatever the number of its redrives: its status as last read.
    statuses = Counter(
        dict(
            Execution.objects.filter(
                pk__in=actions.filter(outcome=ActionOutcome.SUCCEEDED).values("execution_id")
            )
            .order_by()
            .values_list("status")
            .annotate(n=Count("id"))
        )
    )
    return Progress(
        total=sum(by_outcome.values()),
        open=by_outcome[ActionOutcome.PENDING] + by_outcome[ActionOutcome.RUNNING],
        redriven=sum(statuses.values()),
        refused=by_outcome[ActionOutcome.REFUSED],
        failed=by_outcome[ActionOutcome.FAILED],
        cancelled=by_outcome[ActionOutcome.CANCELLED],
        succeeded=statuses[ExecutionStatus.SUCCEEDED],
        failed_again=sum(statuses[s] for s in REDRIVABLE_STATUSES),
        running=statuses[ExecutionStatus.RUNNING],
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
