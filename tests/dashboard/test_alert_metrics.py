"""The alert-delivery families of /metrics, parsed with prometheus-client's parser after real
deliveries to a local receiver: one sent, one refused (retrying), and an outbox row waiting."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from alerts.delivery import deliver, due_ids
from alerts.models import AlertRule, Delivery
from alerts.raising import raise_pending
from executions.choices import GroupTransitionKind
from executions.models import GroupTransition
from executions.transitions import record_group_transition
from tests.alerts.receivers import HttpReceiver, free_port
from tests.alerts.test_delivery import SECRET, _opened
from tests.dashboard.test_metrics import TOKEN, _parse, _scrape
from tests.factories import FailureGroupFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    server = HttpReceiver(SECRET, port=free_port()).start()
    yield server
    server.stop()


def test_metrics_count_deliveries_by_channel_and_state_and_the_outbox_backlog(
    receiver: HttpReceiver, settings: Any
) -> None:
    settings.STEPSCOPE = {**settings.STEPSCOPE, "METRICS_TOKEN": TOKEN}
    hook = {"events": ["new_group"], "signing_secret": SECRET}
    AlertRule.objects.create(name="up", webhook_url=f"{receiver.url}/hook", **hook)
    # Nothing listens on this port: the delivery is refused and waits for its retry.
    AlertRule.objects.create(name="down", webhook_url=f"http://127.0.0.1:{free_port()}/h", **hook)
    _opened()
    assert raise_pending() == 2
    assert sorted(deliver(pk) for pk in due_ids()) == ["pending", "sent"]
    assert len(receiver.on("/hook")) == 1
    # A group opened an hour ago and not yet drained: the outbox backlog and its age.
    record_group_transition([FailureGroupFactory.create()], GroupTransitionKind.OPENED)
    GroupTransition.objects.filter(dispatched_at=None).update(
        at=timezone.now() - timedelta(hours=1)
    )

    status, text = _scrape(Client(), HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert status == 200, text
    samples = _parse(text)

    def series(name: str, label: str) -> dict[tuple[str, str], float]:
        return {(got["channel"], got[label]): v for got, v in samples[name]}

    opened = series("stepscope_alert_deliveries_open", "state")
    assert len(opened) == 12  # every channel × state, zeros included: bounded, always there
    assert {k: v for k, v in opened.items() if v} == {("webhook", "retrying"): 1}
    done = series("stepscope_alert_deliveries_done_in_window", "state")
    assert len(done) == 8
    assert {k: v for k, v in done.items() if v} == {("webhook", "sent"): 1}
    backlog = {got["source"]: v for got, v in samples["stepscope_alert_outbox_backlog"]}
    assert backlog == {"group_transition": 1, "connection_change": 0, "sync_run": 0}
    age = {got["source"]: v for got, v in samples["stepscope_alert_outbox_oldest_seconds"]}
    assert 3600 <= age["group_transition"] < 3700 and age["sync_run"] == 0

    # Drained and given up: the backlog empties; the refused delivery counts as failed.
    settings.STEPSCOPE = {**settings.STEPSCOPE, "ALERT_MAX_ATTEMPTS": 1}
    assert raise_pending() == 0  # that group has no failed final attempt: nothing to announce
    Delivery.objects.filter(status="pending").update(next_attempt_at=timezone.now())
    assert [deliver(pk) for pk in due_ids()] == ["failed"]
    samples = _parse(_scrape(Client(), HTTP_AUTHORIZATION=f"Bearer {TOKEN}")[1])
    done = series("stepscope_alert_deliveries_done_in_window", "state")
    assert done[("webhook", "failed")] == 1 and done[("webhook", "sent")] == 1
    assert sum(v for _, v in samples["stepscope_alert_outbox_backlog"]) == 0
