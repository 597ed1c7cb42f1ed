"""Redrive one execution against the sandbox's moto server over HTTP: the dry run, the
confirmed POST, the task (Celery, eager) with its clientToken, the audit row and the re-sync."""

from __future__ import annotations

import datetime
import logging
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.db import connection
from django.test import Client
from django.urls import reverse

from connections.choices import OperatorMode
from connections.models import AwsAccount
from executions.models import Execution
from executions.sync import sync_account_by_id, sync_one_execution
from operations.choices import ActionOutcome
from operations.models import OperatorAction
from operations.tasks import redrive_execution
from sandbox.server import Sandbox
from tests.aws_sandbox import register
from tests.factories import ExecutionFactory, GroupFactory, StateMachineFactory, UserFactory
from tests.sandbox.support import Aws, http_task, single_state, unique

pytestmark = pytest.mark.django_db(transaction=True)
REDRIVER = "operations.redrive_execution"
OPERATOR_CANARY = "operator-canary-9f8e7d6c5b4a"


@pytest.fixture
def aws(sync_sandbox: Sandbox) -> Aws:
    return Aws(sync_sandbox.endpoint_url, sync_sandbox.region)


@pytest.fixture
def team() -> Group:
    return GroupFactory.create(name=unique("operators"))


@pytest.fixture
def account(sync_sandbox: Sandbox, team: Group) -> AwsAccount:
    account = register(sync_sandbox, name=unique("ops"))
    account.groups.add(team)
    return account


def with_operator_role(account: AwsAccount) -> None:
    account.operator_auth_mode = OperatorMode.ACCESS_KEYS
    account.operator_access_key_id = "operator-key"
    account.operator_secret_access_key = OPERATOR_CANARY
    account.save()


