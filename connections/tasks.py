"""Celery tasks of the connections app: thin, taking ids, handing off to executions.sync."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from connections.aws import AwsTransientError


@shared_task(
    autoretry_for=(AwsTransientError,),
    retry_backoff=True,
    retry_jitter=True,
    max_retries=5,
    acks_late=True,
)
def sync_account(account_id: int, trigger: str = "schedule") -> dict[str, Any]:
    """Sync one account (all its regions); a second trigger while one runs is a no-op."""
    from executions.sync import sync_account_by_id

    return sync_account_by_id(account_id, trigger=trigger)


@shared_task
def sync_due_accounts() -> list[int]:
    """Beat tick: enqueue a sync for every enabled account whose interval has passed."""
    from executions.sync import due_account_ids

    due = due_account_ids()
    for account_id in due:
        sync_account.delay(account_id)
    return due
