"""Celery tasks: thin, taking ids, handing off to executions.sync.

They lived in connections/tasks.py; each keeps that name (`name=`) so beat schedules, queued
messages and clients that send by name still reach them.

A sync fans out account → region (discovery, in the account task) → one task per state
machine, joined by a chord whose callback closes the run and releases the account's claim.
Every step is idempotent, so a task redelivered after a worker died repeats harmlessly.
"""

from __future__ import annotations

from typing import Any

from celery import Task, chord, shared_task


@shared_task(name="connections.tasks.sync_account", bind=True, acks_late=True)
def sync_account(
    self: Task[Any, Any], account_id: int, trigger: str = "schedule"
) -> dict[str, Any]:
    """Claim the account, discover each region, then sync its state machines in parallel."""
    from connections.models import AwsAccount
    from executions.sync import ALREADY_RUNNING, begin_sync, discover_region, finish_sync

    account = AwsAccount.objects.filter(pk=account_id).first()
    if account is None:
        return {"skipped": "account gone"}
    run = begin_sync(account, trigger)
    if run is None:
        return {"skipped": ALREADY_RUNNING}
    machine_ids = [m for region in account.regions for m in discover_region(run.pk, region)]
    if not machine_ids:
        return finish_sync(run.pk)
    # The steps follow the queue the sync was sent to, so a deployment (or a test) that routes
    # accounts to dedicated workers keeps the whole sync there.
    queue: str = (self.request.delivery_info or {}).get("routing_key") or (
        self.app.conf.task_default_queue
    )
    steps = [sync_state_machine.si(run.pk, m).set(queue=queue) for m in machine_ids]
    chord(steps)(finish_sync_run.si(run.pk).set(queue=queue))
    return {"run": run.pk, "state_machines": len(machine_ids)}


@shared_task(name="connections.tasks.sync_state_machine", acks_late=True)
def sync_state_machine(run_id: int, machine_id: int) -> None:
    from executions.sync import sync_machine

    sync_machine(run_id, machine_id)


@shared_task(name="connections.tasks.finish_sync_run", acks_late=True)
def finish_sync_run(run_id: int) -> dict[str, Any]:
    from executions.sync import finish_sync

    return finish_sync(run_id)


@shared_task(name="connections.tasks.sync_due_accounts")
def sync_due_accounts() -> list[int]:
    """Beat tick: enqueue a sync for every enabled account whose interval has passed."""
    from executions.sync import due_account_ids

    due = due_account_ids()
    for account_id in due:
        sync_account.delay(account_id)
    return due


@shared_task(name="executions.tasks.prune_old_executions", acks_late=True)
def prune_old_executions() -> dict[str, object]:
    """Beat tick (hourly): delete executions older than RETENTION_DAYS, in small batches.
    Stateless and batch-committed, so a redelivered or concurrent run is harmless."""
    from executions.retention import prune

    return prune().as_dict()
