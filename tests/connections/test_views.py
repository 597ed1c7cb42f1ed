"""Connection and endpoint pages: timelines, de-authorized shading, latency, status mix."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from connections.choices import AuthorizationType, ConnectionState
from connections.models import AwsAccount, Connection, Endpoint
from executions.choices import Category
from executions.models import HttpAttempt, StateMachine
from tests.factories import (
    ConnectionFactory,
    ConnectionStateChangeFactory,
    EndpointFactory,
    ExecutionFactory,
    FailureGroupFactory,
    HttpAttemptFactory,
    StateMachineFactory,
    UserFactory,
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
            "aborted": 0,
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
    # session, user, connection, state changes, cascade failures, timeline, rate and latency,
    # endpoints, groups, recent failures (no de-authorization: no trigger to look for)
    with django_assert_num_queries(10):
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
    # session, user, endpoint, status mix, timeline, latency, rate and latency per bucket,
    # groups, recent failures
    with django_assert_num_queries(9):
        viewer_client.get(reverse("connections:endpoint", args=[endpoint.pk]))


def test_endpoint_page_links_invalid_connection_state_groups_to_the_cascade(
    viewer_client: Client, account: AwsAccount, conn: Connection, endpoint: Endpoint
) -> None:
    for _ in range(2):  # two groups through the same connection: one link
        FailureGroupFactory.create(
            account=account, endpoint=endpoint, connection=conn, status_code=None, error=INVALID
        )
    FailureGroupFactory.create(account=account, endpoint=endpoint, connection=conn)
    response = viewer_client.get(reverse("connections:endpoint", args=[endpoint.pk]))
    [link] = response.context["cascade_links"]
    assert (link.connection_id, link.window, link.deauthorized_now) == (conn.pk, "1h", False)
    html = response.content.decode()
    assert f"{reverse('connections:detail', args=[conn.pk])}?window=1h#cascade" in html
    assert "was de-authorized" in html


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


# --- Cascade: what de-authorized the connection and what failed because of it ----------------

INVALID = "Events.ConnectionResource.InvalidConnectionState"
REASON = "The connection was deauthorized because the endpoint returned HTTP 401 Unauthorized."


def attempt(machine: StateMachine, when: Any, **kwargs: Any) -> HttpAttempt:
    execution = ExecutionFactory.create(state_machine=machine, start_date=when)
    return HttpAttemptFactory.create(execution=execution, occurred_at=when, **kwargs)


def invalid_state(machine: StateMachine, conn: Connection, when: Any, n: int = 1) -> None:
    for i in range(n):
        attempt(
            machine,
            when + timedelta(seconds=i),
            connection=conn,
            status_code=None,
            error=INVALID,
            category=Category.AUTH,
            subcategory="connection_deauthorized",
        )


def unauthorized(machine: StateMachine, conn: Connection, when: Any, endpoint: Any) -> HttpAttempt:
    return attempt(
        machine,
        when,
        connection=conn,
        endpoint=endpoint,
        method="GET",
        url="https://crm.example/c/42",
        status_code=401,
        error="States.Http.StatusCode.401",
        category=Category.AUTH,
    )


def deauthorized_at(conn: Connection, when: Any, reason: str = REASON) -> None:
    ConnectionStateChangeFactory.create(
        connection=conn, state=ConnectionState.AUTHORIZED, changed_at=when - timedelta(days=2)
    )
    ConnectionStateChangeFactory.create(
        connection=conn, state=ConnectionState.DEAUTHORIZED, changed_at=when, reason=reason
    )


def test_cascade_names_the_first_401_and_counts_the_failures_it_caused(
    viewer_client: Client, account: AwsAccount, conn: Connection, endpoint: Endpoint
) -> None:
    t = timezone.now() - timedelta(hours=3)
    sync_crm = StateMachineFactory.create(account=account, name="SyncCrm")
    billing = StateMachineFactory.create(account=account, name="Billing")
    unauthorized(sync_crm, conn, t - timedelta(hours=30), endpoint)  # before the look-back
    trigger = unauthorized(sync_crm, conn, t - timedelta(seconds=2), endpoint)
    unauthorized(sync_crm, conn, t - timedelta(seconds=1), endpoint)  # in flight: not first
    deauthorized_at(conn, t)
    invalid_state(sync_crm, conn, t + timedelta(minutes=1), n=3)
    invalid_state(billing, conn, t + timedelta(minutes=5), n=2)
    calls(account, 2, connection=conn)  # 503s: not part of the cascade
    response = viewer_client.get(reverse("connections:detail", args=[conn.pk]))
    [episode] = response.context["cascade"].episodes
    assert episode.trigger.attempt_id == trigger.pk
    assert episode.trigger.endpoint == "https://crm.example/c/{id}"
    assert (episode.failures, episode.executions, episode.machines) == (5, 5, 2)
    assert episode.ongoing
    assert episode.deauthorization.reason == REASON
    html = response.content.decode()
    assert "de-authorized this connection: 5 failures since then, in 2 state machines." in html
    assert "First 401 at" in html
    assert "Fix the credentials, then call UpdateConnection" in html
    assert (
        f"{reverse('executions:detail', args=[trigger.execution_id])}#attempt-{trigger.pk}" in html
    )
    assert reverse("connections:endpoint", args=[endpoint.pk]) in html
    assert f"state_machine={billing.pk}" in html


def test_cascade_ends_when_the_connection_is_authorized_again(
    viewer_client: Client, account: AwsAccount, conn: Connection, endpoint: Endpoint
) -> None:
    t = timezone.now() - timedelta(hours=5)
    machine = StateMachineFactory.create(account=account, name="SyncCrm")
    unauthorized(machine, conn, t - timedelta(seconds=1), endpoint)
    deauthorized_at(conn, t)
    invalid_state(machine, conn, t + timedelta(minutes=1), n=4)
    ConnectionStateChangeFactory.create(
        connection=conn, state=ConnectionState.AUTHORIZED, changed_at=t + timedelta(hours=1)
    )
    response = viewer_client.get(reverse("connections:detail", args=[conn.pk]))
    [episode] = response.context["cascade"].episodes
    assert not episode.ongoing
    assert episode.failures == 4
    html = response.content.decode()
    assert "Re-authorized at" in html
    assert "Fix the credentials" not in html


def test_failures_after_a_reauthorization_no_sync_saw_form_their_own_episode(
    viewer_client: Client, account: AwsAccount, conn: Connection, endpoint: Endpoint
) -> None:
    t = timezone.now() - timedelta(hours=8)
    machine = StateMachineFactory.create(account=account)
    deauthorized_at(conn, t)
    invalid_state(machine, conn, t + timedelta(minutes=1), n=2)
    ConnectionStateChangeFactory.create(
        connection=conn, state=ConnectionState.AUTHORIZED, changed_at=t + timedelta(hours=1)
    )
    second = t + timedelta(hours=4)
    trigger = unauthorized(machine, conn, second - timedelta(seconds=1), endpoint)
    invalid_state(machine, conn, second, n=3)
    response = viewer_client.get(reverse("connections:detail", args=[conn.pk]))
    newest, older = response.context["cascade"].episodes
    assert (newest.deauthorization, newest.failures, newest.trigger.attempt_id) == (
        None,
        3,
        trigger.pk,
    )
    assert (older.failures, older.trigger) == (2, None)
    assert "authorized again between two syncs" in response.content.decode()


def test_cascade_counts_only_the_accounts_the_user_may_see(
    viewer_client: Client, account: AwsAccount, other_account: AwsAccount, conn: Connection
) -> None:
    t = timezone.now() - timedelta(hours=2)
    deauthorized_at(conn, t)
    invalid_state(StateMachineFactory.create(account=account), conn, t, n=2)
    hidden_machine = StateMachineFactory.create(account=other_account, name="TheirMachine")
    invalid_state(hidden_machine, conn, t, n=7)
    unauthorized(hidden_machine, conn, t - timedelta(seconds=1), None)
    response = viewer_client.get(reverse("connections:detail", args=[conn.pk]))
    [episode] = response.context["cascade"].episodes
    assert (episode.failures, episode.trigger) == (2, None)
    assert "TheirMachine" not in response.content.decode()


def test_cascade_lists_every_visible_account_sharing_the_connection(
    client: Client, account: AwsAccount, other_account: AwsAccount, conn: Connection
) -> None:
    user = UserFactory.create(is_superuser=True)
    client.force_login(user)
    t = timezone.now() - timedelta(hours=2)
    deauthorized_at(conn, t)
    invalid_state(StateMachineFactory.create(account=account), conn, t, n=2)
    invalid_state(StateMachineFactory.create(account=other_account), conn, t, n=1)
    response = client.get(reverse("connections:detail", args=[conn.pk]))
    [episode] = response.context["cascade"].episodes
    assert episode.accounts == tuple(sorted([account.name, other_account.name]))
    assert "in 2 state machines of 2 accounts" in response.content.decode()


def test_oauth_cascade_blames_the_last_401_before_the_deauthorization(
    viewer_client: Client, account: AwsAccount, endpoint: Endpoint
) -> None:
    conn = ConnectionFactory.create(
        account=account, authorization_type=AuthorizationType.OAUTH_CLIENT_CREDENTIALS
    )
    t = timezone.now() - timedelta(hours=2)
    machine = StateMachineFactory.create(account=account)
    unauthorized(machine, conn, t - timedelta(minutes=10), endpoint)  # token refreshed fine
    last = unauthorized(machine, conn, t - timedelta(seconds=3), endpoint)
    deauthorized_at(conn, t)
    response = viewer_client.get(reverse("connections:detail", args=[conn.pk]))
    [episode] = response.context["cascade"].episodes
    assert episode.trigger.attempt_id == last.pk
    assert "A 401 at" in response.content.decode()


def test_a_connection_deauthorized_before_its_first_sync_shows_an_open_episode(
    viewer_client: Client, account: AwsAccount
) -> None:
    conn = ConnectionFactory.create(
        account=account,
        state=ConnectionState.DEAUTHORIZED,
        state_reason=REASON,
        aws_modified_at=timezone.now() - timedelta(hours=1),
    )
    invalid_state(StateMachineFactory.create(account=account), conn, timezone.now(), n=2)
    response = viewer_client.get(reverse("connections:detail", args=[conn.pk]))
    [episode] = response.context["cascade"].episodes
    assert episode.ongoing and not episode.recorded
    assert episode.failures == 2


def test_healthy_connection_says_so(viewer_client: Client, conn: Connection) -> None:
    response = viewer_client.get(reverse("connections:detail", args=[conn.pk]))
    assert response.context["cascade"].episodes == []
    assert "No de-authorization and no" in response.content.decode()


def test_cascade_text_from_aws_and_partners_is_escaped(
    viewer_client: Client, account: AwsAccount, conn: Connection
) -> None:
    xss = "<script>alert(1)</script>"
    t = timezone.now() - timedelta(hours=1)
    machine = StateMachineFactory.create(account=account, name=xss[:80])
    endpoint = EndpointFactory.create(account=account, url_template=f"https://x.example/{xss}")
    unauthorized(machine, conn, t - timedelta(seconds=1), endpoint)
    deauthorized_at(conn, t, reason=xss)
    invalid_state(machine, conn, t, n=1)
    html = viewer_client.get(reverse("connections:detail", args=[conn.pk])).content.decode()
    assert "<script>alert(1)" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


@pytest.mark.parametrize("n", [2, 40])
def test_cascade_runs_a_fixed_number_of_queries(
    viewer_client: Client,
    account: AwsAccount,
    conn: Connection,
    endpoint: Endpoint,
    django_assert_num_queries: Any,
    n: int,
) -> None:
    t = timezone.now() - timedelta(hours=3)
    for i in range(n // 2 + 1):
        ConnectionStateChangeFactory.create(
            connection=conn,
            state=ConnectionState.DEAUTHORIZED,
            changed_at=t + timedelta(minutes=2 * i),
        )
        ConnectionStateChangeFactory.create(
            connection=conn,
            state=ConnectionState.AUTHORIZED,
            changed_at=t + timedelta(minutes=2 * i + 1),
        )
    for i in range(n):
        machine = StateMachineFactory.create(account=account)
        unauthorized(machine, conn, t + timedelta(minutes=i, seconds=-1), endpoint)
        invalid_state(machine, conn, t + timedelta(minutes=i, seconds=10), n=2)
    # session, user, connection, state changes, cascade failures, cascade triggers, timeline,
    # rate and latency, endpoints, groups, recent failures
    with django_assert_num_queries(11):
        response = viewer_client.get(reverse("connections:detail", args=[conn.pk]))
    assert response.context["cascade"].episodes
