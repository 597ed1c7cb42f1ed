"""Alert rules in the API: what a rule shows (never its webhook URLs or signing secret, even
when they cannot be decrypted) and its delivery log, walked page by page with `next`."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from django.contrib.auth.models import User
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from alerts.models import Alert, AlertRule, Delivery, DeliveryAttempt
from connections.models import AwsAccount
from executions.redaction import MARKER_PREFIX
from tests.test_access_matrix import api_client

pytestmark = pytest.mark.django_db
SLACK = "https://hooks.slack.com/services/T000/B000/slack-token-canary"
HOOK = "https://receiver.example/hook?token=hook-token-canary"
SECRET = "signing-secret-canary"


def _rule(account: AwsAccount) -> AlertRule:
    rule = AlertRule.objects.create(
        name="team",
        events=["new_group"],
        email_to=["ops@example.com"],
        slack_webhook_url=SLACK,
        webhook_url=HOOK,
        signing_secret=SECRET,
    )
    rule.accounts.set([account])
    return rule


def test_a_rule_says_which_channels_are_set_and_never_their_secrets(
    viewer: User, account: AwsAccount
) -> None:
    rule = _rule(account)
    bare = AlertRule.objects.create(name="bare", events=["new_group"])
    bare.accounts.set([account])
    api = api_client(viewer)
    key = Fernet.generate_key().decode()
    # Under a key the secrets were not encrypted with: the API never decrypts them anyway.
    with override_settings(FIELD_ENCRYPTION_KEYS=[key]):
        listed = api.get(reverse("api:alert_rules"))
        detail = api.get(reverse("api:alert_rule", args=[rule.pk]))
    assert listed.status_code == 200 and detail.status_code == 200
    for body in (listed.content.decode(), detail.content.decode()):
        for canary in ("slack-token-canary", "hook-token-canary", SECRET, "hooks.slack.com"):
            assert canary not in body
    by_name = {r["name"]: r for r in listed.json()["results"]}
    assert by_name["team"] == detail.json()
    assert by_name["team"]["channels"] == ["email", "slack", "webhook"]
    assert by_name["team"]["slack_webhook_set"] and by_name["team"]["signing_secret_set"]
    assert by_name["team"]["accounts"] == [account.pk]
    assert by_name["bare"]["channels"] == []
    assert not by_name["bare"]["webhook_set"] and not by_name["bare"]["signing_secret_set"]
    only = api.get(reverse("api:alert_rules"), {"q": "bar"}).json()["results"]
    assert [r["name"] for r in only] == ["bare"]


def test_the_delivery_log_pages_through_every_try_once_redacted(
    viewer: User, account: AwsAccount
) -> None:
    rule = _rule(account)
    alert = Alert.objects.create(rule=rule, key="k1", payload={"title": "New group: 503"})
    delivery = Delivery.objects.create(
        alert=alert, channel="webhook", status="failed", attempts=61, next_attempt_at=timezone.now()
    )
    # All at one time (bulk): the id breaks the ties across the page boundary.
    DeliveryAttempt.objects.bulk_create(
        DeliveryAttempt(
            delivery=delivery, ok=i == 0, answer=f"HTTP 500 try {i} xoxb-hunter2hunter2"
        )
        for i in range(61)
    )
    api = api_client(viewer)
    url: str | None = reverse("api:alert_rule_deliveries", args=[rule.pk])
    seen: list[int] = []
    while url:
        body = api.get(url).json()
        seen += [row["id"] for row in body["results"]]
        for row in body["results"]:
            assert "hunter2" not in row["answer"] and MARKER_PREFIX in row["answer"]
            assert row["alert_title"] == "New group: 503" and row["channel"] == "webhook"
            assert row["delivery_status"] == "failed" and row["alert"] == alert.pk
        url = body["next"]
    assert sorted(seen) == sorted(DeliveryAttempt.objects.values_list("pk", flat=True))
    assert len(seen) == len(set(seen)) == 61
    log = reverse("api:alert_rule_deliveries", args=[rule.pk])
    sent = api.get(log, {"outcome": "sent"}).json()["results"]
    assert len(sent) == 1 and sent[0]["ok"]
    refused = api.get(log, {"outcome": "maybe"})
    assert refused.status_code == 400 and refused.json()["message"]
