"""Celery tasks of the operations app: thin, taking ids (operations/redrive.py does the work)."""

from __future__ import annotations

from typing import Any

from celery import Task, shared_task

from connections.aws import AwsTransientError
from executions.choices import ExecutionStatus

REDRIVE_TRIES = 3
RESYNC_TRIES = 10
RESYNC_COUNTDOWN_SECONDS = 30


@shared_task(bind=True, acks_late=True, max_retries=REDRIVE_TRIES - 1)
def redrive_execution(self: Task[Any, Any], action_id: int) -> str:
    """RedriveExecution for one audit row, then the execution read again."""
    from operations.models import OperatorAction
    from operations.redrive import carry_out_redrive

    try:
        outcome = carry_out_redrive(action_id, last_try=self.request.retries >= REDRIVE_TRIES - 1)
    except AwsTransientError as exc:
        raise self.retry(exc=exc, countdown=2**self.request.retries) from exc
    if outcome == "succeeded":
        action = OperatorAction.objects.filter(pk=action_id).values("execution_id").first()
        if action and action["execution_id"]:
            resync_execution.delay(action["execution_id"])
    return outcome


@shared_task(bind=True, acks_late=True, max_retries=RESYNC_TRIES)
def resync_execution(self: Task[Any, Any], execution_id: int) -> dict[str, Any]:
    """Read one execution again; while another sync holds the account, or while the redriven
    execution still runs (only its status is stored then), try again later. Out of tries, the
    scheduled sync's visit of RUNNING executions reads it on in the same way."""
    from executions.models import Execution
    from executions.sync import ALREADY_RUNNING, sync_one_execution

    summary = sync_one_execution(execution_id, trigger="redrive")
    busy = summary.get("skipped") == ALREADY_RUNNING
    running = Execution.objects.filter(pk=execution_id, status=ExecutionStatus.RUNNING).exists()
    if (busy or running) and self.request.retries < RESYNC_TRIES:
        raise self.retry(countdown=RESYNC_COUNTDOWN_SECONDS)
    return summary


@shared_task(acks_late=True)
def run_redrive_batch(batch_id: int) -> dict[str, Any]:
    """Work through a batch's open rows; a redelivery resumes where the killed one stopped."""
    from operations.batch import run_batch

    redriven = run_batch(batch_id)
    for execution_id in redriven:
        resync_execution.delay(execution_id)
    return {"batch": batch_id, "redriven": len(redriven)}


@shared_task(name="operations.tasks.resume_redrive_batches")
def resume_redrive_batches() -> list[int]:
    """Beat tick: queue again each batch whose worker went silent."""
    from operations.batch import resume_stale_batches

    resumed = resume_stale_batches()
    for batch_id in resumed:
        run_redrive_batch.delay(batch_id)
    return resumed


REPLAY_TRIES = 2


@shared_task(bind=True, acks_late=True, max_retries=REPLAY_TRIES - 1)
def replay_attempt(self: Task[Any, Any], action_id: int) -> str:
    """TestState for one replay's audit row. Revealing replays never come here: their answer
    must not pass through the broker or the result backend (they run in the request)."""
    from operations.replay import carry_out_replay

    try:
        replayed = carry_out_replay(action_id, last_try=self.request.retries >= REPLAY_TRIES - 1)
    except AwsTransientError as exc:
        raise self.retry(exc=exc, countdown=2**self.request.retries) from exc
    return replayed.outcome
