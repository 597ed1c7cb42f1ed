"""Raising and delivering without a sandbox: a receiver down then up gets each alert once, a
storm is one alert and one digest, a repeated drain raises nothing twice, filters hold."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.utils import timezone

from alerts.choices import AlertKind, DeliveryStatus
from alerts.delivery import deliver, due_ids
from alerts.models import Alert, AlertRule, Delivery, DeliveryAttempt
from alerts.raising import raise_pending
from connections.choices import ConnectionState, SyncStatus
from executions.choices import GroupTransitionKind, Outcome
from executions.grouping import refresh_groups
from executions.models import GroupTransition, HttpAttempt
from executions.transitions import record_group_transition
from tests.alerts.receivers import HttpReceiver, free_port
from tests.factories import (
    AwsAccountFactory,
    ConnectionStateChangeFactory,
    ExecutionFactory,
    FailureGroupFactory,
    SyncRunFactory,
)

pytestmark = pytest.mark.django_db
SECRET = "a-signing-secret-of-some-length"


@pytest.fixture
def fast_retries(settings: Any) -> None:
    settings.STEPSCOPE = {**settings.STEPSCOPE, "ALERT_RETRY_BASE_SECONDS": 0}


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    server = HttpReceiver(SECRET, port=free_port())
    yield server
    server.stop()


def _rule(receiver: HttpReceiver, **extra: Any) -> AlertRule:
    values: dict[str, Any] = {
        "name": "team",
        "events": ["new_group", "regression", "connection_deauthorized", "sync_failed"],
        "webhook_url": f"{receiver.url}/hook",
        "signing_secret": SECRET,
        **extra,
    }
    return AlertRule.objects.create(**values)


def _failures(group: Any, n: int) -> None:
    execution = ExecutionFactory.create(account=group.account)
    now = timezone.now()
    HttpAttempt.objects.bulk_create(
        HttpAttempt(
            account=group.account,
            execution=execution,
            state_name="Call",
            key_event_id=i + 1,
            occurred_at=now,
            failure_group=group,
            outcome=Outcome.FAILED,
            category=group.category,
        )
        for i in range(n)
    )
    refresh_groups([group.pk])


def _opened(n: int = 1, **extra: Any) -> list[Any]:
    """Groups opened by a failed final attempt each, recorded as the ingest records them."""
    groups = FailureGroupFactory.create_batch(n, count=0, **extra)
    for group in groups:
        _failures(group, 1)
    record_group_transition(groups, GroupTransitionKind.OPENED)
    return groups


def _send_due() -> list[str]:
    return [deliver(pk) for pk in due_ids()]


def test_a_receiver_down_then_up_gets_every_alert_once(
    receiver: HttpReceiver, fast_retries: None
) -> None:
    _rule(receiver)
    _opened(2)
    assert raise_pending() == 2

    assert _send_due() == ["pending", "pending"]  # nothing listens: refused
    receiver.status = 503
    receiver.start()
    assert _send_due() == ["pending", "pending"]  # up, but answering 503
    receiver.status = 200
    assert _send_due() == ["sent", "sent"]
    assert _send_due() == []  # nothing left, nothing twice

    keys = sorted(Alert.objects.values_list("key", flat=True))
    assert sorted(r.key for r in receiver.on("/hook")) == keys
    log = list(DeliveryAttempt.objects.order_by("at", "id").values_list("ok", "answer"))
    assert [ok for ok, _ in log] == [False, False, False, False, True, True]
    assert "could not be reached" in log[0][1] and "503 receiver is down" in log[2][1]
    assert set(Delivery.objects.values_list("status", "attempts")) == {(DeliveryStatus.SENT, 3)}


def test_a_forged_signature_is_refused_by_the_receiver(receiver: HttpReceiver) -> None:
    receiver.start()
    _rule(receiver, signing_secret="not-the-secret-the-receiver-knows")
    _opened()
    raise_pending()
    assert _send_due() == ["pending"]
    assert receiver.rejected and not receiver.received
    assert DeliveryAttempt.objects.get().answer.startswith("HTTP 401")


def test_a_storm_is_one_alert_and_one_digest(receiver: HttpReceiver) -> None:
    receiver.start()
    _rule(receiver, quiet_period_seconds=600)
    (group,) = _opened()
    assert raise_pending() == 1
    _failures(group, 10_000)
    assert raise_pending() == 0  # inside the quiet period: nothing yet
    with time_machine.travel(timezone.now() + timedelta(seconds=601)):
        assert raise_pending() == 1
        assert raise_pending() == 0
        _send_due()
    with time_machine.travel(timezone.now() + timedelta(seconds=1300)):
        assert raise_pending() == 0  # the storm is over: no further digest
    bodies = [r.body for r in receiver.on("/hook")]
    assert [b["kind"] for b in bodies] == [AlertKind.EVENT, AlertKind.DIGEST]
    assert bodies[1]["title"].startswith("10000 more failure(s)") and bodies[1]["count"] == 10_001


def test_a_repeated_drain_raises_nothing_twice_and_filters_hold(receiver: HttpReceiver) -> None:
    watched, other = AwsAccountFactory.create(), AwsAccountFactory.create()
    rule = _rule(receiver, categories=["server_error"])
    rule.accounts.set([watched])
    _rule(receiver, name="auth only", categories=["auth"])
    (mine,) = _opened(account=watched)
    _opened(account=other)
    retried = FailureGroupFactory.create(account=watched)  # no final attempt failed
    record_group_transition([retried], GroupTransitionKind.OPENED)
    ConnectionStateChangeFactory.create(
        connection__account=watched, state=ConnectionState.DEAUTHORIZED, reason="401 from partner"
    )
    ConnectionStateChangeFactory.create(connection__account=watched, state=ConnectionState.ACTIVE)
    SyncRunFactory.create(account=watched, status=SyncStatus.FAILED, errors=["AccessDenied"])
    SyncRunFactory.create(account=watched, status=SyncStatus.FAILED)  # still failing: no news
    assert raise_pending() == 5
    # Categories filter groups only: the "auth only" rule still hears of the connection and sync.
    assert sorted(Alert.objects.values_list("rule__name", "event")) == [
        ("auth only", "connection_deauthorized"),
        ("auth only", "sync_failed"),
        ("team", "connection_deauthorized"),
        ("team", "new_group"),
        ("team", "sync_failed"),
    ]
    # Even if a source row were offered again, the alert key (row × rule) stops a second one.
    GroupTransition.objects.update(dispatched_at=None)
    assert raise_pending() == 0
    assert Alert.objects.get(event="new_group").group == mine


def test_snoozed_and_muted_groups_raise_nothing(receiver: HttpReceiver) -> None:
    _rule(receiver)
    snoozed, muted, expired, plain = _opened(4)
    now = timezone.now()
    snoozed.snoozed_until, expired.snoozed_until, muted.muted = now + timedelta(hours=1), now, True
    for group in (snoozed, muted, expired):
        group.save()
    assert raise_pending() == 2
    assert set(Alert.objects.values_list("group", flat=True)) == {expired.pk, plain.pk}


def test_a_lease_taken_over_fences_out_the_old_holder(receiver: HttpReceiver) -> None:
    """A worker whose lease expired mid-send and was taken over may not record its outcome over
    the new holder's: the lease is the fencing token."""
    from alerts.delivery import _failed, claim

    _rule(receiver)
    _opened()
    raise_pending()
    delivery = Delivery.objects.get()
    old = claim(delivery.pk, timezone.now())
    assert old is not None and claim(delivery.pk, timezone.now()) is None  # held
    later = timezone.now() + timedelta(seconds=61)
    new = claim(delivery.pk, later)
    assert new is not None and new != old
    _failed(delivery, old, "the old holder's late answer")
    delivery.refresh_from_db()
    assert (delivery.status, delivery.claimed_until, delivery.attempts) == (
        DeliveryStatus.SENDING,
        new,
        0,
    )
