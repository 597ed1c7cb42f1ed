"""The failing-executions list (the default of /executions/): one row per execution with its
failing attempts collapsed, the total that matches, keyset pages, a fixed number of queries."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from connections.models import AwsAccount
from executions.execution_list import total_of
from executions.models import HttpAttempt
from tests.factories import (
    ConnectionFactory,
    ExecutionFactory,
    HttpAttemptFactory,
    StateMachineFactory,
)

pytestmark = pytest.mark.django_db
LIST = reverse("executions:list")


def _execution(account: AwsAccount, minutes_ago: int, **attempt: Any) -> Any:
    machine = attempt.pop("state_machine", None) or StateMachineFactory.create(account=account)
    start = timezone.now() - timedelta(minutes=minutes_ago)
    execution = ExecutionFactory.create(
        state_machine=machine,
        start_date=start,
        stop_date=start + timedelta(seconds=12),
        has_failed_attempt=True,
    )
    return execution


def test_executions_are_listed_with_their_attempts_collapsed(
    viewer_client: Client, account: AwsAccount, other_account: AwsAccount
) -> None:
    conn = ConnectionFactory.create(account=account, name="orders")
    ex = _execution(account, 5)
    t = ex.start_date
    for i, (state, status, error) in enumerate(
        [("Charge", 503, "States.Http.StatusCode.503")] * 3 + [("Notify", None, "States.Timeout")]
    ):
        HttpAttemptFactory.create(
            execution=ex,
            state_name=state,
            status_code=status,
            error=error,
            category="server_error" if status else "timeout",
            connection=conn,
            occurred_at=t + timedelta(seconds=i),
            key_event_id=10 + i,
        )
    HttpAttemptFactory.create(execution=ex, succeeded=True, key_event_id=99, occurred_at=t)
    _execution(other_account, 1)
    quiet = ExecutionFactory.create(state_machine=ex.state_machine, has_failed_attempt=False)
    response = viewer_client.get(LIST)
    assert response.status_code == 200
    rows = response.context["page"].rows
    assert [r.execution.pk for r in rows] == [ex.pk]
    row = rows[0]
    assert row.attempts == 4
    assert [(s.name, s.category, s.attempts) for s in row.states] == [
        ("Charge", "server_error", 3),
        ("Notify", "timeout", 1),
    ]
    assert (row.last_error, row.last_status) == ("States.Timeout", None)
    assert row.connections == [f"orders ({account.account_id}, {conn.region})"]
    html = response.content.decode()
    assert "<strong>1</strong> failing execution matches." in html
    assert "12.0 s" in html and "×3" in html
    assert quiet.name not in html
    assert 'href="?view=attempts"' in html


def test_attempt_filters_select_executions_and_the_toggle_keeps_them(
    viewer_client: Client, account: AwsAccount
) -> None:
    conn = ConnectionFactory.create(account=account)
    hit, miss = _execution(account, 3), _execution(account, 2)
    HttpAttemptFactory.create(execution=hit, connection=conn, category="auth", status_code=401)
    HttpAttemptFactory.create(execution=miss, category="server_error")
    response = viewer_client.get(LIST, {"connection": conn.arn})
    assert [r.execution.pk for r in response.context["page"].rows] == [hit.pk]
    assert response.context["total"].value == 1
    html = response.content.decode()
    assert "view=attempts" in html and "connection=arn" in html
    attempts = viewer_client.get(LIST, {"connection": conn.arn, "view": "attempts"})
    assert [a.execution_id for a in attempts.context["page"].rows] == [hit.pk]
    assert "<strong>1</strong> failing attempt matches." in attempts.content.decode()
    assert viewer_client.get(LIST, {"view": "bogus"}).status_code == 400


def test_execution_pages_are_keyset_paginated(viewer_client: Client, account: AwsAccount) -> None:
    machine = StateMachineFactory.create(account=account)
    made = []
    for i in range(55):
        ex = _execution(account, i + 1, state_machine=machine)
        HttpAttemptFactory.create(execution=ex)
        made.append(ex.pk)
    first = viewer_client.get(LIST)
    page = first.context["page"]
    assert len(page.rows) == 50 and "after=" in page.next_query
    assert first.context["total"].value == 55
    second = viewer_client.get(f"{LIST}?{page.next_query}").context["page"]
    got = [r.execution.pk for r in page.rows + second.rows]
    assert got == made and second.next_query == ""


@pytest.mark.parametrize("n", [2, 40])
def test_the_executions_page_runs_a_fixed_number_of_queries(
    viewer_client: Client, account: AwsAccount, django_assert_num_queries: Any, n: int
) -> None:
    conn = ConnectionFactory.create(account=account)
    for i in range(n):
        ex = _execution(account, i + 1)
        HttpAttemptFactory.create(execution=ex, connection=conn, key_event_id=1)
        HttpAttemptFactory.create(execution=ex, connection=conn, key_event_id=2)
    # session, user, accounts, state machines, endpoints, connections, executions, attempts
    # per state, newest failure per execution, the planner's estimate, the capped total, and
    # the user's own and group permissions (whether to offer "Redrive these…")
    with django_assert_num_queries(13):
        viewer_client.get(LIST, {"connection": conn.arn})


def test_past_the_threshold_the_total_is_the_planners_estimate_and_says_so(
    viewer_client: Client, account: AwsAccount, monkeypatch: pytest.MonkeyPatch
) -> None:
    ex = _execution(account, 1)
    for i in range(12):
        HttpAttemptFactory.create(execution=ex, key_event_id=i + 1)
    qs = HttpAttempt.objects.failing().filter(account=account)
    exact = total_of(qs, limit=100)
    assert (exact.value, exact.estimated) == (12, False)
    estimated = total_of(qs, limit=5)
    assert estimated.estimated and estimated.value > 5
    monkeypatch.setattr("executions.execution_list.EXACT_COUNT_LIMIT", 5)
    html = viewer_client.get(LIST, {"view": "attempts"}).content.decode()
    assert "<strong>about " in html and "the database planner's estimate" in html


def test_the_executions_view_says_how_it_is_sorted(
    viewer_client: Client, account: AwsAccount
) -> None:
    older, newer = _execution(account, 9), _execution(account, 1)
    for ex in (older, newer):
        HttpAttemptFactory.create(execution=ex)
    oldest = viewer_client.get(LIST, {"sort": "occurred_at"})
    assert [r.execution.pk for r in oldest.context["page"].rows] == [older.pk, newer.pk]
    assert "attempts collapsed, oldest first." in oldest.content.decode()
    slowest = viewer_client.get(LIST, {"sort": "-duration"}).content.decode()
    assert "newest first (executions sort by start time only)." in slowest
