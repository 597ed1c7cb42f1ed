"""A revealed replay: the secrets are shown once, in the confirming response, and are then in
no database row, no Redis key or value, no Celery result and no log line."""

from __future__ import annotations

import base64
import json
import logging
from typing import Any

import pytest
import redis
from django.conf import settings
from django.contrib.auth.models import Group
from django.db import connection
from django.urls import reverse

from connections.models import AwsAccount
from operations.models import OperatorAction
from sandbox import partner
from sandbox.server import Sandbox
from tests.aws_sandbox import register
from tests.factories import GroupFactory, UserFactory
from tests.operations.replay_support import (
    CANARY_HEADER,
    CANARY_INPUT,
    CANARY_PASSWORD,
    REPLAY_REGION,
    failed_order,
)
from tests.operations.test_redrive import client_of, with_operator_role
from tests.operations.test_replay import REPLAYER, REVEALER, _field
from tests.sandbox.support import unique

pytestmark = pytest.mark.django_db(transaction=True)
BASIC_PAIR = base64.b64encode(f"{partner.BASIC_USERNAME}:{CANARY_PASSWORD}".encode()).decode()
CANARIES = (CANARY_HEADER, CANARY_PASSWORD, BASIC_PAIR, CANARY_INPUT)


@pytest.fixture
def team() -> Group:
    return GroupFactory.create(name=unique("revealers"))


@pytest.fixture
def account(sync_sandbox: Sandbox, team: Group) -> AwsAccount:
    account = register(sync_sandbox, name=unique("reveal"), region=REPLAY_REGION)
    account.groups.add(team)
    return account


def rows_with(canary: str) -> list[str]:
    """Every table's rows as text, scanned for `canary`."""
    found = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            quoted = connection.ops.quote_name(table)
            cursor.execute(f"SELECT t::text FROM {quoted} t WHERE t::text LIKE %s", [f"%{canary}%"])  # noqa: S608
            found += [f"{table}: {row[0][:200]}" for row in cursor.fetchall()]
    return found


def redis_with(canary: str) -> list[str]:
    """Every key of Redis's database (the broker, the result backend, the rate limiter, the
    cache), names and values, scanned for `canary`."""
    client: Any = redis.Redis.from_url(settings.REDIS_URL)
    readers: dict[str, Any] = {
        "string": lambda k: [client.get(k) or b""],
        "hash": lambda k: [*client.hkeys(k), *client.hvals(k)],
        "list": lambda k: client.lrange(k, 0, -1),
        "set": lambda k: list(client.smembers(k)),
        "zset": lambda k: client.zrange(k, 0, -1),
    }
    found = []
    for key in client.scan_iter(count=1000):
        read = readers.get(client.type(key).decode(), lambda k: [])
        if any(canary.encode() in bytes(v) for v in [key, *read(key)]):
            found.append(key.decode(errors="replace"))
    return found


def test_a_revealed_replay_is_shown_once_and_its_secrets_are_stored_nowhere(
    sync_sandbox: Sandbox,
    account: AwsAccount,
    team: Group,
    eager: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    failed = failed_order(sync_sandbox, account)
    with_operator_role(account)
    url = reverse("operations:replay", args=[failed.attempt.pk])
    plain = client_of(UserFactory.create(groups=[team], perms=[REPLAYER]))
    revealer = client_of(UserFactory.create(groups=[team], perms=[REPLAYER, REVEALER]))
    assert "data-reveal" not in plain.get(url).content.decode()
    page = revealer.get(url).content.decode()
    assert "data-reveal" in page
    form = {"confirm": "on", "state_input": _field(page, "state_input")}
    # Without the permission a posted `reveal` is ignored: the replay is a plain one.
    plain.post(url, {**form, "reveal": "on"})
    assert OperatorAction.objects.get().kind == "replay"

    response = revealer.post(url, {**form, "reveal": "on"})

    # Shown once: in this response, which no cache may keep.
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    shown = response.content.decode()
    assert "data-revealed-notice" in shown
    assert CANARY_HEADER in shown and BASIC_PAIR in shown
    action = OperatorAction.objects.get(kind="reveal")
    assert action.outcome == "succeeded" and action.request["revealSecrets"] is True
    assert action.result["status"] == "FAILED"
    # Reloaded, the page has the stored (redacted) form only.
    again = revealer.get(action.get_absolute_url()).content.decode()
    assert "data-revealed-notice" not in again and 'data-replay-result="FAILED"' in again
    assert CANARY_HEADER not in again and BASIC_PAIR not in again

    for canary in CANARIES:
        assert rows_with(canary) == [], canary
        assert redis_with(canary) == [], canary
        assert canary not in caplog.text, canary
    assert f"Replay {action.pk} of" in caplog.text  # the logs were captured


def test_the_task_never_carries_out_a_revealing_row(
    sync_sandbox: Sandbox, account: AwsAccount, team: Group
) -> None:
    from operations.tasks import replay_attempt

    failed = failed_order(sync_sandbox, account)
    with_operator_role(account)
    row = OperatorAction.objects.create(
        kind="reveal",
        username="x",
        account=account,
        attempt=failed.attempt,
        target=failed.attempt.execution.arn,
        client_token=unique("t"),
    )
    assert replay_attempt.apply(args=(row.pk,)).get() == "already finished"
    row.refresh_from_db()
    assert row.outcome == "pending" and row.result == {}


def test_a_secret_typed_into_an_edit_is_sent_from_the_request_and_stored_nowhere(
    sync_sandbox: Sandbox, account: AwsAccount, team: Group, monkeypatch: pytest.MonkeyPatch
) -> None:
    from operations import tasks

    queued: list[int] = []
    monkeypatch.setattr(tasks.replay_attempt, "delay", lambda pk: queued.append(pk))
    typed_canary = "typed-canary-secret-0a9b8c7d6e"
    failed = failed_order(sync_sandbox, account)
    with_operator_role(account)
    operator = client_of(UserFactory.create(groups=[team], perms=[REPLAYER]))
    url = reverse("operations:replay", args=[failed.attempt.pk])
    page = operator.get(url).content.decode()
    edited = {**json.loads(_field(page, "state_input")), "apiToken": typed_canary}

    response = operator.post(url, {"confirm": "on", "state_input": json.dumps(edited)})

    # Carried out in the POST (a task could only be given the redacted form).
    assert response.status_code == 200 and queued == []
    action = OperatorAction.objects.get()
    assert action.outcome == "succeeded" and action.result["status"] == "FAILED"
    assert action.request["input"]["apiToken"].startswith("[redacted")
    assert rows_with(typed_canary) == [] and redis_with(typed_canary) == []
    # Left as shown, the same secret is taken from AWS's copy: an ordinary queued replay.
    operator.post(url, {"confirm": "on", "state_input": _field(page, "state_input")})
    assert len(queued) == 1
