"""Alerts, deliveries and their log older than RETENTION_DAYS are pruned in small batches by
`manage.py prune` and the beat task; one still being delivered, or awaiting its digest, stays."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from alerts import retention
from alerts.choices import AlertKind, Channel, DeliveryStatus
from alerts.models import Alert, AlertRule, Delivery, DeliveryAttempt
from alerts.tasks import prune_old_alerts

pytestmark = pytest.mark.django_db


def _alert(rule: AlertRule, key: str, age_days: int, status: str, tries: int = 2) -> Alert:
    alert = Alert.objects.create(rule=rule, key=key, kind=AlertKind.EVENT, digest_done=True)
    Alert.objects.filter(pk=alert.pk).update(created_at=timezone.now() - timedelta(days=age_days))
    for channel in (Channel.EMAIL, Channel.WEBHOOK):
        delivery = Delivery.objects.create(
            alert=alert, channel=channel, status=status, next_attempt_at=timezone.now()
        )
        DeliveryAttempt.objects.bulk_create(
            DeliveryAttempt(delivery=delivery, ok=False) for _ in range(tries)
        )
    return alert


@pytest.fixture
def rule() -> AlertRule:
    return AlertRule.objects.create(name="team", events=["new_group"], email_to=["a@example.com"])


def test_old_alerts_go_in_batches_and_what_is_in_flight_stays(
    rule: AlertRule, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(retention, "BATCH", 3)  # several batches of each kind
    for i in range(5):
        _alert(rule, f"old-{i}", age_days=40, status=DeliveryStatus.SENT)
    _alert(rule, "old-given-up", age_days=40, status=DeliveryStatus.FAILED)
    busy = _alert(rule, "old-still-retrying", age_days=40, status=DeliveryStatus.PENDING)
    waiting = _alert(rule, "old-digest-to-come", age_days=40, status=DeliveryStatus.SENT)
    Alert.objects.filter(pk=waiting.pk).update(digest_done=False)
    recent = _alert(rule, "recent", age_days=2, status=DeliveryStatus.SENT)

    out = StringIO()
    call_command("prune", "--days", "30", stdout=out)
    assert "Deleted 6 alert(s), 12 delivery(ies) and 24 delivery attempt(s)" in out.getvalue()
    assert set(Alert.objects.values_list("pk", flat=True)) == {busy.pk, waiting.pk, recent.pk}
    assert Delivery.objects.count() == 6 and DeliveryAttempt.objects.count() == 12
    assert prune_old_alerts() == {"alerts": 0, "deliveries": 0, "attempts": 0}  # idempotent


def test_retention_zero_and_dry_run_keep_every_alert(rule: AlertRule, settings: object) -> None:
    _alert(rule, "old", age_days=400, status=DeliveryStatus.SENT)
    call_command("prune", "--days", "0", stdout=StringIO())
    call_command("prune", "--days", "30", "--dry-run", stdout=StringIO())
    assert Alert.objects.count() == 1
    assert retention.prune_alerts(30).alerts == 1 and not Alert.objects.exists()
