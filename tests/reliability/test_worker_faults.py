"""A real Celery worker process, and what happens to it mid-sync: SIGKILL, Redis restarted, its
PostgreSQL connection terminated. After each, the next run converges on what the sandbox ran.

The worker is `celery -A dashboard worker --pool solo` on a queue of its own, with the test
database and a Redis server of our own (broker, results and rate limiter). "Mid-sync" is decided
by watching the database: the fault strikes once some executions are stored and the run has not
finished; the tests assert both, so a fault that came too late fails instead of passing vacuously.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.db import connection
from django.db.models import F

from connections.models import AwsAccount, SyncRun
from executions.models import Execution
from executions.sync import ALREADY_RUNNING, STALE_CLAIM
from sandbox.server import Sandbox
from tests.aws_sandbox import register
from tests.reliability.conftest import (
    RedisServer,
    Worker,
    assert_converged,
    finished_run,
    standard_execution_count,
    trigger_sync,
    wait_for,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.worker]

MID_SYNC_EXECUTIONS = 5


def _mid_sync(account: AwsAccount, worker: Worker) -> SyncRun:
    """Wait until the worker has stored a few executions of a run that is still going."""
    wait_for(
        lambda: Execution.objects.filter(account=account).count() >= MID_SYNC_EXECUTIONS,
        "the sync to be under way",
        alive=worker,
    )
    run = SyncRun.objects.get(account=account)
    assert run.finished_at is None, "the run finished before the fault: nothing was tested"
    return run


def _assert_mid_sync(account: AwsAccount, sandbox: Sandbox) -> None:
    stored = Execution.objects.filter(account=account, source="history").count()
    assert stored < standard_execution_count(sandbox), "the fault came after everything was stored"


def _release_stale_claim(account: AwsAccount) -> None:
    """What STALE_CLAIM's passing does: the dead run's claim may be taken over."""
    AwsAccount.objects.filter(pk=account.pk).update(
        sync_claimed_at=F("sync_claimed_at") - STALE_CLAIM - timedelta(seconds=1)
    )


def _sync_to_the_end(
    redis: RedisServer, worker: Worker, account: AwsAccount, after: int
) -> SyncRun:
    trigger_sync(redis.url, worker.queue, account.pk)
    run: SyncRun = wait_for(
        lambda: finished_run(account.pk, after=after), "the next sync to finish", alive=worker
    )
    return run


def test_a_worker_killed_mid_sync_then_restarted_leaves_no_gaps_and_no_duplicates(
    reliability_sandbox: Sandbox,
    redis_server: RedisServer,
    workers: Callable[[str], Worker],
) -> None:
    account = register(reliability_sandbox)
    first = workers(redis_server.url)
    trigger_sync(redis_server.url, first.queue, account.pk)
    killed = _mid_sync(account, first)
    first.kill()
    _assert_mid_sync(account, reliability_sandbox)

    second = workers(redis_server.url)
    # The dead worker's claim holds until it is stale: a trigger meanwhile is a no-op.
    skipped = trigger_sync(redis_server.url, second.queue, account.pk).get(timeout=120)
    assert skipped == {"skipped": ALREADY_RUNNING}, second.tail()
    _release_stale_claim(account)
    run = _sync_to_the_end(redis_server, second, account, after=killed.pk)

    assert run.status == "ok", (run.errors, second.tail())
    assert_converged(reliability_sandbox)
    killed.refresh_from_db()
    assert killed.finished_at is not None, "the killed run is closed, not shown running forever"
    assert "Traceback" not in second.log(), second.tail()


def test_redis_restarted_mid_sync_then_the_next_run_converges(
    reliability_sandbox: Sandbox,
    redis_server: RedisServer,
    workers: Callable[[str], Worker],
) -> None:
    account = register(reliability_sandbox)
    worker = workers(redis_server.url)
    trigger_sync(redis_server.url, worker.queue, account.pk)
    interrupted = _mid_sync(account, worker)
    redis_server.stop()  # queued steps, results and rate-limit buckets are gone with it
    time.sleep(1.0)
    redis_server.start()
    _assert_mid_sync(account, reliability_sandbox)

    # The steps queued in Redis are lost, so the run cannot finish: its claim holds until stale.
    _release_stale_claim(account)
    run = _sync_to_the_end(redis_server, worker, account, after=interrupted.pk)

    assert run.status == "ok", (run.errors, worker.tail())
    assert_converged(reliability_sandbox)
    worker.check()  # the same worker process reconnected to the new Redis


def _terminate_other_backends() -> int:
    """pg_terminate_backend every connection to the test database but the test's own."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return int(cursor.fetchone()[0])


def test_a_dropped_database_connection_mid_batch_then_the_next_run_converges(
    reliability_sandbox: Sandbox,
    redis_server: RedisServer,
    workers: Callable[[str], Worker],
) -> None:
    account = register(reliability_sandbox)
    worker = workers(redis_server.url)
    trigger_sync(redis_server.url, worker.queue, account.pk)
    dropped = _mid_sync(account, worker)
    assert _terminate_other_backends() >= 1
    _assert_mid_sync(account, reliability_sandbox)

    # No claim is set back here: the run notes the lost connection, reconnects and finishes,
    # so the very next trigger runs.
    interrupted = wait_for(
        lambda: finished_run(account.pk, after=dropped.pk - 1), "the run to finish", alive=worker
    )
    # It lost at most the execution in flight, not the rest of its batch.
    stored = Execution.objects.filter(account=account, source="history").count()
    total = standard_execution_count(reliability_sandbox)
    assert stored >= total - 1, (stored, total, interrupted.errors, worker.tail())
    run = _sync_to_the_end(redis_server, worker, account, after=dropped.pk)

    assert run.status == "ok", (run.errors, worker.tail())
    assert_converged(reliability_sandbox)
