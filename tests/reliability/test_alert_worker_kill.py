"""A real Celery worker SIGKILLed while it delivers an alert (the receiver holds the request
open): restarted, it delivers every alert, each recorded sent once, and the one in flight is
repeated only with its idempotency key, so a receiver keeping keys sees each alert once."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from alerts.choices import DeliveryStatus
from alerts.models import Alert, AlertRule, Delivery
from executions.choices import GroupTransitionKind, Outcome
from executions.transitions import record_group_transition
from tests.factories import ExecutionFactory, FailureGroupFactory, HttpAttemptFactory
from tests.reliability.conftest import RedisServer, Worker, celery_client, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.worker]
ALERTS = 3


class Hanging:
    """Records every POST (key, body); holds the first one open until released."""

    def __init__(self) -> None:
        self.got: list[tuple[str, bytes]] = []
        self.first_arrived, self.release = threading.Event(), threading.Event()
        me = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                me.got.append((self.headers.get("Idempotency-Key", ""), body))
                if not me.first_arrived.is_set():
                    me.first_arrived.set()
                    me.release.wait(60)
                self.send_response(200)
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"


@pytest.fixture
def receiver() -> Iterator[Hanging]:
    hanging = Hanging()
    yield hanging
    hanging.release.set()
    hanging.server.shutdown()


def _drain(redis: RedisServer, worker: Worker) -> None:
    celery_client(redis.url).send_task("alerts.tasks.drain_alerts", queue=worker.queue)


def _all_sent(redis: RedisServer, worker: Worker) -> bool:
    """What the beat does (drain), then whether every delivery is sent."""
    _drain(redis, worker)
    time.sleep(0.5)
    return not Delivery.objects.exclude(status=DeliveryStatus.SENT).exists()


def test_a_worker_killed_mid_delivery_loses_none_and_repeats_only_under_the_same_key(
    redis_server: RedisServer,
    workers: Any,
    receiver: Hanging,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ALERT_CLAIM_SECONDS", "3")
    AlertRule.objects.create(name="team", events=["new_group"], webhook_url=receiver.url)
    groups = FailureGroupFactory.create_batch(ALERTS)
    for group in groups:
        HttpAttemptFactory.create(
            account=group.account,
            execution=ExecutionFactory.create(account=group.account),
            failure_group=group,
            outcome=Outcome.FAILED,
        )
    record_group_transition(groups, GroupTransitionKind.OPENED)

    first = workers(redis_server.url)
    _drain(redis_server, first)
    assert receiver.first_arrived.wait(60), "no delivery started" + first.tail()
    in_flight = Delivery.objects.get(status=DeliveryStatus.SENDING)
    first.kill()
    receiver.release.set()

    second = workers(redis_server.url)
    wait_for(
        lambda: _all_sent(redis_server, second),
        "every delivery to be sent after the restart",
        alive=second,
    )
    keys = sorted(Alert.objects.values_list("key", flat=True))
    assert len(keys) == ALERTS
    assert sorted(set(k for k, _ in receiver.got)) == keys  # none lost
    repeated = [k for k in keys if [g for g, _ in receiver.got].count(k) > 1]
    assert repeated in ([], [in_flight.alert.key])  # only the one in flight, same key
    bodies = {k: {b for g, b in receiver.got if g == k} for k in keys}
    assert all(len(b) == 1 for b in bodies.values())  # a repeat is the same message
    assert set(Delivery.objects.values_list("status", flat=True)) == {DeliveryStatus.SENT}
