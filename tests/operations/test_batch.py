"""Redrive a failure group against the sandbox: the dry run's counts and reasons, the batch
(Celery, eager) within its quota share, its progress "N redriven · M succeeded", cancelling."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from connections.models import AwsAccount
from executions.models import Execution, FailureGroup
from executions.sync import sync_account_by_id, sync_one_execution
from operations import tasks
from operations.batch import run_batch
from operations.choices import ActionOutcome
from operations.models import OperatorAction, RedriveBatch
from sandbox.server import Sandbox
from tests.aws_sandbox import register
from tests.factories import (
    ExecutionFactory,
    FailureGroupFactory,
    GroupFactory,
    HttpAttemptFactory,
    StateMachineFactory,
    UserFactory,
)
from tests.operations.test_redrive import REDRIVER, with_operator_role
from tests.sandbox.support import Aws, http_task, single_state, unique

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def team() -> Group:
    return GroupFactory.create(name=unique("operators"))


def client_of(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_a_group_is_redriven_in_a_batch_through_to_succeeded(
    sync_sandbox: Sandbox, team: Group, eager: None
) -> None:
    aws = Aws(sync_sandbox.endpoint_url, sync_sandbox.region)
    account = register(sync_sandbox, name=unique("batch"))
    account.groups.add(team)
    # One URL for both (one group): the first two calls fail, the redrives' calls succeed.
    key = unique("group")
    call: dict[str, Any] = {
        "ApiEndpoint": f"{sync_sandbox.partner_url}/sequence?key={key}&statuses=500,500,200,200",
        "Method": "GET",
    }
    # Its own connection, so its group is its own: the sandbox is the session's, and other
    # suites' 500s from /sequence would otherwise join the group (and the dry run's count).
    basic = {"BasicAuthParameters": {"Username": "u", "Password": unique("p")}}
    call["Authentication"] = {"ConnectionArn": aws.connection(auth=basic)}
    machine = aws.state_machine(single_state(http_task(call)))
    arns = []
    for _ in range(2):
        arn = aws.start(machine)
        assert aws.wait(arn).status == "FAILED"
        arns.append(arn)
    sync_account_by_id(account.pk, trigger="test")
    executions = list(Execution.objects.filter(arn__in=arns))
    group = FailureGroup.objects.get(attempts__execution=executions[0])
    assert FailureGroup.objects.get(attempts__execution=executions[1]) == group
    # A third member of the group, closed 15 days ago: not eligible, and said why.
    old = ExecutionFactory.create(
        state_machine=executions[0].state_machine,
        stop_date=timezone.now() - timedelta(days=15),
        start_date=timezone.now() - timedelta(days=15, minutes=1),
    )
    HttpAttemptFactory.create(execution=old, failure_group=group)

    url = reverse("operations:group_redrive", args=[group.pk])
    viewer = client_of(UserFactory.create(groups=[team]))
    assert "data-group-redrive" not in viewer.get(group.get_absolute_url()).content.decode()
    assert viewer.get(url).status_code == 403
    operator = client_of(UserFactory.create(groups=[team], perms=[REDRIVER]))
    assert "data-group-redrive" in operator.get(group.get_absolute_url()).content.decode()
    page = operator.get(url).content.decode()
    assert "data-no-operator-role" in page
    assert operator.post(url, {"confirm": "on"}).status_code == 400
    with_operator_role(account)
    page = operator.get(url).content.decode()
    assert "<strong data-eligible>2</strong> of 3" in page
    assert "closed more than 14 days ago" in page

    response = operator.post(url, {"confirm": "on"})
    assert response.status_code == 302
    batch = RedriveBatch.objects.get()
    assert response["Location"] == batch.get_absolute_url()
    rows = list(batch.actions.order_by("id"))
    assert [r.outcome for r in rows] == ["succeeded", "succeeded"]
    assert {r.execution_id for r in rows} == {e.pk for e in executions}
    assert len({r.client_token for r in rows}) == 2 and all(r.aws_request_id for r in rows)
    assert batch.finished_at is not None
    for execution in executions:
        assert aws.wait(execution.arn).status == "SUCCEEDED"
        sync_one_execution(execution.pk)
    page = operator.get(batch.get_absolute_url()).content.decode()
    assert "<span data-redriven>2</span> redriven · <span data-succeeded>2</span> succeeded" in page
    assert 'data-polling="true"' not in page
    # Run again (a redelivery): nothing is open, nothing is redriven twice.
    assert run_batch(batch.pk) == []
    for execution in executions:
        assert aws.sfn.describe_execution(executionArn=execution.arn)["redriveCount"] == 1


def test_a_cancelled_batch_redrives_nothing_more(
    team: Group, monkeypatch: pytest.MonkeyPatch
) -> None:
    queued: list[int] = []
    monkeypatch.setattr(tasks.run_redrive_batch, "delay", queued.append)
    account: AwsAccount = StateMachineFactory.create().account
    account.groups.add(team)
    with_operator_role(account)
    group = FailureGroupFactory.create(account=account)
    machine = StateMachineFactory.create(account=account)
    for _ in range(2):
        HttpAttemptFactory.create(
            execution=ExecutionFactory.create(state_machine=machine), failure_group=group
        )
    user = UserFactory.create(groups=[team], perms=[REDRIVER])
    operator = client_of(user)
    response = operator.post(
        reverse("operations:group_redrive", args=[group.pk]), {"confirm": "on"}
    )
    batch = RedriveBatch.objects.get()
    assert response["Location"] == batch.get_absolute_url() and queued == [batch.pk]
    assert 'data-polling="true"' in operator.get(batch.get_absolute_url()).content.decode()

    cancel = reverse("operations:batch_cancel", args=[batch.pk])
    teammate = client_of(UserFactory.create(groups=[team], perms=[REDRIVER]))
    assert teammate.post(cancel).status_code == 404  # not theirs
    assert client_of(UserFactory.create(groups=[team])).post(cancel).status_code == 404
    assert operator.get(cancel).status_code == 405
    assert operator.post(cancel).status_code == 302
    # The queued task then runs: no AWS call (the account's sandbox does not exist).
    assert run_batch(batch.pk) == []
    assert set(OperatorAction.objects.values_list("outcome", flat=True)) == {
        ActionOutcome.CANCELLED
    }
    page = operator.get(batch.get_absolute_url()).content.decode()
    assert "2 cancelled" in page and 'data-polling="true"' not in page


def test_a_batch_left_by_a_killed_worker_is_resumed_and_redrives_each_once(
    sync_sandbox: Sandbox, team: Group, eager: None
) -> None:
    aws = Aws(sync_sandbox.endpoint_url, sync_sandbox.region)
    account = register(sync_sandbox, name=unique("resume"))
    with_operator_role(account)
    arns = []
    for _ in range(3):
        call = {
            "ApiEndpoint": f"{sync_sandbox.partner_url}/sequence?key={unique('k')}&statuses=500,200",
            "Method": "GET",
        }
        arn = aws.start(aws.state_machine(single_state(http_task(call))))
        assert aws.wait(arn).status == "FAILED"
        arns.append(arn)
    sync_account_by_id(account.pk, trigger="test")
    long_ago = timezone.now() - timedelta(hours=1)
    user = UserFactory.create(groups=[team], perms=[REDRIVER])
    batch = RedriveBatch.objects.create(account=account, username=user.username, user=user)
    RedriveBatch.objects.filter(pk=batch.pk).update(heartbeat_at=long_ago)
    # The killed worker had claimed the first row (AWS may or may not have seen the call), the
    # second was still waiting, and a live task holds the third.
    states = [
        (ActionOutcome.RUNNING, long_ago),
        (ActionOutcome.PENDING, None),
        (ActionOutcome.RUNNING, timezone.now()),
    ]
    for arn, (outcome, claimed_at) in zip(arns, states, strict=True):
        OperatorAction.objects.create(
            kind="redrive",
            user=user,
            username=user.username,
            account=account,
            execution=Execution.objects.get(arn=arn),
            target=arn,
            client_token=unique("token"),
            outcome=outcome,
            claimed_at=claimed_at,
            batch=batch,
        )
    fresh = RedriveBatch.objects.create(account=account, username=user.username)
    RedriveBatch.objects.filter(pk=fresh.pk).update(heartbeat_at=timezone.now())

    assert tasks.resume_redrive_batches.apply().get() == [batch.pk]
    outcomes = list(batch.actions.order_by("id").values_list("outcome", flat=True))
    assert outcomes == ["succeeded", "succeeded", "running"]
    counts = [aws.sfn.describe_execution(executionArn=arn)["redriveCount"] for arn in arns]
    assert counts == [1, 1, 0]
    batch.refresh_from_db()
    assert batch.finished_at is None  # the live task's row is still open
    # Resumed just now: the next tick leaves it alone, and so is the live batch.
    assert tasks.resume_redrive_batches.apply().get() == []
