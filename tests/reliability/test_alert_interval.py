""" "Alerts arrive within one sync interval of the data": a real Celery beat running the shipped
schedule (`drain-alerts` every ALERT_TICK_SECONDS) and a real worker on the default queue. A
failure group committed at T, as the sync's ingest commits it, reaches a real HTTP receiver
before T + SYNC_INTERVAL_SECONDS, with nothing but the beat to set it off."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import redis
from django.conf import settings
from django.db import transaction

from alerts.choices import DeliveryStatus
from alerts.models import AlertRule, Delivery
from executions.choices import GroupTransitionKind, Outcome
from executions.transitions import record_group_transition
from tests.factories import ExecutionFactory, FailureGroupFactory, HttpAttemptFactory
from tests.reliability.conftest import ROOT, RedisServer, Worker, wait_for, worker_database_url

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.worker]


class Stamping:
    """An HTTP receiver noting when each POST arrived."""

    def __init__(self) -> None:
        self.arrivals: list[float] = []
        me = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                me.arrivals.append(time.time())
                self.send_response(200)
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"


@pytest.fixture
def beat(redis_server: RedisServer, tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`celery beat` with the project's schedule; syncing is pushed a day out (no AWS here)."""
    env = {
        "DATABASE_URL": worker_database_url(),
        "REDIS_URL": redis_server.url,
        "CELERY_BROKER_URL": redis_server.url,
        "CELERY_RESULT_BACKEND": redis_server.url,
        "SYNC_TICK_SECONDS": "86400",
    }
    with (tmp_path / "beat.log").open("ab") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "dashboard",
                "beat",
                "-s",
                str(tmp_path / "beat-schedule"),
                "--pidfile=",
                "-l",
                "INFO",
            ],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _log(tmp_path: Path) -> str:
    return (tmp_path / "beat.log").read_text(errors="replace")


def test_a_group_committed_at_t_is_delivered_before_t_plus_one_sync_interval(
    redis_server: RedisServer, beat: subprocess.Popen[bytes], tmp_path: Path
) -> None:
    receiver = Stamping()
    worker = Worker(redis_server.url, tmp_path / "worker.log", queue="celery").start()
    try:
        AlertRule.objects.create(name="team", events=["new_group"], webhook_url=receiver.url)
        group = FailureGroupFactory.create()
        HttpAttemptFactory.create(
            account=group.account,
            execution=ExecutionFactory.create(account=group.account),
            failure_group=group,
            outcome=Outcome.FAILED,
        )
        # Up and running: the beat has sent a drain and the worker has taken it off the queue.
        # From here the tick's phase relative to the commit is whatever it happens to be.
        wait_for(lambda: "drain-alerts" in _log(tmp_path), "the beat's first drain", timeout=60)
        queue = redis.Redis.from_url(redis_server.url)
        wait_for(lambda: queue.llen("celery") == 0, "the worker to take the drain", alive=worker)
        with transaction.atomic():
            record_group_transition([group], GroupTransitionKind.OPENED)
        committed_at = time.time()

        interval = float(settings.STEPSCOPE["SYNC_INTERVAL_SECONDS"])
        wait_for(lambda: receiver.arrivals, "the alert to arrive", timeout=interval, alive=worker)
        assert beat.poll() is None, "celery beat exited"
        took = receiver.arrivals[0] - committed_at
        assert 0 <= took < interval, f"arrived {took:.1f} s after the data"
        # Recorded sent just after the receiver answered (the arrival is noted before that).
        wait_for(
            lambda: Delivery.objects.filter(status=DeliveryStatus.SENT).count() == 1,
            "the delivery to be recorded sent",
            timeout=30,
            alive=worker,
        )
    finally:
        worker.stop()
        receiver.server.shutdown()