def client_of(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def failed_once(aws: Aws, partner_url: str) -> str:
    """A Standard execution whose call fails once and then succeeds: redriving fixes it."""
    key = unique("redrive")
    call = {"ApiEndpoint": f"{partner_url}/sequence?key={key}&statuses=500,200", "Method": "GET"}
    arn = aws.start(aws.state_machine(single_state(http_task(call))))
    assert aws.wait(arn).status == "FAILED"
    return arn


def stored(account: AwsAccount, arn: str) -> Execution:
    sync_account_by_id(account.pk, trigger="test")
    return Execution.objects.get(arn=arn)


def test_a_confirmed_redrive_is_audited_and_the_execution_read_again(
    aws: Aws,
    sync_sandbox: Sandbox,
    account: AwsAccount,
    team: Group,
    eager: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    execution = stored(account, failed_once(aws, sync_sandbox.partner_url))
    assert execution.status == "FAILED"
    url = reverse("operations:redrive", args=[execution.pk])

    viewer = client_of(UserFactory.create(groups=[team]))
    assert viewer.get(url).status_code == 403
    assert "data-redrive" not in viewer.get(execution.get_absolute_url()).content.decode()
    user = UserFactory.create(groups=[team], perms=[REDRIVER])
    operator = client_of(user)
    assert "data-redrive" in operator.get(execution.get_absolute_url()).content.decode()

    # No operator role: the page says what to configure, and a POST redrives nothing.
    page = operator.get(url).content.decode()
    assert "data-no-operator-role" in page and "has no operator role" in page
    assert operator.post(url, {"confirm": "on"}).status_code == 400
    assert not OperatorAction.objects.exists()

    with_operator_role(account)
    page = operator.get(url).content.decode()
    assert 'data-dry-run="eligible"' in page and "REDRIVABLE" in page
    assert operator.post(url, {}).status_code == 400  # not confirmed
    response = operator.post(url, {"confirm": "on"})
    assert response.status_code == 302

    action = OperatorAction.objects.get()
    assert response["Location"] == action.get_absolute_url()
    assert (action.kind, action.outcome, action.username) == ("redrive", "succeeded", user.username)
    assert action.target == execution.arn and action.aws_request_id
    assert action.request == {"executionArn": execution.arn, "clientToken": action.client_token}
    assert len(action.client_token) == 32
    # Read again at once: AWS counts the redrive; the scheduled sync follows it to its end.
    execution.refresh_from_db()
    assert execution.redrive_count == 1
    assert aws.wait(execution.arn).status == "SUCCEEDED"
    sync_one_execution(execution.pk)
    execution.refresh_from_db()
    assert (execution.status, execution.redrive_count) == ("SUCCEEDED", 1)

    # A redelivered task finds its row finished: no second RedriveExecution.
    assert redrive_execution.apply(args=(action.pk,)).get() == "already finished"
    assert aws.sfn.describe_execution(executionArn=execution.arn)["redriveCount"] == 1

    # The audit: the actor sees it, another member of the team does not, an auditor does.
    assert execution.arn in operator.get(reverse("operations:audit")).content.decode()
    assert operator.get(action.get_absolute_url()).status_code == 200
    assert execution.arn not in viewer.get(reverse("operations:audit")).content.decode()
    assert viewer.get(action.get_absolute_url()).status_code == 404
    auditor = client_of(UserFactory.create(groups=[team], perms=["operations.view_operatoraction"]))
    assert execution.arn in auditor.get(reverse("operations:audit")).content.decode()

    # The operator's secret is in no audit row, page or log line.
    with connection.cursor() as cursor:
        cursor.execute("SELECT t::text FROM operations_operatoraction t")
        assert not any(OPERATOR_CANARY in row[0] for row in cursor.fetchall())
    assert OPERATOR_CANARY not in operator.get(action.get_absolute_url()).content.decode()
    assert OPERATOR_CANARY not in caplog.text


def test_a_redrive_aws_refuses_is_audited_as_refused_with_its_request_id(
    aws: Aws, sync_sandbox: Sandbox, account: AwsAccount, team: Group, eager: None
) -> None:
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    execution = stored(account, failed_once(aws, sync_sandbox.partner_url))
    with_operator_role(account)
    # Time travel in the sandbox (same process): the execution closed 15 days ago.
    parts = execution.arn.split(":")
    moto_execution: Any = stepfunctions_parser_backends[parts[4]][parts[3]].describe_execution(
        execution.arn
    )
    moto_execution.stop_date = moto_execution.stop_date - datetime.timedelta(days=15)
    operator = client_of(UserFactory.create(groups=[team], perms=[REDRIVER]))
    url = reverse("operations:redrive", args=[execution.pk])

    page = operator.get(url).content.decode()
    assert 'data-dry-run="not-eligible"' in page and "14 days" in page
    assert 'class="confirm"' not in page
    assert operator.post(url, {"confirm": "on"}).status_code == 302
    action = OperatorAction.objects.get()
    assert action.outcome == ActionOutcome.REFUSED
    assert "ExecutionNotRedrivable" in action.message and action.aws_request_id


def test_express_executions_are_not_eligible_without_asking_aws(
    account: AwsAccount, team: Group
) -> None:
    with_operator_role(account)
    machine = StateMachineFactory.create(account=account, type="EXPRESS")
    execution = ExecutionFactory.create(
        state_machine=machine,
        arn=f"arn:aws:states:us-east-1:123456789012:express:{machine.name}:x:y",
        status="FAILED",
    )
    operator = client_of(UserFactory.create(groups=[team], perms=[REDRIVER]))
    page = operator.get(reverse("operations:redrive", args=[execution.pk])).content.decode()
    assert 'data-dry-run="not-eligible"' in page and "Express" in page


def test_an_execution_outside_the_users_accounts_is_404_even_with_the_permission(
    account: AwsAccount, other_account: AwsAccount, team: Group
) -> None:
    hidden = ExecutionFactory.create(
        state_machine=StateMachineFactory.create(account=other_account)
    )
    operator = client_of(UserFactory.create(groups=[team], perms=[REDRIVER]))
    url = reverse("operations:redrive", args=[hidden.pk])
    assert operator.get(url).status_code == 404
    assert operator.post(url, {"confirm": "on"}).status_code == 404
