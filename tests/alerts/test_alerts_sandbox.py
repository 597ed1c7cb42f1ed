"""End to end through a real sandbox sync: a group opens, a resolved group regresses and a
connection is de-authorized; `manage.py sync_account` delivers exactly those alerts, once each,
to a real SMTP server and a real HTTP receiver that checks the signature, with no secret in any
message."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.utils import timezone

from alerts.choices import DeliveryStatus
from alerts.models import Alert, Delivery
from connections.choices import ConnectionState
from connections.models import AwsAccount, ConnectionStateChange
from executions.choices import GroupStatus
from executions.models import FailureGroup
from sandbox import partner
from sandbox.server import Sandbox
from tests.alerts.receivers import HttpReceiver, SmtpReceiver, parts
from tests.aws_sandbox import register, sandbox_client

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

SECRET = "whsec-" + uuid.uuid4().hex
CANARY = f"CANARY{uuid.uuid4().hex[:10].upper()}"


@pytest.fixture
def smtp(settings: Any) -> Iterator[SmtpReceiver]:
    server = SmtpReceiver().start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", server.port
    yield server
    server.stop()


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    server = HttpReceiver(SECRET).start()
    yield server
    server.stop()


def _machine(sandbox: Sandbox, connection: str, path: str) -> str:
    sfn = sandbox_client(sandbox, "stepfunctions")
    definition = {
        "StartAt": "Call",
        "States": {
            "Call": {
                "Type": "Task",
                "Resource": "arn:aws:states:::http:invoke",
                "Parameters": {
                    "ApiEndpoint": sandbox.partner_url + path,
                    "Method": "GET",
                    "InvocationConfig": {"ConnectionArn": connection},
                },
                "End": True,
            }
        },
    }
    return str(
        sfn.create_state_machine(
            name=f"alerts-{uuid.uuid4().hex[:6]}",
            definition=json.dumps(definition),
            roleArn="arn:aws:iam::123456789012:role/sandbox",
        )["stateMachineArn"]
    )


def _run(sandbox: Sandbox, machine: str) -> None:
    sfn = sandbox_client(sandbox, "stepfunctions")
    arn = sfn.start_execution(stateMachineArn=machine, input="{}")["executionArn"]
    for _ in range(300):
        if sfn.describe_execution(executionArn=arn)["status"] != "RUNNING":
            return
        time.sleep(0.1)
    raise AssertionError("the execution did not finish")


def _connection(sandbox: Sandbox, auth: str, params: dict[str, Any]) -> str:
    events = sandbox_client(sandbox, "events")
    name = f"alerts-{uuid.uuid4().hex[:6]}"
    return str(
        events.create_connection(Name=name, AuthorizationType=auth, AuthParameters=params)[
            "ConnectionArn"
        ]
    )


def _sync(name: str) -> None:
    try:
        call_command("sync_account", name)
    except SystemExit as exit_:  # a partial run exits 1; its alerts were delivered first
        assert exit_.code in (0, 1)


def test_sandbox_scenario_raises_exactly_the_expected_alerts_on_every_channel(
    sync_sandbox: Sandbox, smtp: SmtpReceiver, receiver: HttpReceiver, tmp_path: Path
) -> None:
    # A Basic connection whose password is stale (a canary): its 401 de-authorizes it.
    stale = _connection(
        sync_sandbox,
        "BASIC",
        {"BasicAuthParameters": {"Username": partner.BASIC_USERNAME, "Password": CANARY}},
    )
    keyed = _connection(
        sync_sandbox,
        "API_KEY",
        {"ApiKeyAuthParameters": {"ApiKeyName": partner.API_KEY_NAME, "ApiKeyValue": CANARY}},
    )
    _run(sync_sandbox, _machine(sync_sandbox, stale, "/basic"))
    broken = _machine(sync_sandbox, keyed, "/status/500")
    _run(sync_sandbox, broken)

    account = register(sync_sandbox, name=f"alerts-{uuid.uuid4().hex[:6]}")
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET)
    call_command(
        "add_alert_rule",
        "--name", "on-call",
        "--events", "new_group,regression,connection_deauthorized,sync_failed",
        "--webhook", f"{receiver.url}/hook",
        "--signing-secret-file", str(secret_file),
        "--slack-webhook", f"{receiver.url}/slack",
        "--email", "oncall@example.com",
        "--account", account.name,
    )  # fmt: skip

    _sync(account.name)
    first = {(r.body["event"], r.body.get("category", "")) for r in receiver.on("/hook")}
    assert ("connection_deauthorized", "") in first
    assert ("new_group", "5xx") in first
    assert ("new_group", "Authentication") in first

    # Someone resolves the 5xx group; it fails again: a regression, announced once.
    # The sandbox is shared with other suites, whose state machines this account reads too:
    # the group of this test's own connection.
    group = FailureGroup.objects.get(account=account, category="server_error", connection_arn=keyed)
    FailureGroup.objects.filter(pk=group.pk).update(
        status=GroupStatus.RESOLVED, status_changed_at=timezone.now()
    )
    time.sleep(1.1)  # AWS dates events to the millisecond or coarser: fail clearly after it
    _run(sync_sandbox, broken)
    _sync(account.name)
    _sync(account.name)  # nothing new: nothing sent

    alerts = list(Alert.objects.filter(rule__name="on-call"))
    # The account also reads other suites' state machines on the shared sandbox (their groups
    # raise alerts too, or none when no attempt of theirs is final): the exact check is over
    # this test's own two connections, and every alert raised reaches every channel below.
    ours = set(
        FailureGroup.objects.filter(account=account, connection_arn__in=[stale, keyed]).values_list(
            "pk", flat=True
        )
    )
    # One per de-authorization seen (this test's stale connection; another suite's may be
    # de-authorized on the shared sandbox too).
    deauthorizations = ConnectionStateChange.objects.filter(
        connection__account=account, state=ConnectionState.DEAUTHORIZED
    ).count()
    assert deauthorizations >= 1 and group.pk in ours
    expected = sorted(
        [("new_group", pk) for pk in ours]
        + [("regression", group.pk)]
        + [("connection_deauthorized", None)] * deauthorizations
    )
    raised = sorted(
        (a.event, a.group_id)
        for a in alerts
        if a.group_id in ours or a.event == "connection_deauthorized"
    )
    assert raised == expected
    assert not Delivery.objects.exclude(status=DeliveryStatus.SENT).exists()

    keys = sorted(a.key for a in alerts)
    hooks, slacks = receiver.on("/hook"), receiver.on("/slack")
    assert sorted(r.key for r in hooks) == keys and all(r.signed for r in hooks)
    assert sorted(r.key for r in slacks) == keys
    assert sorted(m["Idempotency-Key"] for m in smtp.messages) == keys
    assert not receiver.rejected

    # Other suites' de-authorized connections in the shared sandbox alert too: this test's own.
    stale_name = stale.split("/")[1]
    deauthorized = next(
        r.body
        for r in hooks
        if r.body["event"] == "connection_deauthorized" and r.body["connection"] == stale_name
    )
    assert deauthorized["state_machines"] and "401" in deauthorized["reason"]
    regression = next(r.body for r in hooks if r.body["event"] == "regression")
    assert regression["link"].endswith(group.get_absolute_url())
    slack = next(
        r.body for r in slacks if r.key == next(h.key for h in hooks if h.body is regression)
    )
    assert slack["blocks"][0]["type"] == "header" and "Regression" in slack["text"]
    for message in smtp.messages:
        plain, html = parts(message)
        assert plain and html and "Open in Stepscope" in plain and "<a href=" in html

    everything = b"".join(r.raw for r in receiver.received) + b"".join(
        m.as_bytes() for m in smtp.messages
    )
    assert CANARY.encode() not in everything
    assert AwsAccount.objects.filter(pk=account.pk).exists()
