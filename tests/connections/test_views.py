"""Connection and endpoint pages: timelines, de-authorized shading, latency, status mix."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from connections.choices import ConnectionState
from connections.models import AwsAccount, Connection, Endpoint
from executions.choices import Category
from tests.factories import (
    ConnectionFactory,
    ConnectionStateChangeFactory,
    EndpointFactory,
    ExecutionFactory,
    FailureGroupFactory,
    HttpAttemptFactory,
    StateMachineFactory,
)

pytestmark = pytest.mark.django_db


def calls(account: AwsAccount, n: int, **kwargs: Any) -> None:
    machine = StateMachineFactory.create(account=account)
    now = timezone.now()
    fixed_time = kwargs.pop("occurred_at", None)
    for i in range(n):
        HttpAttemptFactory.create(
            execution=ExecutionFactory.create(state_machine=machine),
            occurred_at=fixed_time or now - timedelta(minutes=11 * i + 1),
            **kwargs,
        )


@pytest.fixture
def conn(account: AwsAccount) -> Connection:
    return ConnectionFactory.create(account=account, name="crm")


@pytest.fixture
def endpoint(account: AwsAccount) -> Endpoint:
    return EndpointFactory.create(
        account=account, method="GET", url_template="https://crm.example/c/{id}"
    )


# --- Connection page --------------------------------------------------------------------------


def test_connection_timeline_has_bars_with_hover_counts(
    viewer_client: Client, account: AwsAccount, conn: Connection
) -> None:
    calls(account, 3, connection=conn, category=Category.AUTH)
    calls(account, 2, connection=conn, category=Category.SERVER_ERROR)
    calls(account, 4, connection=conn, succeeded=True)  # successes are not failures
    calls(account, 2)  # another connection's (none) failures
    response = viewer_client.get(reverse("connections:detail", args=[conn.pk]))
    assert response.status_code == 200
    chart = response.context["chart"]
    assert chart.total == 5
    html = response.content.decode()
    counts = [int(n) for n in re.findall(r'data-count="(\d+)"', html)]
    assert sum(counts) == 5
    titles = re.findall(r'<g class="bar" data-total="\d+"><title>([^<]*)</title>', html)
    per_category: dict[str, int] = {}
    for title in titles:  # "… UTC: 5 failures — 5xx 2, Authentication 3"
        for label, count in re.findall(r"([A-Za-z0-9 ]+) (\d+)", title.split(" — ")[1]):
            per_category[label.strip()] = per_category.get(label.strip(), 0) + int(count)
    assert per_category == {"Authentication": 3, "5xx": 2}


def test_deauthorized_periods_are_shaded_with_their_reason(
    viewer_client: Client, account: AwsAccount, conn: Connection
) -> None:
    now = timezone.now()
    ConnectionStateChangeFactory.create(
        connection=conn, state=ConnectionState.AUTHORIZED, changed_at=now - timedelta(days=2)
    )
    ConnectionStateChangeFactory.create(
        connection=conn,
        state=ConnectionState.DEAUTHORIZED,
        changed_at=now - timedelta(hours=10),
        reason="Endpoint returned 401",
    )
    ConnectionStateChangeFactory.create(
        connection=conn, state=ConnectionState.AUTHORIZED, changed_at=now - timedelta(hours=6)
    )
    ConnectionStateChangeFactory.create(
        connection=conn, state=ConnectionState.DEAUTHORIZED, changed_at=now - timedelta(hours=1)
    )
    response = viewer_client.get(reverse("connections:detail", args=[conn.pk]))
    bands = response.context["chart"].bands
    assert len(bands) == 2
    assert bands[0].title.startswith("DEAUTHORIZED from ")
    assert bands[0].title.endswith(": Endpoint returned 401")
    assert bands[1].title.endswith(" to now")
    html = response.content.decode()
    assert html.count('<rect class="band"') == 2
    assert "Connection not authorized" in html  # legend entry
    assert response.context["changes"][0].state == "DEAUTHORIZED"  # newest first


def test_connection_page_lists_endpoints_groups_and_recent_failures(
    viewer_client: Client, account: AwsAccount, conn: Connection, endpoint: Endpoint
) -> None:
    calls(account, 2, connection=conn, endpoint=endpoint)
    calls(account, 1, connection=conn, endpoint=endpoint, succeeded=True)
    FailureGroupFactory.create(account=account, connection=conn, title="401 from crm")
    response = viewer_client.get(reverse("connections:detail", args=[conn.pk]))
    assert response.context["endpoints"] == [
        {
            "endpoint_id": endpoint.pk,
            "endpoint__method": "GET",
            "endpoint__url_template": "https://crm.example/c/{id}",
            "total": 3,
            "failures": 2,
        }
    ]
    assert len(response.context["recent"]) == 2
    html = response.content.decode()
    assert "401 from crm" in html
    assert conn.arn in html


def test_connection_of_another_account_is_404(
    viewer_client: Client, other_account: AwsAccount
) -> None:
    other = ConnectionFactory.create(account=other_account)
    assert viewer_client.get(reverse("connections:detail", args=[other.pk])).status_code == 404


def test_connection_page_rejects_an_invalid_window(viewer_client: Client, conn: Connection) -> None:
    response = viewer_client.get(reverse("connections:detail", args=[conn.pk]), {"window": "1y"})
    assert response.status_code == 400


@pytest.mark.parametrize("n", [2, 50])
def test_connection_page_runs_a_fixed_number_of_queries(
    viewer_client: Client,
    account: AwsAccount,
    conn: Connection,
    endpoint: Endpoint,
    django_assert_num_queries: Any,
    n: int,
) -> None:
    calls(account, n, connection=conn, endpoint=endpoint)
    ConnectionStateChangeFactory.create(connection=conn)
    FailureGroupFactory.create(account=account, connection=conn)
    # session, user, connection, state changes, timeline, endpoints, groups, recent failures
    with django_assert_num_queries(8):
        viewer_client.get(reverse("connections:detail", args=[conn.pk]))


@pytest.mark.parametrize("n", [1, 20])
def test_connection_list_runs_a_fixed_number_of_queries(
    viewer_client: Client, account: AwsAccount, django_assert_num_queries: Any, n: int
) -> None:
    for _ in range(n):
        calls(account, 2, connection=ConnectionFactory.create(account=account))
    # session, user, account ids, connections, failure counts
    with django_assert_num_queries(5):
        viewer_client.get(reverse("connections:list"))


def test_connection_list_counts_failures_in_the_window(
    viewer_client: Client, account: AwsAccount, conn: Connection, other_account: AwsAccount
) -> None:
    quiet = ConnectionFactory.create(account=account, name="quiet")
    ConnectionFactory.create(account=other_account, name="theirs")
    calls(account, 3, connection=conn)
    calls(account, 1, connection=conn, occurred_at=timezone.now() - timedelta(days=3))
    response = viewer_client.get(reverse("connections:list"))
    rows = {r.connection.name: r.failures for r in response.context["rows"]}
    assert rows == {"crm": 3, "quiet": 0}
    assert quiet.name in response.content.decode()


# --- Endpoint page ----------------------------------------------------------------------------


def test_endpoint_page_shows_latency_percentiles_and_status_mix(
    viewer_client: Client, account: AwsAccount, endpoint: Endpoint
) -> None:
    for ms in range(100, 1100, 100):  # 10 successes: 100 … 1000 ms
        calls(account, 1, endpoint=endpoint, succeeded=True, duration_ms=ms)
    calls(account, 3, endpoint=endpoint, status_code=503, duration_ms=None)
    calls(
        account,
        1,
        endpoint=endpoint,
        status_code=None,
        error="States.Http.Socket",
        duration_ms=None,
    )
    response = viewer_client.get(reverse("connections:endpoint", args=[endpoint.pk]))
    assert response.status_code == 200
    assert response.context["latency"]["p50"] == pytest.approx(550.0)
    assert response.context["latency"]["p95"] == pytest.approx(955.0)
    mix = {(r.label, r.outcome): r.count for r in response.context["mix"]}
    assert mix == {("200", "succeeded"): 10, ("503", "failed"): 3, ("no response", "failed"): 1}
    assert response.context["failures"] == 4
    html = response.content.decode()
    assert f"endpoint={endpoint.pk}&amp;status=503" in html
    assert f"endpoint={endpoint.pk}&amp;status=none" in html


def test_endpoint_timeline_counts_only_its_failures(
    viewer_client: Client, account: AwsAccount, endpoint: Endpoint
) -> None:
    calls(account, 4, endpoint=endpoint, category=Category.TIMEOUT)
    calls(account, 2, endpoint=EndpointFactory.create(account=account))
    chart = viewer_client.get(reverse("connections:endpoint", args=[endpoint.pk])).context["chart"]
    assert chart.total == 4
    assert [s.value for s in chart.legend] == ["timeout"]


def test_endpoint_of_another_account_is_404(
    viewer_client: Client, other_account: AwsAccount
) -> None:
    other = EndpointFactory.create(account=other_account)
    assert viewer_client.get(reverse("connections:endpoint", args=[other.pk])).status_code == 404


@pytest.mark.parametrize("n", [2, 50])
def test_endpoint_page_runs_a_fixed_number_of_queries(
    viewer_client: Client,
    account: AwsAccount,
    endpoint: Endpoint,
    django_assert_num_queries: Any,
    n: int,
) -> None:
    calls(account, n, endpoint=endpoint)
    calls(account, n, endpoint=endpoint, succeeded=True)
    FailureGroupFactory.create(account=account, endpoint=endpoint)
    # session, user, endpoint, status mix, timeline, latency, groups, recent failures
    with django_assert_num_queries(8):
        viewer_client.get(reverse("connections:endpoint", args=[endpoint.pk]))


def test_timeline_uses_minute_buckets_for_the_last_hour(
    viewer_client: Client, account: AwsAccount, endpoint: Endpoint
) -> None:
    calls(account, 3, endpoint=endpoint)
    response = viewer_client.get(
        reverse("connections:endpoint", args=[endpoint.pk]), {"window": "1h"}
    )
    assert response.context["chart"].bucket_unit == "minute"
    assert (
        len(response.context["chart"].bars) == 3
    )  # 1, 12 and 23 minutes ago: three bars, gaps between


def test_untrusted_connection_text_is_escaped(viewer_client: Client, account: AwsAccount) -> None:
    xss = "<script>alert(1)</script>"
    conn = ConnectionFactory.create(account=account, name=xss, state_reason=xss)
    ConnectionStateChangeFactory.create(
        connection=conn, state=ConnectionState.DEAUTHORIZED, reason=xss
    )
    html = viewer_client.get(reverse("connections:detail", args=[conn.pk])).content.decode()
    assert "<script>alert(1)" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
