"""Replay one attempt through TestState against the sandbox's moto server over HTTP: the
confirm page, the audit row, the task (Celery, eager), the redacted result and its diffs,
edit and replay, mock replay, and the access rules."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from connections.models import AwsAccount
from executions.redaction import default_redactor
from operations.models import OperatorAction
from operations.replay import restored
from sandbox.server import Sandbox
from tests.aws_sandbox import register
from tests.factories import GroupFactory, UserFactory
from tests.operations.replay_support import CANARY_HEADER, CANARY_INPUT, REPLAY_REGION, failed_order
from tests.operations.test_redrive import client_of, with_operator_role
from tests.sandbox.support import unique

pytestmark = pytest.mark.django_db(transaction=True)
REPLAYER = "operations.replay_attempt"
REVEALER = "operations.reveal_secrets"


@pytest.fixture
def team() -> Group:
    return GroupFactory.create(name=unique("replayers"))


@pytest.fixture
def account(sync_sandbox: Sandbox, team: Group) -> AwsAccount:
    account = register(sync_sandbox, name=unique("replay"), region=REPLAY_REGION)
    account.groups.add(team)
    return account


def test_a_replay_shows_the_request_aws_sent_redacted_and_the_diff(
    sync_sandbox: Sandbox, account: AwsAccount, team: Group, eager: None
) -> None:
    failed = failed_order(sync_sandbox, account)
    attempt = failed.attempt
    assert attempt.status_code == 400
    url = reverse("operations:replay", args=[attempt.pk])
    viewer = client_of(UserFactory.create(groups=[team]))
    assert viewer.get(url).status_code == 403
    assert "data-replay" not in viewer.get(attempt.execution.get_absolute_url()).content.decode()
    operator = client_of(UserFactory.create(groups=[team], perms=[REPLAYER]))
    assert "data-replay" in operator.get(attempt.execution.get_absolute_url()).content.decode()

    page = operator.get(url).content.decode()
    assert "data-no-operator-role" in page and "has no operator role" in page
    assert operator.post(url, {"confirm": "on", "state_input": "{}"}).status_code == 400

    with_operator_role(account)
    page = operator.get(url).content.decode()
    assert "data-teststate-request" in page and "TRACE" in page and "data-no-reveal" in page
    assert CANARY_INPUT not in page and "[redacted:" in page  # the input, read again, redacted
    assert operator.post(url, {"state_input": "{}"}).status_code == 400  # not confirmed
    form = {"confirm": "on", "state_input": _field(page, "state_input")}
    response = operator.post(url, form)
    assert response.status_code == 302

    action = OperatorAction.objects.get()
    assert response["Location"] == action.get_absolute_url()
    assert (action.kind, action.outcome) == ("replay", "succeeded")
    assert action.aws_request_id and action.attempt_id == attempt.pk
    assert action.request["inspectionLevel"] == "TRACE" and not action.request["revealSecrets"]
    result = action.result
    assert (result["status"], result["error"]) == ("FAILED", "States.Http.StatusCode.400")
    headers = dict(result["request"]["headers"])
    assert headers["Authorization"].startswith("[redacted")
    assert headers["X-Signing-Key"].startswith("[redacted")
    assert json.loads(result["request"]["body"]) == {"customerId": "c-1", "amount": 5}
    assert result["response"]["status"] == 400
    assert "Idempotency-Key" in result["response"]["body"]

    shown = operator.get(action.get_absolute_url()).content.decode()
    assert 'data-replay-result="FAILED"' in shown and "data-sent-headers" in shown
    # The connection's headers are what the history never showed: only in the replay.
    assert "x-signing-key" in shown and "only in the replay" in shown
    assert 'data-diff="last-success"' not in shown  # no success of this endpoint is stored
    assert CANARY_HEADER not in shown and CANARY_INPUT not in shown


def test_edit_and_replay_sends_the_fixed_call_and_keeps_hidden_input_values(
    sync_sandbox: Sandbox, account: AwsAccount, team: Group, eager: None
) -> None:
    failed = failed_order(sync_sandbox, account)
    with_operator_role(account)
    operator = client_of(UserFactory.create(groups=[team], perms=[REPLAYER]))
    url = reverse("operations:replay", args=[failed.attempt.pk])
    page = operator.get(url).content.decode()
    arguments = json.loads(_field(page, "arguments"))
    arguments["Headers"]["Idempotency-Key"] = "fix-1"

    response = operator.post(
        url,
        {
            "confirm": "on",
            "state_input": _field(page, "state_input"),
            "arguments": json.dumps(arguments),
        },
    )

    action = OperatorAction.objects.get()
    # The header's name says "key": a typed secret, so the call is made in this request
    # (a task could only be given the redacted form) and stored redacted.
    assert response.status_code == 200
    assert action.result["status"] == "SUCCEEDED", action.message
    assert action.result["response"]["status"] == 201
    assert action.request["arguments"]["Headers"]["Idempotency-Key"].startswith("[redacted")
    again = operator.get(f"{url}?from={action.pk}").content.decode()
    assert "Idempotency-Key" in again  # the edit form starts from the last edit


def test_a_mock_replay_runs_retry_and_catch_on_the_stored_failure_without_a_call(
    sync_sandbox: Sandbox, account: AwsAccount, team: Group, eager: None
) -> None:
    catch = [{"ErrorEquals": ["States.Http.StatusCode.400"], "Next": "Fix"}]
    failed = failed_order(sync_sandbox, account, Catch=catch)
    with_operator_role(account)
    operator = client_of(UserFactory.create(groups=[team], perms=[REPLAYER]))
    url = reverse("operations:replay", args=[failed.attempt.pk])
    page = operator.get(url).content.decode()

    operator.post(url, {"confirm": "on", "mock": "on", "state_input": _field(page, "state_input")})

    action = OperatorAction.objects.get()
    assert action.request["mock"]["errorOutput"]["error"] == "States.Http.StatusCode.400"
    assert (action.result["status"], action.result["next_state"]) == ("CAUGHT_ERROR", "Fix")
    assert action.result["request"] is None


def test_the_replay_is_compared_with_the_endpoints_last_success(
    sync_sandbox: Sandbox, account: AwsAccount, team: Group, eager: None
) -> None:
    failed = failed_order(sync_sandbox, account, succeed_first=True)
    with_operator_role(account)
    operator = client_of(UserFactory.create(groups=[team], perms=[REPLAYER]))
    url = reverse("operations:replay", args=[failed.attempt.pk])
    page = operator.get(url).content.decode()
    operator.post(url, {"confirm": "on", "state_input": _field(page, "state_input")})
    action = OperatorAction.objects.get()

    shown = operator.get(action.get_absolute_url()).content.decode()

    success = shown[shown.index('data-diff="last-success"') :]
    # The success sent the header the replay (like the failure) still lacks.
    assert "idempotency-key" in success and "missing in the replay" in success


def test_a_state_reading_the_context_object_gets_the_executions(
    sync_sandbox: Sandbox, account: AwsAccount, team: Group, eager: None
) -> None:
    body = {"customerId.$": "$.customer", "amount.$": "$.amount", "run.$": "$$.Execution.Name"}
    failed = failed_order(sync_sandbox, account, call={"RequestBody": body})
    with_operator_role(account)
    operator = client_of(UserFactory.create(groups=[team], perms=[REPLAYER]))
    url = reverse("operations:replay", args=[failed.attempt.pk])
    page = operator.get(url).content.decode()

    operator.post(url, {"confirm": "on", "state_input": _field(page, "state_input")})

    action = OperatorAction.objects.get()
    assert action.request["context"]["Execution"]["Name"] == failed.attempt.execution.name
    sent = json.loads(action.result["request"]["body"])
    assert sent["run"] == failed.attempt.execution.name


def test_the_variables_assigned_before_the_attempt_are_sent_read_from_the_history(
    sync_sandbox: Sandbox, account: AwsAccount, team: Group, eager: None
) -> None:
    failed = failed_order(sync_sandbox, account, assign={"tenant": "acme", "limits": {"n": 3}})
    with_operator_role(account)
    operator = client_of(UserFactory.create(groups=[team], perms=[REPLAYER]))
    url = reverse("operations:replay", args=[failed.attempt.pk])
    page = operator.get(url).content.decode()
    assert "tenant" in page and "acme" in page

    operator.post(url, {"confirm": "on", "state_input": _field(page, "state_input")})

    action = OperatorAction.objects.get()
    assert action.request["variables"] == {"tenant": "acme", "limits": {"n": 3}}
    assert action.result["status"] == "FAILED"


def test_restored_takes_each_value_left_as_shown_from_awss_copy() -> None:
    redactor = default_redactor()
    original = {"apiToken": "tok-123456789", "order": {"id": 1, "password": "pw-secret-1"}}
    shown = redactor.value(original)
    edited = {**shown, "order": {**shown["order"], "id": 2}, "new": True}
    assert restored(edited, original, redactor) == {
        "apiToken": "tok-123456789",
        "order": {"id": 2, "password": "pw-secret-1"},
        "new": True,
    }
    assert restored({"apiToken": "typed"}, original, redactor) == {"apiToken": "typed"}


def _field(page: str, name: str) -> str:
    """The text of a textarea of the form, unescaped as a browser would send it."""
    import html
    import re

    match = re.search(rf'<textarea name="{name}"[^>]*>\n?(.*?)</textarea>', page, re.DOTALL)
    assert match, name
    return html.unescape(match.group(1))


def test_a_nested_state_is_found_and_an_odd_definition_is_no_error() -> None:
    from operations.replay import _find_state

    call = {"Type": "Task", "Resource": "arn:aws:states:::http:invoke"}
    nested = {
        "P": {"Type": "Parallel", "Branches": [{"States": {"Call": call}}]},
        "M": {"Type": "Map", "ItemProcessor": {"States": {"Inner": call}}},
    }
    assert _find_state(nested, "Call") == call
    assert _find_state(nested, "Inner") == call
    assert _find_state({"P": {"Branches": 7}, "Q": "x"}, "Call") is None
    assert _find_state(None, "Call") is None
