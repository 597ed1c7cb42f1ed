"""A real Celery worker SIGKILLed while it delivers an alert, at three points of the send: the
request arrived but the receiver has not acted on it yet; the receiver acted but has not
answered; the receiver is half way through its answer. Restarted, the worker delivers every
alert. The receiver does what docs/alerts.md tells receivers to do (drop a repeated
Idempotency-Key), so each alert is *processed* exactly once; the raw sends show the honest
at-least-once underneath: the one in flight is sent twice, with the same key and body."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from alerts.choices import DeliveryStatus
from alerts.models import Alert, AlertRule, Delivery, DeliveryAttempt
from executions.choices import GroupTransitionKind, Outcome
from executions.transitions import record_group_transition
from tests.factories import ExecutionFactory, FailureGroupFactory, HttpAttemptFactory
from tests.reliability.conftest import RedisServer, Worker, celery_client, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.worker]
ALERTS = 3
# Where the first request is held while the worker is killed.
BEFORE_ACTING, ACTED_NOT_ANSWERED, HALF_ANSWERED = "before-acting", "acted", "half-answered"


class DedupingReceiver:
    """Records every raw POST; processes a key once (a repeat is answered 200 and dropped, as the
    docs ask); holds the first request at `hold` until released."""

    def __init__(self, hold: str) -> None:
        self.raw: list[tuple[str, bytes]] = []
        self.processed: dict[str, bytes] = {}
        self.held, self.release = threading.Event(), threading.Event()
        self.lock = threading.Lock()
        me = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                key = self.headers.get("Idempotency-Key", "")
                with me.lock:
                    me.raw.append((key, body))
                    first = not me.held.is_set()
                    me.held.set()
                if first and hold == BEFORE_ACTING:
                    me.release.wait(60)
                with me.lock:
                    me.processed.setdefault(key, body)
                try:
                    if first and hold == ACTED_NOT_ANSWERED:
                        me.release.wait(60)
                    self.send_response(200)
                    self.send_header("Content-Length", "8")
                    self.end_headers()
                    if first and hold == HALF_ANSWERED:
                        self.wfile.write(b"ok")
                        self.wfile.flush()
                        me.release.wait(60)
                    self.wfile.write(b"received")
                except OSError:
                    pass  # the sender was killed: nobody reads this answer

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def sends(self, key: str) -> list[bytes]:
        return [body for k, body in self.raw if k == key]


def _drain(redis: RedisServer, worker: Worker) -> None:
    celery_client(redis.url).send_task("alerts.tasks.drain_alerts", queue=worker.queue)


def _all_sent(redis: RedisServer, worker: Worker) -> bool:
    """What the beat does (drain), then whether every delivery is sent."""
    _drain(redis, worker)
    time.sleep(0.5)
    return not Delivery.objects.exclude(status=DeliveryStatus.SENT).exists()


@pytest.mark.parametrize("hold", [BEFORE_ACTING, ACTED_NOT_ANSWERED, HALF_ANSWERED])
def test_a_worker_killed_mid_send_loses_none_and_each_alert_is_processed_once(
    redis_server: RedisServer, workers: Any, monkeypatch: pytest.MonkeyPatch, hold: str
) -> None:
    receiver = DedupingReceiver(hold)
    try:
        _killed_mid_send(redis_server, workers, monkeypatch, receiver)
    finally:
        receiver.release.set()
        receiver.server.shutdown()


def _killed_mid_send(
    redis_server: RedisServer,
    workers: Any,
    monkeypatch: pytest.MonkeyPatch,
    receiver: DedupingReceiver,
) -> None:
    # A short lease so the test need not wait a minute; timeouts below it (alerts.E001).
    monkeypatch.setenv("ALERT_CLAIM_SECONDS", "3")
    monkeypatch.setenv("ALERT_HTTP_TIMEOUT_SECONDS", "1")
    monkeypatch.setenv("EMAIL_TIMEOUT", "1")
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
    assert receiver.held.wait(60), "no delivery started" + first.tail()
    in_flight = Delivery.objects.get(status=DeliveryStatus.SENDING)
    first.kill()
    receiver.release.set()
    # The kill left the claim: nothing was recorded about the send in flight.
    in_flight.refresh_from_db()
    assert in_flight.status == DeliveryStatus.SENDING and in_flight.attempts == 0

    second = workers(redis_server.url)
    wait_for(
        lambda: _all_sent(redis_server, second),
        "every delivery to be sent after the restart",
        alive=second,
    )
    keys = sorted(Alert.objects.values_list("key", flat=True))
    assert len(keys) == ALERTS
    # What the receiver did: each alert once, none lost.
    assert sorted(receiver.processed) == keys
    # What went over the wire: the one in flight twice (its lease expired mid-send), identical;
    # the others once (the first worker, a solo pool, had not started them).
    key = in_flight.alert.key
    assert len(receiver.sends(key)) == 2 and len(set(receiver.sends(key))) == 1
    assert receiver.processed[key] == receiver.sends(key)[0]
    assert all(len(receiver.sends(k)) == 1 for k in keys if k != key)
    assert len(receiver.raw) == ALERTS + 1
    # Recorded sent once each; the killed try left no log row, the retry one.
    assert set(Delivery.objects.values_list("status", "attempts")) == {(DeliveryStatus.SENT, 1)}
    assert DeliveryAttempt.objects.filter(delivery=in_flight, ok=True).count() == 1
