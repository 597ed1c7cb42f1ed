"""Replay in Chromium, against the sandbox: from the execution page's "Replay…" to the confirm
page, then the result page polling by HTMX until the task has answered; with and without the
reveal permission, and "edit and replay" fixing the missing header the partner asked for.

The task is handed over as the broker would (its id recorded instead of queued) and then run
by the test as a worker would: the page must poll to see it finish."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import Group

from connections.models import AwsAccount
from operations import tasks
from operations.models import OperatorAction
from sandbox.server import Sandbox
from tests.aws_sandbox import register
from tests.conftest import log_in
from tests.factories import GroupFactory, UserFactory
from tests.operations.replay_support import (
    CANARY_HEADER,
    CANARY_INPUT,
    REPLAY_REGION,
    Failed,
    failed_order,
)
from tests.operations.test_redrive import with_operator_role
from tests.operations.test_replay import REPLAYER, REVEALER
from tests.sandbox.support import unique

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def queued(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """The replay tasks handed to the broker, by action id (no worker runs in the tests)."""
    ids: list[int] = []
    monkeypatch.setattr(tasks.replay_attempt, "delay", lambda pk: ids.append(pk))
    yield ids


@pytest.fixture
def team() -> Group:
    return GroupFactory.create(name=unique("browser-replay"))


@pytest.fixture
def failed(sync_sandbox: Sandbox, team: Group) -> Failed:
    account: AwsAccount = register(
        sync_sandbox, name=unique("browser-replay"), region=REPLAY_REGION
    )
    account.groups.add(team)
    with_operator_role(account)
    return failed_order(sync_sandbox, account)


def open_replay(page: Any, failed: Failed) -> None:
    page.goto(failed.attempt.execution.get_absolute_url())
    page.click(f"#attempt-{failed.attempt.pk} [data-replay]")
    page.wait_for_url("**/operations/attempts/*/replay/")
    assert "TRACE" in page.locator("[data-teststate-request]").inner_text()


def run_queued_and_wait(page: Any, queued: list[int], status: str) -> None:
    assert page.locator("#action[data-polling=true]").count() == 1
    for pk in queued:
        tasks.replay_attempt.apply(args=(pk,))
    queued.clear()
    page.wait_for_selector(f'#action:not([data-polling]) [data-replay-result="{status}"]')


def test_a_replay_without_reveal_shows_the_request_as_sent_with_secrets_hidden(
    page: Any, live_server: Any, failed: Failed, team: Group, queued: list[int]
) -> None:
    log_in(page, live_server, UserFactory.create(groups=[team], perms=[REPLAYER]))
    open_replay(page, failed)
    assert page.locator("[data-reveal]").count() == 0
    assert page.locator("[data-no-reveal]").count() == 1
    assert CANARY_INPUT not in page.content()

    page.check("input[name=confirm]")
    page.click("button:has-text('Replay')")
    page.wait_for_url("**/operations/audit/*/")
    run_queued_and_wait(page, queued, "FAILED")

    headers = page.locator("[data-sent-headers]").inner_text()
    assert "X-Signing-Key" in headers and "[redacted" in headers
    assert "Authorization" in headers
    assert page.locator("[data-response-status]").inner_text().startswith("400")
    assert "only in the replay" in page.locator('[data-diff="original-attempt"]').inner_text()
    assert CANARY_HEADER not in page.content()
    assert page.errors == []


def test_a_revealed_replay_shows_the_secrets_once(
    page: Any, live_server: Any, failed: Failed, team: Group, queued: list[int]
) -> None:
    log_in(page, live_server, UserFactory.create(groups=[team], perms=[REPLAYER, REVEALER]))
    open_replay(page, failed)
    page.check("[data-reveal] input")
    page.check("input[name=confirm]")
    page.click("button:has-text('Replay')")

    page.wait_for_selector("[data-revealed-notice]")
    assert queued == []  # revealed: made in the request, never handed to the broker
    assert CANARY_HEADER in page.locator("[data-sent-headers]").inner_text()
    # Opened again (the audit row's page), the answer is the stored one: redacted.
    page.goto(OperatorAction.objects.get(kind="reveal").get_absolute_url())
    page.wait_for_selector('[data-replay-result="FAILED"]')
    assert page.locator("[data-revealed-notice]").count() == 0
    assert CANARY_HEADER not in page.content()
    assert "[redacted" in page.locator("[data-sent-headers]").inner_text()
    assert page.errors == []


def test_edit_and_replay_tries_the_fix_before_deploying_it(
    page: Any, live_server: Any, failed: Failed, team: Group, queued: list[int]
) -> None:
    log_in(page, live_server, UserFactory.create(groups=[team], perms=[REPLAYER]))
    open_replay(page, failed)
    page.check("input[name=confirm]")
    page.click("button:has-text('Replay')")
    page.wait_for_url("**/operations/audit/*/")
    run_queued_and_wait(page, queued, "FAILED")
    assert "Idempotency-Key" in page.locator("[data-response-body]").inner_text()

    page.click("[data-edit-and-replay]")
    page.wait_for_url("**/operations/attempts/*/replay/?from=*")
    page.click("[data-edit] summary")
    arguments = json.loads(page.input_value("textarea[name=arguments]"))
    arguments["Headers"]["Idempotency-Key"] = "fix-from-the-browser"
    page.fill("textarea[name=arguments]", json.dumps(arguments, indent=2))
    page.check("input[name=confirm]")
    page.click("button:has-text('Replay')")
    # A typed secret (the header's name says "key") is sent from the confirming request.
    page.wait_for_selector('[data-replay-result="SUCCEEDED"]')
    assert queued == []

    assert page.locator("[data-response-status]").inner_text().startswith("201")
    # Sent this time (its value is redacted: the name says "key", as the redactor reads it).
    assert "Idempotency-Key" in page.locator("[data-sent-headers]").inner_text()
    assert page.errors == []
