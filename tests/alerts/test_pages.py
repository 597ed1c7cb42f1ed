"""The rule page: "Send test alert" reaches a real receiver and the delivery log shows what it
answered; stored secrets never come back to the browser."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from alerts.models import AlertRule
from connections.models import AwsAccount
from executions.models import FailureGroup
from tests.alerts.receivers import HttpReceiver
from tests.factories import FailureGroupFactory, UserFactory
from tests.test_hostile_input import _posts

pytestmark = pytest.mark.django_db
SECRET = "page-test-signing-secret"


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    server = HttpReceiver(SECRET).start()
    yield server
    server.stop()


def test_send_test_alert_and_the_delivery_log(
    receiver: HttpReceiver, account: AwsAccount, viewers: Group
) -> None:
    rule = AlertRule.objects.create(
        name="team",
        events=["new_group"],
        webhook_url=f"{receiver.url}/hook",
        signing_secret=SECRET,
        slack_webhook_url=f"{receiver.url}/slack",
    )
    rule.accounts.set([account])
    client = Client()
    client.force_login(UserFactory.create(groups=[viewers], perms=["alerts.change_alertrule"]))

    receiver.status = 503
    client.post(reverse("alerts:test", args=[rule.pk]))
    receiver.status = 200
    client.post(reverse("alerts:test", args=[rule.pk]))

    assert sorted(r.path for r in receiver.received) == ["/hook", "/slack"]
    assert all(r.signed for r in receiver.on("/hook"))
    page = client.get(reverse("alerts:rule", args=[rule.pk])).content.decode()
    assert page.count("failed, will retry") == 2 and "receiver is down" in page
    assert page.count("badge green") == 2
    edit = client.get(reverse("alerts:edit", args=[rule.pk])).content.decode()
    assert receiver.url not in edit and SECRET not in edit and receiver.url not in page


def test_snooze_mute_and_acknowledge_from_the_group_page(
    viewers: Group, account: AwsAccount
) -> None:
    group = FailureGroupFactory.create(account=account)
    client = Client()
    client.force_login(
        UserFactory.create(groups=[viewers], perms=["executions.change_failuregroup"])
    )
    assert (
        client.post(reverse("executions:group_snooze", args=[group.pk]), {"hours": "x"}).status_code
        == 400
    )
    assert (
        client.post(reverse("executions:group_snooze", args=[group.pk]), {"hours": "2"}).status_code
        == 302
    )
    client.post(reverse("executions:group_acknowledge", args=[group.pk]))
    stored = FailureGroup.objects.get(pk=group.pk)
    assert (
        stored.acknowledged_at and stored.snoozed_until and stored.silenced(stored.acknowledged_at)
    )
    client.post(reverse("executions:group_mute", args=[group.pk]))
    assert FailureGroup.objects.get(pk=group.pk).muted
    page = client.get(group.get_absolute_url()).content.decode()
    assert "Unmute" in page and "muted" in page
    client.post(reverse("executions:group_unmute", args=[group.pk]))
    assert not FailureGroup.objects.get(pk=group.pk).silenced(timezone.now())


def test_no_form_value_makes_the_rule_form_fail(account: AwsAccount) -> None:
    root = Client()
    root.force_login(UserFactory.create(is_superuser=True, is_staff=True))
    fields = ["name", "events", "accounts", "regions", "email_to", "webhook_url"]
    fields += ["signing_secret", "apprise_url", "quiet_period_seconds", "categories"]
    fields += ["connections", "endpoints", "rate_failures", "rate_minutes"]
    bad = _posts(root, reverse("alerts:new"), fields, {302, 400})
    assert not bad, "\n".join(bad[:40])
