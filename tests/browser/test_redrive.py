"""A bulk redrive from a failure group in Chromium, against the sandbox: the group page's
"Redrive…", the dry run, the confirmation, then the batch page and the group page updating by
HTMX polling from "N redriven · still running" to "M succeeded" once the executions are read on.

The partner answers 500 to the first two calls (the two executions fail: one group) and 200
after (the "fix"); the state machine waits a few seconds after the call, so the redriven
executions are still running when the batch has redriven them and the pages must poll."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.urls import reverse

from dashboard.celery import app as celery_app
from executions.models import Execution, FailureGroup
from executions.sync import sync_account_by_id
from sandbox.server import Sandbox
from tests.aws_sandbox import register
from tests.conftest import log_in
from tests.factories import GroupFactory, UserFactory
from tests.operations.test_redrive import REDRIVER, with_operator_role
from tests.sandbox.support import Aws, http_task, unique

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
# Long enough that a loaded machine still finds both running when the batch page first draws.
WAIT_AFTER_CALL_SECONDS = 8


@pytest.fixture
def eager() -> Iterator[None]:
    """The batch runs in the live server's request (this test is about the pages)."""
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


def test_a_failure_group_is_redriven_from_its_page_through_to_succeeded(
    page: Any, live_server: Any, sync_sandbox: Sandbox, eager: None
) -> None:
    aws = Aws(sync_sandbox.endpoint_url, sync_sandbox.region)
    team = GroupFactory.create(name=unique("operators"))
    account = register(sync_sandbox, name=unique("browser-redrive"))
    account.groups.add(team)
    with_operator_role(account)
    url = f"{sync_sandbox.partner_url}/sequence?key={unique('fix')}&statuses=500,500,200"
    # Its own connection, so its group is its own: the sandbox is the session's, and other
    # suites' 500s from /sequence would otherwise join the group (and the dry run's count).
    basic = {"BasicAuthParameters": {"Username": "u", "Password": unique("p")}}
    own = {"ConnectionArn": aws.connection(auth=basic)}
    call = http_task({"ApiEndpoint": url, "Method": "GET", "Authentication": own})
    del call["End"]
    definition = {
        "StartAt": "Call",
        "States": {
            "Call": {**call, "Next": "Settle"},
            "Settle": {"Type": "Wait", "Seconds": WAIT_AFTER_CALL_SECONDS, "End": True},
        },
    }
    machine = aws.state_machine(definition)
    arns = [aws.start(machine) for _ in range(2)]
    assert [aws.wait(arn).status for arn in arns] == ["FAILED", "FAILED"]
    sync_account_by_id(account.pk, trigger="test")
    group = FailureGroup.objects.get(attempts__execution__arn=arns[0])
    assert FailureGroup.objects.get(attempts__execution__arn=arns[1]) == group

    log_in(page, live_server, UserFactory.create(groups=[team], perms=[REDRIVER]))
    page.goto(group.get_absolute_url())
    page.click("[data-group-redrive]")
    page.wait_for_url(f"**{reverse('operations:group_redrive', args=[group.pk])}")
    assert page.locator("[data-eligible]").inner_text() == "2"
    page.check("input[name=confirm]")
    page.click("button:has-text('Redrive 2')")
    page.wait_for_url("**/operations/batches/*/")
    progress = page.locator("#batch [data-progress]")
    assert progress.locator("[data-redriven]").inner_text() == "2"
    # Read right after RedriveExecution: still running (the Wait state), so the page polls.
    assert progress.locator("[data-running]").inner_text() == "2"
    assert page.locator("#batch[data-polling=true]").count() == 1

    for arn in arns:
        assert aws.wait(arn, timeout=30).status == "SUCCEEDED"
    sync_account_by_id(account.pk, trigger="test")  # the beat's next sync reads them on
    assert set(Execution.objects.filter(arn__in=arns).values_list("status", flat=True)) == {
        "SUCCEEDED"
    }
    # No reload: the polling brings the figures, then stops.
    page.wait_for_selector("#batch:not([data-polling]) [data-succeeded]:text-is('2')")
    assert "2 redriven · 2 succeeded · 0 failed again" in progress.inner_text()

    page.goto(group.get_absolute_url())
    figures = page.locator("#group-redrive [data-progress]")
    figures.wait_for()
    assert "2 redriven · 2 succeeded · 0 failed again" in figures.inner_text()
    assert page.locator("#group-redrive[data-polling]").count() == 0
    for arn in arns:
        assert aws.sfn.describe_execution(executionArn=arn)["redriveCount"] == 1
    assert page.errors == []
