"""Rates, not just counts: failure rate and p50/p95 per bucket, and the overview's "what changed".

Real PostgreSQL: the percentiles are PERCENTILE_CONT, checked against a Python computation.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.db import connection as db_connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from connections.models import AwsAccount, Endpoint
from dashboard.trends import trend_rows
from executions.charts import choose_bucketing, floor_to
from executions.models import Execution, HttpAttempt
from executions.trend_charts import BucketStats
from tests.factories import (
    ConnectionFactory,
    EndpointFactory,
    ExecutionFactory,
    FailureGroupFactory,
    HttpAttemptFactory,
    StateMachineFactory,
)

pytestmark = pytest.mark.django_db
OVERVIEW = reverse("dashboard:overview")


def attempts(execution: Execution, endpoint: Endpoint, at: datetime, failed: int, ok: int) -> None:
    for i in range(failed + ok):
        HttpAttemptFactory.create(
            execution=execution,
            endpoint=endpoint,
            occurred_at=at + timedelta(seconds=i),
            succeeded=i >= failed,
        )


def percentile_cont(values: list[int], fraction: float) -> float:
    """PostgreSQL's PERCENTILE_CONT: linear interpolation between the closest ranks."""
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def test_endpoint_page_charts_failure_rate_and_percentiles_per_bucket(
    viewer_client: Client, account: AwsAccount
) -> None:
    assert db_connection.vendor == "postgresql"
    endpoint = EndpointFactory.create(account=account)
    execution = ExecutionFactory.create(state_machine=StateMachineFactory.create(account=account))
    hour = floor_to(timezone.now(), "hour")
    # bucket → (failed, succeeded, durations in ms)
    seeded = {
        hour - timedelta(hours=3): (2, 3, [120, 80, 400, 95, 310]),
        hour - timedelta(hours=5): (3, 0, [900, 1500, 30]),
        hour - timedelta(hours=8): (0, 4, [10, 20, 30, 2000]),
    }
    for start, (failed, _, durations) in seeded.items():
        for i, ms in enumerate(durations):
            HttpAttemptFactory.create(
                execution=execution,
                endpoint=endpoint,
                occurred_at=start + timedelta(minutes=10, seconds=i),
                succeeded=i >= failed,
                duration_ms=ms,
            )
    response = viewer_client.get(reverse("connections:endpoint", args=[endpoint.pk]))
    assert response.status_code == 200
    trends = response.context["trends"]
    by_title = {bar.title.split(": ")[0]: bar for bar in trends.rate_bars}
    assert len(trends.rate_bars) == 3
    for start, (failed, ok, _) in seeded.items():
        label = f"{start:%Y-%m-%d %H:%M}–{start + timedelta(hours=1):%H:%M} UTC"
        bar = by_title[label]
        assert bar.rate == pytest.approx(failed / (failed + ok))
        assert f"{failed} of {failed + ok} finished attempts failed" in bar.title
    points = {p.title.split(": ")[0]: p for p in trends.p50}
    rows = {row.start: row for row in _rows(endpoint)}
    for start, (_, _, durations) in seeded.items():
        assert rows[start].p50 == pytest.approx(percentile_cont(durations, 0.5))
        assert rows[start].p95 == pytest.approx(percentile_cont(durations, 0.95))
    assert len(points) == 3
    html = response.content.decode()
    # The tooltips carry the bucket's counts.
    assert re.search(r"<title>[^<]*: 2 of 5 finished attempts failed \(40\.0%\)</title>", html)
    assert "<title>Latency p50 and p95 per hour</title>" in html


def _rows(endpoint: Endpoint) -> list[BucketStats]:
    now = timezone.now()
    return trend_rows(
        HttpAttempt.objects.filter(endpoint_id=endpoint.pk),
        choose_bucketing(now - timedelta(hours=24), now),
    )


def test_connection_page_rate_counts_every_attempt_through_it(
    viewer_client: Client, account: AwsAccount
) -> None:
    conn = ConnectionFactory.create(account=account)
    other = ConnectionFactory.create(account=account)
    execution = ExecutionFactory.create(state_machine=StateMachineFactory.create(account=account))
    at = floor_to(timezone.now(), "hour") - timedelta(hours=2, minutes=-5)
    for i in range(4):
        HttpAttemptFactory.create(
            execution=execution, connection=conn, occurred_at=at, succeeded=i > 0
        )
    HttpAttemptFactory.create(execution=execution, connection=other, occurred_at=at)
    trends = viewer_client.get(reverse("connections:detail", args=[conn.pk])).context["trends"]
    assert [(b.rate, trends.total, trends.failed) for b in trends.rate_bars] == [(0.25, 4, 1)]


def cut_off(execution: Execution, endpoint: Endpoint, at: datetime, n: int, **extra: Any) -> None:
    """`n` calls an abort cut off: no answer, and the time until the cut (long: a stop)."""
    for i in range(n):
        HttpAttemptFactory.create(
            execution=execution,
            endpoint=endpoint,
            occurred_at=at + timedelta(seconds=30 + i),
            outcome="aborted",
            status_code=None,
            error="",
            cause="",
            category="",
            subcategory="aborted",
            closed_event_type="TaskStateAborted",
            duration_ms=60_000,
            **extra,
        )


