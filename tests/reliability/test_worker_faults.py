"""A real Celery worker process, and what happens to it mid-sync: SIGKILL, Redis restarted, its
PostgreSQL connection terminated. After each, the next run converges on what the sandbox ran.

The worker is `celery -A dashboard worker --pool solo` on a queue of its own, with the test
database and a Redis server of our own (broker, results and rate limiter). For SIGKILL and the
Redis restart, "mid-sync" is decided by watching the database: the fault strikes once some
executions are stored and the run has not finished; the tests assert both, so a fault that came
too late fails instead of passing vacuously. The dropped connection is placed exactly, by a
trigger that has PostgreSQL terminate the worker's connection at a chosen row.
Nobody sets a claim back by hand: the tests trigger as the beat does until a trigger takes the
silent run over, which the worker (SYNC_STALE_AFTER_SECONDS=10) does ten seconds after its last
heartbeat.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta

import pytest

from connections.models import AwsAccount, SyncRun
from executions.models import Execution
from executions.sync import ALREADY_RUNNING
from sandbox.server import Sandbox
from tests.aws_sandbox import register
from tests.reliability.conftest import (
    WAIT_SECONDS,
    WORKER_STALE_AFTER_SECONDS,
    DropConnection,
    RedisServer,
    Worker,
    assert_converged,
    finished_run,
    standard_execution_count,
    stored_standard_count,
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
    stored = stored_standard_count(account)
    assert stored < standard_execution_count(sandbox), "the fault came after everything was stored"


def _beat_until_taken_over(
    redis: RedisServer, worker: Worker, account: AwsAccount, silent: SyncRun
) -> tuple[SyncRun, datetime]:
    """What the beat does: trigger, and trigger again while the silent run holds the account
    (nobody sets the claim back: it must be taken over on its own). Returns the run that
    finished after it and the silent run's last heartbeat seen while it held the claim."""
    last_beat: datetime | None = None
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        holder, beat = AwsAccount.objects.values_list("sync_run", "sync_heartbeat_at").get(
            pk=account.pk
        )
        if holder == silent.pk:
            last_beat = beat
        answer = trigger_sync(redis.url, worker.queue, account.pk).get(timeout=120)
        if answer != {"skipped": ALREADY_RUNNING}:
            assert last_beat is not None, "the silent run never held the claim"
            run: SyncRun = wait_for(
                lambda: finished_run(account.pk, after=silent.pk), "the run to finish", alive=worker
            )
            return run, last_beat
        time.sleep(1.0)
    pytest.fail("no trigger took the account over" + worker.tail())


def _sync_to_the_end(
    redis: RedisServer, worker: Worker, account: AwsAccount, after: int
) -> SyncRun:
    trigger_sync(redis.url, worker.queue, account.pk)
    run: SyncRun = wait_for(
        lambda: finished_run(account.pk, after=after), "the next sync to finish", alive=worker
    )
    return run


def _assert_taken_over(silent: SyncRun, run: SyncRun, last_beat: datetime) -> None:
    """The silent run was closed with its reason, and not before its stale window passed."""
    silent.refresh_from_db()
    assert silent.finished_at is not None, "the silent run is closed, not shown running forever"
    assert silent.progress == "abandoned" and "no progress" in silent.errors[0], silent.errors
    assert run.started_at >= last_beat + timedelta(seconds=WORKER_STALE_AFTER_SECONDS), (
        "a live run was taken over"
    )


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
    run, last_beat = _beat_until_taken_over(redis_server, second, account, killed)

    assert run.status == "ok", (run.errors, second.tail())
    assert_converged(reliability_sandbox)
    _assert_taken_over(killed, run, last_beat)
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

    # The steps queued in Redis are lost, so the run can never finish: it goes silent.
    run, last_beat = _beat_until_taken_over(redis_server, worker, account, interrupted)

    assert run.status == "ok", (run.errors, worker.tail())
    assert_converged(reliability_sandbox)
    _assert_taken_over(interrupted, run, last_beat)
    worker.check()  # the same worker process reconnected to the new Redis


# Where the connection drops: inside the transaction writing a batch (an attempt row of the
# first batches), and outside any transaction (the second state machine's cursor moving).
DROP_POINTS = [
    pytest.param("executions_httpattempt", "INSERT", 30, id="inside-a-batch"),
    pytest.param("executions_statemachine", "UPDATE", 2, id="between-batches"),
]


@pytest.mark.parametrize(("table", "event", "at"), DROP_POINTS)
def test_a_dropped_database_connection_mid_sync_loses_nothing_and_the_next_run_converges(
    reliability_sandbox: Sandbox,
    redis_server: RedisServer,
    workers: Callable[[str], Worker],
    drop_connection: DropConnection,
    table: str,
    event: str,
    at: int,
) -> None:
    account = register(reliability_sandbox)
    worker = workers(redis_server.url)
    # PostgreSQL itself terminates the worker's connection at that row: mid-sync every time,
    # not whenever a kill from outside happens to land.
    drop_connection(table, event, at=at)
    trigger_sync(redis_server.url, worker.queue, account.pk)
    run = wait_for(lambda: finished_run(account.pk), "the run to finish", alive=worker)
    assert "terminating connection" in worker.log(), "the drop never happened: nothing was tested"

    # The batch is written again one by one, the step runs once more on a new connection:
    # nothing is lost and nothing is left for the next run.
    assert run.status == "ok", (run.errors, worker.tail())
    stored = stored_standard_count(account)
    assert stored == standard_execution_count(reliability_sandbox), worker.tail()
    assert_converged(reliability_sandbox)
    again = _sync_to_the_end(redis_server, worker, account, after=run.pk)
    assert again.status == "ok" and again.executions_added == 0, (again.errors, worker.tail())
    assert_converged(reliability_sandbox)
