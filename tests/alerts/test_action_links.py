"""Acknowledge/snooze/mute/resolve links inside the message: signed and expiring, they open a
confirm page for a logged-in user with access; only its POST changes the group, never the GET."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
import time_machine
from django.contrib.auth.models import Group
from django.core import signing
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from alerts.links import ACTIONS, token
from alerts.messages import email_parts, slack_message
from alerts.models import Alert, AlertRule
from alerts.raising import raise_pending
from connections.models import AwsAccount
from executions.choices import GroupStatus, GroupTransitionKind, Outcome
from executions.models import FailureGroup
from executions.transitions import record_group_transition
from tests.factories import (
    ExecutionFactory,
    FailureGroupFactory,
    HttpAttemptFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db
PERM = "executions.change_failuregroup"


@pytest.fixture
def group(account: AwsAccount) -> FailureGroup:
    made = FailureGroupFactory.create(account=account)
    HttpAttemptFactory.create(
        account=account,
        execution=ExecutionFactory.create(account=account),
        failure_group=made,
        outcome=Outcome.FAILED,
    )
    return made


@pytest.fixture
def triager(viewers: Group) -> Client:
    client = Client()
    client.force_login(UserFactory.create(groups=[viewers], perms=[PERM]))
    return client


def _path(url: str) -> str:
    """The link without SITE_URL's scheme and host, for the test client."""
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def _links(group: FailureGroup, settings: Any) -> dict[str, str]:
    settings.STEPSCOPE = {**settings.STEPSCOPE, "SITE_URL": "https://stepscope.example.com"}
    rule = AlertRule.objects.create(name="r", events=["new_group"], email_to=["a@example.com"])
    rule.accounts.set([group.account])
    record_group_transition([group], GroupTransitionKind.OPENED)
    assert raise_pending() == 1
    payload = Alert.objects.get().payload
    return {a["action"]: a["url"] for a in payload["actions"]}


def test_every_channel_carries_the_links(group: FailureGroup, settings: Any) -> None:
    links = _links(group, settings)
    assert sorted(links) == sorted(ACTIONS)
    assert all(u.startswith("https://stepscope.example.com/alerts/act/?t=") for u in links.values())
    payload = Alert.objects.get().payload
    _, text, html = email_parts(payload)
    assert all(u in text for u in links.values())
    assert all(u.replace("&", "&amp;") in html or u in html for u in links.values())
    buttons = [
        e.get("url") for b in slack_message(payload)["blocks"] for e in b.get("elements", [])
    ]
    assert set(links.values()) <= set(buttons)


@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_the_link_opens_a_confirm_page_and_only_its_post_acts(
    group: FailureGroup, triager: Client, settings: Any, action: str
) -> None:
    page = triager.get(_path(_links(group, settings)[action]))
    assert page.status_code == 200
    html = page.content.decode()
    before = FailureGroup.objects.get(pk=group.pk)
    assert (before.acknowledged_at, before.snoozed_until, before.muted, before.status) == (
        None,
        None,
        False,
        GroupStatus.OPEN,
    )  # the GET changed nothing
    target = re.search(r'<form method="post" class="confirm-action" action="([^"]+)"', html)
    assert target is not None and target.group(1).startswith(group.get_absolute_url())
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', html))
    fields.pop("csrfmiddlewaretoken", None)
    done = triager.post(target.group(1), fields)
    assert done.status_code == 302 and done["Location"] == group.get_absolute_url(), done
    after = FailureGroup.objects.get(pk=group.pk)
    changed = {
        "acknowledge": after.acknowledged_at is not None,
        "snooze": after.snoozed_until is not None
        and after.snoozed_until > timezone.now() + timedelta(hours=23),
        "mute": after.muted,
        "resolve": after.status == GroupStatus.RESOLVED,
    }
    assert changed[action], changed


def test_a_changed_a_foreign_or_an_expired_link_is_refused(
    group: FailureGroup, triager: Client, settings: Any
) -> None:
    good = token(group.pk, "mute")
    act = reverse("alerts:act")
    assert triager.get(act, {"t": good}).status_code == 200
    cut = triager.get(act, {"t": good[:-3]})
    assert cut.status_code == 400 and "not valid" in cut.content.decode()
    other_salt = signing.dumps({"g": group.pk, "a": "mute"}, compress=True)
    assert triager.get(act, {"t": other_salt}).status_code == 400
    unknown = signing.dumps({"g": group.pk, "a": "delete"}, salt="stepscope.alerts.action-link")
    assert triager.get(act, {"t": unknown}).status_code == 400
    assert triager.get(act).status_code == 400
    assert triager.post(act, {"t": good}).status_code == 405  # nothing is done by the link
    later = timezone.now() + timedelta(seconds=settings.STEPSCOPE["ALERT_LINK_MAX_AGE_SECONDS"] + 5)
    with time_machine.travel(later):
        expired = triager.get(act, {"t": good})
    assert expired.status_code == 400 and "expired" in expired.content.decode()
    assert not FailureGroup.objects.get(pk=group.pk).muted
