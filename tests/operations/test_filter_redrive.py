"""Redrive the failing executions of a filter (the executions page's query string) against the
sandbox: the dry run's reasons, one account a batch, the confirmed batch recording its filter,
and the figures "N redriven · M succeeded" on the batch and on the group page."""

from __future__ import annotations

import re
import time
from datetime import timedelta
from html import unescape
from urllib.parse import parse_qsl, urlencode

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from executions.choices import GroupStatus, StateMachineType
from executions.models import Execution
from executions.sync import sync_account_by_id, sync_one_execution
from operations.choices import ActionOutcome
from operations.models import OperatorAction, RedriveBatch
from sandbox.server import Sandbox
from tests.aws_sandbox import register
from tests.factories import (
    AwsAccountFactory,
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


def client_of(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_executions_of_a_filter_are_redriven_in_a_batch_that_records_it(
    sync_sandbox: Sandbox, eager: None
) -> None:
    team: Group = GroupFactory.create(name=unique("operators"))
    # The sandbox is the session's: the sync registers other tests' executions too, so the
    # filter also narrows to failures since this test began.
    now = timezone.now()
    begun = now.replace(microsecond=0) + timedelta(seconds=1)
    time.sleep((begun - now).total_seconds())  # the filter has whole seconds
    since = begun.strftime("%Y-%m-%dT%H:%M:%S")
    aws = Aws(sync_sandbox.endpoint_url, sync_sandbox.region)
    account = register(sync_sandbox, name=unique("filter"))
    account.groups.add(team)
    arns = []
    for _ in range(3):
        url = f"{sync_sandbox.partner_url}/sequence?key={unique('k')}&statuses=500,200"
        arn = aws.start(
            aws.state_machine(single_state(http_task({"ApiEndpoint": url, "Method": "GET"})))
        )
        assert aws.wait(arn).status == "FAILED"
        arns.append(arn)
    sync_account_by_id(account.pk, trigger="test")
    first, second, third = (Execution.objects.get(arn=arn) for arn in arns)
    # The third was redriven after its group was resolved; an Express one; one closed 15 days ago.
    resolved = FailureGroupFactory.create(
        account=account,
        status=GroupStatus.RESOLVED,
        status_changed_at=timezone.now() - timedelta(hours=1),
    )
    HttpAttemptFactory.create(
        execution=third, failure_group=resolved, key_event_id=10**6, occurred_at=timezone.now()
    )
    OperatorAction.objects.create(
        kind="redrive",
        username="earlier",
        account=account,
        execution=third,
        target=third.arn,
        client_token=unique("token"),
        outcome=ActionOutcome.SUCCEEDED,
    )
    express = StateMachineFactory.create(account=account, type=StateMachineType.EXPRESS)
    old = ExecutionFactory.create(
        state_machine=StateMachineFactory.create(account=account),
        start_date=timezone.now() - timedelta(days=15, minutes=1),
        stop_date=timezone.now() - timedelta(days=15),
    )
    # One AWS refused to redrive (NOT_REDRIVABLE, as the batch recorded its answer).
    refused = ExecutionFactory.create(state_machine=StateMachineFactory.create(account=account))
    OperatorAction.objects.create(
        kind="redrive",
        username="earlier",
        account=account,
        execution=refused,
        target=refused.arn,
        client_token=unique("token"),
        outcome=ActionOutcome.REFUSED,
        message="Execution failed before entering a state and cannot be redriven",
    )
    for execution in (ExecutionFactory.create(state_machine=express), old, refused):
        HttpAttemptFactory.create(execution=execution, occurred_at=timezone.now())
    # A second account the user sees: a filter over both cannot be one batch.
    elsewhere = AwsAccountFactory.create()
    elsewhere.groups.add(team)
    ExecutionFactory.create(state_machine=StateMachineFactory.create(account=elsewhere))

    viewer = client_of(UserFactory.create(groups=[team]))
    operator = client_of(UserFactory.create(groups=[team], perms=[REDRIVER]))
    filters = {"account": str(account.pk), "since": since}
    query = urlencode(filters)
    listing = reverse("executions:list") + f"?{query}"
    assert "data-filter-redrive" not in viewer.get(listing).content.decode()
    url = reverse("operations:filter_redrive")
    link = escape(f"{url}?{query}")
    assert f'href="{link}" data-filter-redrive' in operator.get(listing).content.decode()
    assert viewer.get(f"{url}?{query}").status_code == 403
    assert "data-several-accounts" in operator.get(url).content.decode()
    assert operator.post(url, {"confirm": "on"}).status_code == 400

    page = operator.get(f"{url}?{query}").content.decode()
    assert "data-no-operator-role" in page
    assert operator.post(f"{url}?{query}", {"confirm": "on"}).status_code == 400
    with_operator_role(account)
    page = operator.get(f"{url}?{query}").content.decode()
    assert "<strong data-eligible>2</strong> of 6" in page
    for reason in (
        "NOT_REDRIVABLE, AWS answered: Execution failed before entering a state and cannot be"
        " redriven",
        "Express (only Standard executions redrive)",
        "closed more than 14 days ago",
        "already redriven since the group was resolved",
    ):
        assert f"<span data-reason-count>1</span> not: {reason}" in page
    assert operator.post(f"{url}?{query}", {}).status_code == 400  # not confirmed
    assert not RedriveBatch.objects.exists()

    response = operator.post(f"{url}?{query}", {"confirm": "on"})
    assert response.status_code == 302
    batch = RedriveBatch.objects.get()
    assert response["Location"] == batch.get_absolute_url()
    assert batch.filters == filters and batch.group is None
    rows = list(batch.actions.order_by("id"))
    assert {r.execution_id for r in rows} == {first.pk, second.pk}
    assert [r.outcome for r in rows] == ["succeeded", "succeeded"]
    for execution in (first, second):
        assert aws.wait(execution.arn).status == "SUCCEEDED"
        sync_one_execution(execution.pk)
    page = operator.get(batch.get_absolute_url()).content.decode()
    assert "<span data-redriven>2</span> redriven · <span data-succeeded>2</span> succeeded" in page
    # Back to the filter it was started from (jsonb keeps the keys in an order of its own).
    back = re.search(r'href="([^"]+)" data-batch-filter', page)
    assert back is not None
    path, _, back_query = unescape(back.group(1)).partition("?")
    assert path == reverse("executions:list") and dict(parse_qsl(back_query)) == filters
    assert 'data-polling="true"' not in page
    assert aws.sfn.describe_execution(executionArn=third.arn)["redriveCount"] == 0


def test_the_group_page_shows_its_redrives_live_until_they_settle(eager: None) -> None:
    team: Group = GroupFactory.create(name=unique("viewers"))
    machine = StateMachineFactory.create()
    machine.account.groups.add(team)
    group = FailureGroupFactory.create(account=machine.account)
    executions = [ExecutionFactory.create(state_machine=machine) for _ in range(3)]
    for execution in executions:
        HttpAttemptFactory.create(execution=execution, failure_group=group)
    viewer = client_of(UserFactory.create(groups=[team]))
    progress = reverse("operations:group_progress", args=[group.pk])
    assert progress in viewer.get(group.get_absolute_url()).content.decode()
    assert "data-progress" not in viewer.get(progress).content.decode()

    batch = RedriveBatch.objects.create(account=machine.account, group=group, username="op")
    outcomes = [ActionOutcome.SUCCEEDED, ActionOutcome.SUCCEEDED, ActionOutcome.PENDING]
    for execution, outcome in zip(executions, outcomes, strict=True):
        OperatorAction.objects.create(
            kind="redrive",
            username="op",
            account=machine.account,
            execution=execution,
            target=execution.arn,
            client_token=unique("token"),
            outcome=outcome,
            batch=batch,
        )
    Execution.objects.filter(pk=executions[0].pk).update(status="RUNNING")
    page = viewer.get(progress).content.decode()
    assert "<span data-redriven>2</span> redriven · <span data-succeeded>0</span> succeeded" in page
    assert "1 still running" not in page and "<span data-running>1</span> still running" in page
    assert 'data-polling="true"' in page

    # The last row is redriven; the first execution succeeds, the second failed again.
    OperatorAction.objects.filter(execution=executions[2]).update(outcome=ActionOutcome.REFUSED)
    Execution.objects.filter(pk=executions[0].pk).update(status="SUCCEEDED")
    page = viewer.get(progress).content.decode()
    assert (
        "<span data-redriven>2</span> redriven · <span data-succeeded>1</span> succeeded"
        " · <span data-failed-again>1</span> failed again" in page
    )
    assert "1 refused by AWS" in page and 'data-polling="true"' not in page
    # A redrive of one of its executions outside any batch counts too (once per execution).
    OperatorAction.objects.create(
        kind="redrive",
        username="op",
        account=machine.account,
        execution=executions[0],
        target=executions[0].arn,
        client_token=unique("token"),
        outcome=ActionOutcome.SUCCEEDED,
    )
    assert "<span data-redriven>2</span> redriven" in viewer.get(progress).content.decode()