def test_aborted_calls_are_in_no_rate_or_latency_of_the_endpoint_page_and_are_counted_beside(
    viewer_client: Client, account: AwsAccount
) -> None:
    conn = ConnectionFactory.create(account=account)
    endpoint = EndpointFactory.create(account=account)
    execution = ExecutionFactory.create(state_machine=StateMachineFactory.create(account=account))
    at = floor_to(timezone.now(), "hour") - timedelta(hours=2, minutes=-5)
    for ok, ms in ((False, 100), (True, 200)):
        HttpAttemptFactory.create(
            execution=execution,
            endpoint=endpoint,
            connection=conn,
            occurred_at=at,
            succeeded=ok,
            duration_ms=ms,
        )
    cut_off(execution, endpoint, at, 2, connection=conn)
    HttpAttemptFactory.create(  # still open when the history was read
        execution=execution, endpoint=endpoint, connection=conn, occurred_at=at,
        outcome="in_progress",
        status_code=None, error="", category="", duration_ms=None,
    )  # fmt: skip
    response = viewer_client.get(reverse("connections:endpoint", args=[endpoint.pk]))
    context = response.context
    assert (context["total"], context["failures"], context["aborted"]) == (2, 1, 2)
    assert context["failure_rate"] == pytest.approx(50.0)
    assert context["latency"]["p95"] <= 200  # not the minute until the cut
    trends = context["trends"]
    assert [b.rate for b in trends.rate_bars] == [0.5]
    assert (trends.total, trends.failed, trends.aborted) == (2, 1, 2)
    (row,) = _rows(endpoint)
    assert row.p95 is not None and row.p95 <= 200
    html = response.content.decode()
    assert "1 of 2 finished attempts failed (50.0%); 2 aborted, not counted" in html
    assert "2 aborted</span>" in html
    api = viewer_client.get(f"/api/v1/endpoints/{endpoint.pk}/").json()
    assert (api["total"], api["failures"], api["aborted"]) == (2, 1, 2)
    assert api["latency_ms"]["p95"] <= 200
    listed = viewer_client.get(reverse("connections:detail", args=[conn.pk]))
    (row_of_endpoint,) = listed.context["endpoints"]
    assert (row_of_endpoint["total"], row_of_endpoint["aborted"]) == (2, 2)


def test_aborted_calls_do_not_dilute_a_rising_endpoint_away(
    viewer_client: Client, account: AwsAccount
) -> None:
    now = timezone.now()
    current, previous = now - timedelta(hours=2), now - timedelta(hours=30)
    endpoint = EndpointFactory.create(account=account, url_template="https://a.example/cut")
    execution = ExecutionFactory.create(state_machine=StateMachineFactory.create(account=account))
    attempts(execution, endpoint, previous, 1, 19)  # 5 %
    attempts(execution, endpoint, current, 5, 15)  # 25 % of the calls that finished…
    cut_off(execution, endpoint, current, 20)  # …not 12.5 % of all attempts
    response = viewer_client.get(OVERVIEW)
    (rising,) = response.context["rising_endpoints"]
    assert (rising.endpoint_id, rising.total, rising.failed) == (endpoint.pk, 20, 5)


def test_overview_names_new_groups_and_rising_endpoints_not_steady_ones(
    viewer_client: Client, account: AwsAccount, django_assert_max_num_queries: Any
) -> None:
    now = timezone.now()
    current, previous = now - timedelta(hours=2), now - timedelta(hours=30)
    machine = StateMachineFactory.create(account=account)
    rising = EndpointFactory.create(account=account, url_template="https://a.example/rising")
    steady = EndpointFactory.create(account=account, url_template="https://a.example/steady")
    few = EndpointFactory.create(account=account, url_template="https://a.example/few-calls")
    for endpoint, before, after in [
        (rising, (1, 19), (10, 10)),  # 5% → 50%
        (steady, (10, 10), (10, 10)),  # 50% → 50%
        (few, (0, 0), (5, 0)),  # 100%, but only 5 calls
    ]:
        execution = ExecutionFactory.create(state_machine=machine)
        attempts(execution, endpoint, previous, *before)
        attempts(execution, endpoint, current, *after)
    new = FailureGroupFactory.create(
        account=account, title="Fresh 502 from the ledger", first_seen_at=now - timedelta(hours=1)
    )
    FailureGroupFactory.create(
        account=account, title="Old 503 from orders", first_seen_at=now - timedelta(days=3)
    )
    # The overview's ten, new groups, rising endpoints (their candidates are the overview's
    # failing endpoints: no query of their own).
    with django_assert_max_num_queries(12):
        response = viewer_client.get(OVERVIEW)
    assert [g.pk for g in response.context["new_groups"]] == [new.pk]
    names = [e.endpoint_id for e in response.context["rising_endpoints"]]
    assert names == [rising.pk]
    html = response.content.decode()
    section = html[html.index('id="h-changed"') : html.index('id="h-conns"')]
    assert "Fresh 502 from the ledger" in section
    assert "Old 503 from orders" not in section
    assert reverse("connections:endpoint", args=[rising.pk]) in section
    assert "a.example/rising" in section
    assert "a.example/steady" not in section and "a.example/few-calls" not in section
    assert "at least 10 points" in section and "at least 20 calls" in section
