"""The apprise channel against a real local HTTP receiver (apprise's json:// service): the
message arrives with the alert's Idempotency-Key, a refusal is retried and logged without the
URL, the URL is stored encrypted and never shown again, and a URL apprise cannot use is refused
in the form and the command."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.urls import reverse

from alerts.choices import Channel, DeliveryStatus
from alerts.delivery import deliver, due_ids
from alerts.models import Alert, AlertRule, DeliveryAttempt
from alerts.raising import raise_pending
from connections.models import AwsAccount
from executions.choices import GroupTransitionKind, Outcome
from executions.transitions import record_group_transition
from tests.alerts.receivers import HttpReceiver, free_port
from tests.factories import (
    ExecutionFactory,
    FailureGroupFactory,
    HttpAttemptFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    server = HttpReceiver("unused", port=free_port()).start()
    yield server
    server.stop()


def _apprise_url(receiver: HttpReceiver) -> str:
    return f"json://127.0.0.1:{receiver.port}/apprise-token-path"


def _opened() -> None:
    group = FailureGroupFactory.create()
    HttpAttemptFactory.create(
        account=group.account,
        execution=ExecutionFactory.create(account=group.account),
        failure_group=group,
        outcome=Outcome.FAILED,
    )
    record_group_transition([group], GroupTransitionKind.OPENED)


def test_an_alert_reaches_a_real_receiver_through_apprise_once_refused_then_accepted(
    receiver: HttpReceiver, settings: object
) -> None:
    AlertRule.objects.create(name="team", events=["new_group"], apprise_url=_apprise_url(receiver))
    _opened()
    assert raise_pending() == 1
    alert = Alert.objects.get()
    assert list(alert.deliveries.values_list("channel", flat=True)) == [Channel.APPRISE]

    receiver.status = 503
    assert [deliver(pk) for pk in due_ids()] == [DeliveryStatus.PENDING]
    failed = DeliveryAttempt.objects.get()
    assert failed.answer.startswith("apprise: not delivered") and not failed.ok
    assert "apprise-token-path" not in failed.answer and "127.0.0.1" not in failed.answer

    receiver.status = 200
    alert.deliveries.update(next_attempt_at=alert.created_at)  # skip the backoff
    assert [deliver(pk) for pk in due_ids()] == [DeliveryStatus.SENT]
    (got,) = receiver.on("/apprise-token-path")
    assert got.key == alert.key  # the same Idempotency-Key as every other channel
    assert alert.payload["title"] in got.body["title"]
    assert alert.payload["link"] in got.body["message"]
    assert [deliver(pk) for pk in due_ids()] == []  # nothing twice


def test_the_apprise_url_is_encrypted_write_only_and_checked(
    receiver: HttpReceiver,
    account: AwsAccount,
    viewers: Group,
    capfd: pytest.CaptureFixture[str],
) -> None:
    client = Client()
    client.force_login(UserFactory.create(groups=[viewers], perms=["alerts.add_alertrule"]))
    form = {
        "name": "apprise rule",
        "enabled": "on",
        "events": ["new_group"],
        "accounts": [account.pk],
        "final_attempts_only": "on",
        "quiet_period_seconds": "3600",
    }
    bad = client.post(reverse("alerts:new"), {**form, "apprise_url": "nosuch://x/tok3n"})
    assert bad.status_code == 400 and "not one apprise can send to" in bad.content.decode()
    assert "tok3n" not in bad.content.decode()
    # apprise logs the URL it could not parse: kept out of our handlers (the console is stderr;
    # pytest's own capture hooks into non-propagating loggers, so caplog would see it).
    assert not logging.getLogger("apprise").propagate
    assert "tok3n" not in "".join(capfd.readouterr())
    ok = client.post(reverse("alerts:new"), {**form, "apprise_url": _apprise_url(receiver)})
    assert ok.status_code == 302, ok.content.decode()
    rule = AlertRule.objects.get()
    assert rule.channels == [Channel.APPRISE]
    with connection.cursor() as cursor:
        cursor.execute("SELECT apprise_url FROM alerts_alertrule WHERE id = %s", [rule.pk])
        stored = cursor.fetchone()[0]
    assert "apprise-token-path" not in stored and rule.apprise_url == _apprise_url(receiver)
    edit = client.get(reverse("alerts:edit", args=[rule.pk])).content.decode()
    assert "apprise-token-path" not in edit


def test_the_command_takes_apprise_urls_from_a_file(
    receiver: HttpReceiver, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    urls = tmp_path / "apprise"
    urls.write_text(_apprise_url(receiver) + "\n")
    call_command("add_alert_rule", "--name", "a", "--events", "new_group", "--apprise-file", urls)
    assert AlertRule.objects.get().apprise_url == _apprise_url(receiver)
    urls.write_text("nosuch://x/y")
    with pytest.raises(SystemExit) as exited:
        call_command(
            "add_alert_rule", "--name", "b", "--events", "new_group", "--apprise-file", urls
        )
    assert exited.value.code == 2
    assert "not one apprise can send to" in capsys.readouterr().err
