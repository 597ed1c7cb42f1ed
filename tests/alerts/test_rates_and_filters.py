"""The rate event (a burst over N failures in M minutes is one alert, a trickle none), snooze
"until it gets worse", and the connection and endpoint filters of the form and the command."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from alerts.delivery import deliver, due_ids
from alerts.models import Alert, AlertRule, RateWatch
from alerts.raising import raise_pending
from connections.models import AwsAccount
from executions.choices import GroupTransitionKind, Outcome
from executions.grouping import refresh_groups
from executions.models import FailureGroup, HttpAttempt
from executions.transitions import record_group_transition
from tests.alerts.receivers import HttpReceiver, free_port
from tests.factories import (
    ConnectionFactory,
    EndpointFactory,
    ExecutionFactory,
    FailureGroupFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db
SECRET = "a-signing-secret-of-some-length"


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    server = HttpReceiver(SECRET, port=free_port()).start()
    yield server
    server.stop()


def _rule(receiver: HttpReceiver, **extra: Any) -> AlertRule:
    values: dict[str, Any] = {
        "name": "team",
        "webhook_url": f"{receiver.url}/hook",
        "signing_secret": SECRET,
        **extra,
    }
    return AlertRule.objects.create(**values)


def _failures(group: FailureGroup, times: list[datetime]) -> None:
    execution = ExecutionFactory.create(account=group.account)
    start = HttpAttempt.objects.filter(failure_group=group).count()
    HttpAttempt.objects.bulk_create(
        HttpAttempt(
            account=group.account,
            execution=execution,
            state_name="Call",
            key_event_id=start + i + 1,
            occurred_at=at,
            failure_group=group,
            outcome=Outcome.FAILED,
            category=group.category,
        )
        for i, at in enumerate(times)
    )
    refresh_groups([group.pk])


def _sent(receiver: HttpReceiver) -> list[dict[str, Any]]:
    for pk in due_ids():
        deliver(pk)
    return [r.body for r in receiver.on("/hook")]


def test_a_burst_over_the_rate_is_one_alert_a_trickle_none(receiver: HttpReceiver) -> None:
    rule = _rule(receiver, events=["rate"], rate_failures=5, rate_minutes=10)
    burst, trickle = FailureGroupFactory.create_batch(2, count=0)
    now = timezone.now()
    # 12 failures an hour, one every 5 minutes: never 5 within 10 minutes.
    _failures(trickle, [now - timedelta(minutes=5 * k) for k in range(12)])
    assert raise_pending() == 0
    _failures(burst, [now - timedelta(seconds=k) for k in range(6)])
    assert raise_pending() == 1
    _failures(burst, [now])
    assert raise_pending() == 0  # still above: the same crossing
    (body,) = _sent(receiver)
    assert body["event"] == "rate" and body["title"].startswith(
        "Failure rate crossed (5 failures in 10 minutes)"
    )
    assert Alert.objects.get().group == burst

    # It falls below, then bursts again: a second crossing, inside the quiet period (silent).
    with time_machine.travel(now + timedelta(minutes=11)):
        assert raise_pending() == 0
        assert not RateWatch.objects.get(rule=rule, group=burst).above
        _failures(burst, [timezone.now()] * 5)
        assert raise_pending() == 0
    assert RateWatch.objects.get(rule=rule, group=burst).crossings == 2
    assert Alert.objects.count() == 1


def test_snoozed_until_worse_is_silent_at_the_old_rate_and_alerts_when_worse(
    receiver: HttpReceiver, viewers: Group, account: AwsAccount
) -> None:
    _rule(receiver, events=["new_group"])
    group = FailureGroupFactory.create(account=account, count=0)
    now = timezone.now()
    _failures(group, [now - timedelta(minutes=k) for k in range(3)])
    record_group_transition([group], GroupTransitionKind.OPENED)
    assert raise_pending() == 1

    client = Client()
    client.force_login(
        UserFactory.create(groups=[viewers], perms=["executions.change_failuregroup"])
    )
    url = reverse("executions:group_snooze", args=[group.pk])
    assert client.post(url, {"until_worse": "on"}).status_code == 302
    assert FailureGroup.objects.get(pk=group.pk).snoozed_rate == 3
    assert "snoozed until it gets worse" in client.get(group.get_absolute_url()).content.decode()

    _failures(group, [now] * 3)  # 6 in the hour: not more than twice the 3 it had
    assert raise_pending() == 0
    group.refresh_from_db()
    assert group.silenced(timezone.now())

    _failures(group, [now])  # 7: worse
    assert raise_pending() == 1
    group.refresh_from_db()
    assert group.snoozed_rate is None and not group.silenced(timezone.now())
    bodies = _sent(receiver)
    assert [b["event"] for b in bodies] == ["new_group", "worsened"]
    assert bodies[1]["title"].startswith("Got worse while snoozed")
    refresh_groups([group.pk])  # a later recount records nothing more
    assert raise_pending() == 0


def test_connection_and_endpoint_filters_in_the_command_and_the_form(
    receiver: HttpReceiver,
    viewers: Group,
    account: AwsAccount,
    other_account: AwsAccount,
    capsys: pytest.CaptureFixture[str],
) -> None:
    watched = ConnectionFactory.create(account=account)
    endpoint = EndpointFactory.create(account=account)
    foreign = ConnectionFactory.create(account=other_account)
    hook = f"{receiver.url}/hook"
    base = ["--name", "c", "--events", "new_group", "--webhook", hook, "--account", account.name]
    call_command("add_alert_rule", *base, "--connection", watched.arn)
    rule = AlertRule.objects.get()
    assert list(rule.connections.all()) == [watched]
    for extra, says in [
        (["--connection", foreign.arn], "no such connection in the rule's accounts"),
        (["--endpoint", "https://nowhere.example/{id}"], "no such endpoint"),
        (["--events", "rate"], "needs --rate"),
        (["--events", "rate", "--rate", "5/0"], "M 1 to 1440"),
    ]:
        with pytest.raises(SystemExit) as exited:
            call_command("add_alert_rule", *base, *extra)
        err = capsys.readouterr().err
        assert exited.value.code == 2 and err.count("\n") == 1 and says in err, err
    call_command(
        "add_alert_rule", *base, "--events", "rate", "--rate", "3/5",
        "--endpoint", endpoint.url_template,
    )  # fmt: skip
    rule.refresh_from_db()
    assert (rule.rate_failures, rule.rate_minutes, list(rule.endpoints.all())) == (3, 5, [endpoint])
    assert not rule.connections.exists()

    # The matcher: of two new groups only the one through the watched connection alerts.
    call_command("add_alert_rule", *base, "--connection", watched.arn)
    on, off = (
        FailureGroupFactory.create(account=account, connection=c, count=0)
        for c in (watched, ConnectionFactory.create(account=account))
    )
    for group in (on, off):
        _failures(group, [timezone.now()])
    record_group_transition([on, off], GroupTransitionKind.OPENED)
    assert raise_pending() == 1 and Alert.objects.get().group == on

    # The form offers only resources of the accounts the user sees; another's is refused.
    client = Client()
    client.force_login(UserFactory.create(groups=[viewers], perms=["alerts.add_alertrule"]))
    page = client.get(reverse("alerts:new")).content.decode()
    assert watched.name in page and foreign.name not in page
    post: dict[str, Any] = {"name": "form", "events": ["rate"], "accounts": [account.pk]}
    post["webhook_url"] = hook
    post |= {"quiet_period_seconds": 60, "rate_failures": 0, "rate_minutes": 0}
    assert (
        client.post(reverse("alerts:new"), post | {"connections": [foreign.pk]}).status_code == 400
    )
    assert client.post(reverse("alerts:new"), post).status_code == 400  # rate without N and M
    post |= {"rate_failures": 4, "rate_minutes": 15}
    post |= {"connections": [watched.pk], "endpoints": [endpoint.pk]}
    assert client.post(reverse("alerts:new"), post).status_code == 302
    made = AlertRule.objects.get(name="form")
    assert (made.rate_text, list(made.connections.all()), list(made.endpoints.all())) == (
        "4 failures in 15 minutes",
        [watched],
        [endpoint],
    )
