"""Redrive one execution: the dry run, the queued request, and the task's work.

The dry run asks AWS (DescribeExecution with the operator role) rather than trusting the
stored row: `redriveStatus` and its reason are AWS's to say. The redrive itself is queued
(operations/tasks.py) with a clientToken kept on the audit row, so a task run twice redrives
once; afterwards the execution is read again as a sync of its own.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from connections.aws import AwsError
from connections.aws.operator import NoOperatorRoleError, OperatorApi, RedriveCheck
from connections.models import AwsAccount, sync_stale_after
from executions.choices import StateMachineType
from executions.models import Execution
from executions.redaction import default_redactor
from operations.choices import ActionKind, ActionOutcome
from operations.models import OperatorAction

REFUSAL_CODES = frozenset({"ExecutionNotRedrivable", "InvalidArn", "ExecutionDoesNotExist"})


@dataclass(frozen=True)
class DryRun:
    """What the confirm page says: eligible, or why not (and whether AWS could be asked)."""

    eligible: bool
    reason: str
    check: RedriveCheck | None = None
    configure: bool = False  # no operator role: the reason says what to configure


def operator_account(execution: Execution) -> AwsAccount:
    """The account with its secrets: only the operator calls load them."""
    return AwsAccount.objects.get(pk=execution.account_id)


def dry_run(execution: Execution) -> DryRun:
    if execution.state_machine.type == StateMachineType.EXPRESS:
        return DryRun(False, "Express executions cannot be redriven (only Standard ones).")
    try:
        api = OperatorApi(operator_account(execution), execution.state_machine.region)
        check = api.redrive_check(execution.arn)
    except NoOperatorRoleError as exc:
        return DryRun(False, str(exc), configure=True)
    except AwsError as exc:
        return DryRun(False, f"AWS could not be asked: {exc}")
    refusal = check.refusal(timezone.now())
    return DryRun(not refusal, refusal or "AWS says REDRIVABLE.", check)


def redacted_request(arn: str, client_token: str) -> dict[str, Any]:
    redactor = default_redactor()
    return {"executionArn": redactor.text(arn), "clientToken": client_token}


def redrive_action(user: Any, execution: Execution, **extra: Any) -> OperatorAction:
    """An unsaved PENDING audit row for redriving `execution`, with a client token of its own:
    AWS treats the same token twice as one redrive, so a retried task cannot redrive twice."""
    token = uuid.uuid4().hex
    return OperatorAction(
        kind=ActionKind.REDRIVE,
        user=user,
        username=user.get_username(),
        account_id=execution.account_id,
        execution=execution,
        target=execution.arn,
        request=redacted_request(execution.arn, token),
        client_token=token,
        **extra,
    )


def queue_redrive(user: Any, execution: Execution) -> OperatorAction:
    """The audit row (PENDING) and, once it is committed, the task that redrives."""
    from operations.tasks import redrive_execution

    with transaction.atomic():
        action = redrive_action(user, execution)
        action.save()
        transaction.on_commit(lambda: redrive_execution.delay(action.pk))
    return action


def claimable(now: datetime) -> Q:
    """Rows a task may take: PENDING, or RUNNING under a task that went silent."""
    return Q(outcome=ActionOutcome.PENDING) | Q(
        outcome=ActionOutcome.RUNNING, claimed_at__lt=now - sync_stale_after()
    )


def carry_out_redrive(action_id: int, *, last_try: bool = True, share: float | None = None) -> str:
    """The task's work. Claims the row with a conditional UPDATE (a finished row is left
    alone, and so is one a live task holds), calls RedriveExecution with the row's token, records the answer. A transient
    error raises while tries are left (the task retries with the same token)."""
    now = timezone.now()
    # PENDING, or RUNNING under a task that went silent (killed mid-call): the same token is
    # sent again, so AWS redrives once. A live task's row is left to it.
    claimed = (
        OperatorAction.objects.filter(pk=action_id, kind=ActionKind.REDRIVE)
        .filter(claimable(now))
        .update(outcome=ActionOutcome.RUNNING, claimed_at=now)
    )
    if not claimed:
        return "already finished"
    action = OperatorAction.objects.select_related("execution__state_machine").get(pk=action_id)
    execution = action.execution
    if execution is None:
        _finish(action_id, ActionOutcome.FAILED, "The execution is no longer stored.")
        return ActionOutcome.FAILED
    try:
        api = OperatorApi(operator_account(execution), execution.state_machine.region, share)
        answer = api.redrive(execution.arn, action.client_token)
    except NoOperatorRoleError as exc:
        _finish(action_id, ActionOutcome.FAILED, str(exc))
        return ActionOutcome.FAILED
    except AwsError as exc:
        if exc.transient and not last_try:
            raise
        outcome = ActionOutcome.REFUSED if exc.code in REFUSAL_CODES else ActionOutcome.FAILED
        _finish(action_id, outcome, str(exc), exc.request_id)
        return outcome
    when = answer.redrive_date.isoformat() if answer.redrive_date else "now"
    _finish(action_id, ActionOutcome.SUCCEEDED, f"Redriven at {when}.", answer.request_id)
    return ActionOutcome.SUCCEEDED


def _finish(action_id: int, outcome: str, message: str, request_id: str = "") -> None:
    OperatorAction.objects.filter(pk=action_id, outcome=ActionOutcome.RUNNING).update(
        outcome=outcome,
        message=default_redactor().text(message)[:4000],
        aws_request_id=request_id[:128],
        finished_at=timezone.now(),
    )
