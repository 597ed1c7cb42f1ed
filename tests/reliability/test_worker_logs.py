"""A sync queued inside a request logs, in a real Celery worker with LOG_FORMAT=json, that
request's id on every step (the chord's tasks too), with its run and account, and no secret."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from executions import logs
from sandbox.server import Sandbox
from tests.aws_sandbox import register
from tests.executions.test_connection_secrets import _leaks, _run_workflow
from tests.reliability.conftest import RedisServer, Worker, finished_run, trigger_sync, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker, pytest.mark.slow]


def test_a_worker_sync_logs_the_request_id_that_queued_it(
    sync_sandbox: Sandbox, redis_server: RedisServer, tmp_path: Path
) -> None:
    _run_workflow(sync_sandbox)  # a state machine whose partner echoes the secrets back
    account = register(sync_sandbox, name=f"workerlogs-{uuid.uuid4().hex[:6]}")
    worker = Worker(
        redis_server.url,
        tmp_path / "worker.log",
        extra_env={"LOG_FORMAT": "json"},
        loglevel="DEBUG",  # the worker's --loglevel sets the root logger's level
    ).start()
    try:
        with logs.bound(request_id="req-sync-now-1"):
            trigger_sync(redis_server.url, worker.queue, account.pk)
        run = wait_for(lambda: finished_run(account.pk), "the run to finish", alive=worker)
    finally:
        worker.stop()
    text = worker.log()
    records = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    mine = [r for r in records if r["sync_run_id"] == run.pk]
    assert mine, worker.tail()
    assert {(r["request_id"], r["account"]) for r in mine} == {("req-sync-now-1", account.name)}
    # Discovery runs in the account task, the state machines in the chord's tasks.
    messages = " ".join(r["message"] for r in mine)
    assert ": connections" in messages and ": state machines" in messages
    assert ": innocent-" in messages, messages
    assert not _leaks(text), f"worker log holds {_leaks(text)}"
    for secret in ("AKIAIOSFODNN7EXAMPLE", "sandbox-secret-key-not-a-real-one"):
        assert secret not in text
