"""Map Runs in a real browser (`-m browser`): from a Distributed Map parent's page to a failing
child and back, under the Content-Security-Policy, with no console error."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from executions.models import MapRun
from tests.conftest import log_in
from tests.factories import (
    DemoData,
    ExecutionFactory,
    HttpAttemptFactory,
    UserFactory,
    build_demo_data,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

RUN = "arn:aws:states:us-east-1:123456789012:mapRun:orders/fan:5e1f"


@pytest.fixture
def member_page(page: Any, live_server: Any) -> Any:
    demo: DemoData = build_demo_data()
    member: User = UserFactory.create(username="member", groups=[demo.viewers])
    log_in(page, live_server, member)
    page.demo = demo
    return page


def test_a_parent_shows_its_map_run_verdict_and_links_to_a_failing_child_and_back(
    member_page: Any, live_server: Any
) -> None:
    page, demo = member_page, member_page.demo
    now = timezone.now()
    parent = ExecutionFactory.create(
        state_machine=demo.machine,
        name="nightly-batch",
        error="States.ExceedToleratedFailureThreshold",
    )
    run = MapRun.objects.create(
        account=demo.account, parent_execution=parent, arn=RUN, label="fan", map_state="FanOut",
        status="FAILED", error="States.ExceedToleratedFailureThreshold",
        started_at=now - timedelta(minutes=6), stopped_at=now,
    )  # fmt: skip
    prefix = RUN.replace(":mapRun:", ":execution:").rsplit(":", 1)[0]
    for i in range(3):
        child = ExecutionFactory.create(
            state_machine=demo.machine, name=f"child-{i}", arn=f"{prefix}:child-{i}",
            parent_execution=parent, map_run=run,
        )  # fmt: skip
        HttpAttemptFactory.create(execution=child, endpoint=demo.endpoints[0])

    page.goto(f"{live_server.url}{parent.get_absolute_url()}")
    section = page.locator("[data-map-run]")
    assert "3 of 3 child executions failed" in section.inner_text()
    assert (
        "the endpoint is the problem, not the items"
        in section.locator("[data-map-run-hint]").inner_text()
    )
    section.locator("details summary").click()
    section.get_by_role("link", name="child-1").click()
    page.wait_for_url(re.compile(r"/executions/\d+/$"))
    page.locator("[data-map-run-child]").get_by_role("link", name="fan").click()
    page.wait_for_url(re.compile(rf"/executions/{parent.pk}/#map-run-{run.pk}$"))
    assert page.errors == []
