"""Pages say only what is true: no "No response recorded" beside a status code, connections of
the same name told apart, the timeline's last label inside the chart, no stray "since in" or
"body: ;"."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from django.template.loader import render_to_string
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from connections.models import AwsAccount
from executions import charts
from executions.presenting import injected_parameters
from tests.factories import (
    AwsAccountFactory,
    ConnectionFactory,
    ExecutionFactory,
    HttpAttemptFactory,
    StateMachineFactory,
)

pytestmark = pytest.mark.django_db


def test_an_attempt_with_a_status_never_says_no_response_was_recorded(
    viewer_client: Client, account: AwsAccount
) -> None:
    execution = ExecutionFactory.create(state_machine=StateMachineFactory.create(account=account))
    start = execution.start_date
    HttpAttemptFactory.create(
        execution=execution,
        status_code=400,
        response_headers={},
        response_body="",
        occurred_at=start,
        key_event_id=5,
    )
    HttpAttemptFactory.create(
        execution=execution,
        status_code=None,
        error="States.Http.Socket",
        response_headers={},
        response_body="",
        occurred_at=start + timedelta(seconds=1),
        key_event_id=9,
    )
    html = viewer_client.get(reverse("executions:detail", args=[execution.pk])).content.decode()
    with_status, without = html.split('<article class="attempt card', 2)[1:]
    assert "No response recorded" not in with_status
    assert "Status 400 answered; no response headers or body were recorded." in with_status
    assert "No response recorded (the call failed before or without one)." in without


def test_connections_of_one_name_are_told_apart_by_account_and_region(
    client: Client, django_user_model: Any
) -> None:
    admin = django_user_model.objects.create_superuser("root", "r@example.com", "pw")
    client.force_login(admin)
    one = ConnectionFactory.create(
        name="orders", account=AwsAccountFactory.create(account_id="111111111111")
    )
    two = ConnectionFactory.create(
        name="orders",
        account=AwsAccountFactory.create(account_id="222222222222", regions=["us-east-1"]),
    )
    for conn in (one, two):
        HttpAttemptFactory.create(
            execution__state_machine__account=conn.account,
            connection=conn,
            occurred_at=timezone.now() - timedelta(minutes=5),
        )
    pages = [
        reverse("executions:list"),
        reverse("dashboard:overview"),
        reverse("connections:detail", args=[one.pk]),
    ]
    listed = client.get(pages[0]).content.decode()
    assert f"orders ({one.account.account_id}, {one.region})" in listed
    assert f"orders ({two.account.account_id}, {two.region})" in listed
    overview = client.get(pages[1]).content.decode()
    assert f"orders ({two.account.account_id}, {two.region})" in overview
    detail = client.get(pages[2]).content.decode()
    assert f"{one.account.account_id} · {one.region}</span></h1>" in detail


def test_the_last_timeline_label_ends_inside_the_chart() -> None:
    t0 = timezone.now()
    lanes = charts.attempt_lanes(
        [("Call #1", t0, t0 + timedelta(seconds=3), "#fff", ""), ("Call #2", t0, None, "#fff", "")]
    )
    last = lanes.ticks[-1]
    assert last.position <= lanes.width and last.anchor == "end"
    assert {t.anchor for t in lanes.ticks[:-1]} == {"middle"}


def test_no_stray_body_or_since_in() -> None:
    assert injected_parameters({"headers": ["x-api-key"], "query": [], "body": []}) == [
        ("headers", ["x-api-key"])
    ]
    assert injected_parameters({"body": [], "secret": []}) == []
    assert injected_parameters("junk") == []
    episode = SimpleNamespace(
        ongoing=True,
        trigger=None,
        recorded=True,
        deauthorization=SimpleNamespace(started_at=timezone.now(), deleted=False),
        started_at=timezone.now(),
        failures=3,
        machines=2,
        accounts=["a"],
        ended_at=None,
        last_failure_at=None,
    )
    html = render_to_string(
        "connections/partials/cascade.html",
        {"cascade": SimpleNamespace(episodes=[episode]), "connection": SimpleNamespace()},
    )
    assert "since in" not in html
    assert "3 failures since then, in 2 state machines" in " ".join(html.split())


def test_the_connection_page_lists_only_kinds_that_have_names(
    viewer_client: Client, account: AwsAccount
) -> None:
    conn = ConnectionFactory.create(
        account=account,
        invocation_parameter_names={
            "headers": ["x-api-key"],
            "query": [],
            "body": [],
            "secret": [],
        },
    )
    html = viewer_client.get(reverse("connections:detail", args=[conn.pk])).content.decode()
    injected = html.split("<dt>Injected parameters</dt><dd>", 1)[1].split("<span", 1)[0]
    assert injected.strip() == "headers: <code>x-api-key</code>"
