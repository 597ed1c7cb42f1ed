"""Overview and sync-status pages: content, scoping, HTMX polling, "sync now", query counts."""

from __future__ import annotations

import sys
import types
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from connections.choices import SyncStatus
from connections.models import AwsAccount, sync_stale_after
from executions.choices import Category, GroupStatus, LoggingLevel, StateMachineType
from tests.factories import (
    ConnectionFactory,
    EndpointFactory,
    ExecutionFactory,
    FailureGroupFactory,
    HttpAttemptFactory,
    StateMachineFactory,
    SyncRunFactory,
)

pytestmark = pytest.mark.django_db
OVERVIEW = reverse("dashboard:overview")
SYNC = reverse("dashboard:sync_status")


def seed(account: AwsAccount, n: int, **kwargs: Any) -> None:
    machine = StateMachineFactory.create(account=account)
    now = timezone.now()
    fixed_time = kwargs.pop("occurred_at", None)
    for i in range(n):
        HttpAttemptFactory.create(
            execution=ExecutionFactory.create(state_machine=machine),
            occurred_at=fixed_time or now - timedelta(minutes=7 * i + 1),
            **kwargs,
        )


# --- Overview ---------------------------------------------------------------------------------


def test_overview_requires_login(client: Client) -> None:
    response = client.get(OVERVIEW)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_overview_draws_failures_by_category(viewer_client: Client, account: AwsAccount) -> None:
    seed(account, 3, category=Category.AUTH)
    seed(account, 2, category=Category.TIMEOUT)
    response = viewer_client.get(OVERVIEW)
    chart = response.context["chart"]
    assert chart.total == 5
    assert {s.value for s in chart.legend} == {"auth", "timeout"}
    html = response.content.decode()
    assert 'fill="url(#pat-auth)"' in html
    assert '<pattern id="pat-auth"' in html  # the page carries its own pattern definitions


def test_overview_ignores_other_accounts_and_old_failures(
    viewer_client: Client, account: AwsAccount, other_account: AwsAccount
) -> None:
    seed(other_account, 4)
    seed(account, 1, occurred_at=timezone.now() - timedelta(days=3))
    assert viewer_client.get(OVERVIEW).context["chart"].total == 0
    assert viewer_client.get(OVERVIEW, {"window": "7d"}).context["chart"].total == 1


def test_overview_lists_top_connections_endpoints_and_open_groups(
    viewer_client: Client, account: AwsAccount
) -> None:
    conn = ConnectionFactory.create(account=account, name="stripe")
    endpoint = EndpointFactory.create(account=account, url_template="https://api.example/v1/pay")
    seed(account, 3, connection=conn, endpoint=endpoint)
    FailureGroupFactory.create(account=account, title="open group")
    FailureGroupFactory.create(account=account, title="ignored group", status=GroupStatus.IGNORED)
    response = viewer_client.get(OVERVIEW)
    assert response.context["top_connections"][0]["n"] == 3
    assert response.context["top_connections"][0]["connection_id"] == conn.pk
    assert response.context["top_endpoints"][0]["endpoint_id"] == endpoint.pk
    html = response.content.decode()
    assert "open group" in html and "ignored group" not in html
    assert "https://api.example/v1/pay" in html


def test_overview_says_which_state_machines_hide_data(
    viewer_client: Client, account: AwsAccount
) -> None:
    StateMachineFactory.create(account=account, name="GoodMachine")
    StateMachineFactory.create(
        account=account,
        name="BlindExpress",
        type=StateMachineType.EXPRESS,
        logging_level=LoggingLevel.OFF,
        include_execution_data=False,
    )
    StateMachineFactory.create(
        account=account, name="NoData", logging_level=LoggingLevel.ALL, include_execution_data=False
    )
    html = viewer_client.get(OVERVIEW).content.decode()
    assert "BlindExpress" in html
    assert "Logging is OFF: Express executions are invisible to Stepscope." in html
    assert "includeExecutionData is off: logs hold no request or response." in html
    assert "GoodMachine" not in html  # nothing to say about it


def test_overview_shows_sync_health_per_region(viewer_client: Client, account: AwsAccount) -> None:
    account.regions = ["eu-west-1", "us-east-1"]
    account.save()
    SyncRunFactory.create(
        account=account,
        status=SyncStatus.PARTIAL,
        errors=[{"region": "us-east-1", "operation": "ListExecutions", "message": "Rate exceeded"}],
    )
    health = viewer_client.get(OVERVIEW).context["health"]
    by_region = {row.region: row for row in health}
    assert set(by_region) == {"eu-west-1", "us-east-1"}
    assert by_region["us-east-1"].errors == ["ListExecutions: Rate exceeded"]
    assert by_region["eu-west-1"].errors == []


def test_sync_errors_are_attributed_to_the_region_in_their_arn(
    viewer_client: Client, account: AwsAccount
) -> None:
    account.regions = ["eu-west-1", "us-east-1"]
    account.save()
    arn = "arn:aws:states:us-east-1:111122223333:execution:Sm:run-1"
    SyncRunFactory.create(account=account, errors=[f"{arn}: ExecutionDoesNotExist", "boom"])
    by_region = {row.region: row for row in viewer_client.get(OVERVIEW).context["health"]}
    assert by_region["us-east-1"].errors == [f"{arn}: ExecutionDoesNotExist", "boom"]
    assert by_region["eu-west-1"].errors == ["boom"]


@pytest.mark.parametrize(
    "params",
    [{"window": "2y"}, {"start": "nope"}, {"start": "2025-01-02T00:00", "end": "2025-01-01T00:00"}],
)
def test_overview_rejects_invalid_windows_with_400(
    viewer_client: Client, params: dict[str, str]
) -> None:
    response = viewer_client.get(OVERVIEW, params)
    assert response.status_code == 400
    assert "Invalid time window" in response.content.decode()


def test_overview_custom_window(viewer_client: Client, account: AwsAccount) -> None:
    seed(account, 1, occurred_at=timezone.now() - timedelta(days=10))
    start = (timezone.now() - timedelta(days=11)).strftime("%Y-%m-%dT%H:%M")
    end = (timezone.now() - timedelta(days=9)).strftime("%Y-%m-%dT%H:%M")
    chart = viewer_client.get(OVERVIEW, {"start": start, "end": end}).context["chart"]
    assert chart.total == 1
    assert chart.bucket_unit == "hour"


@pytest.mark.parametrize("n", [2, 40])
def test_overview_runs_a_fixed_number_of_queries(
    viewer_client: Client, account: AwsAccount, django_assert_num_queries: Any, n: int
) -> None:
    conn = ConnectionFactory.create(account=account)
    seed(account, n, connection=conn, endpoint=EndpointFactory.create(account=account))
    FailureGroupFactory.create(account=account, connection=conn)
    SyncRunFactory.create(account=account)
    # session, user, accounts, buckets, top connections, failing endpoints (the top ones and
    # the rising-rate candidates), groups, state machines, latest runs, failures not inspected
    # yet, new groups, rising endpoints' calls in both windows
    with django_assert_num_queries(12):
        viewer_client.get(OVERVIEW)


def test_outsider_sees_an_empty_overview(outsider_client: Client, account: AwsAccount) -> None:
    seed(account, 2)
    response = outsider_client.get(OVERVIEW)
    assert response.status_code == 200
    assert response.context["chart"].total == 0
    assert "No AWS account is visible to you yet." in response.content.decode()


# --- Sync status ------------------------------------------------------------------------------


def test_sync_page_lists_recent_runs(
    viewer_client: Client, account: AwsAccount, other_account: AwsAccount
) -> None:
    SyncRunFactory.create(account=account, progress="all done", executions_added=7)
    SyncRunFactory.create(account=other_account)
    response = viewer_client.get(SYNC)
    rows = response.context["rows"]
    assert [r.account for r in rows] == [account]
    assert rows[0].runs[0].run.executions_added == 7
    assert not response.context["polling"]
    assert "hx-trigger" not in response.content.decode()


def test_sync_page_polls_only_while_a_sync_runs(viewer_client: Client, account: AwsAccount) -> None:
    run = SyncRunFactory.create(account=account, running=True)
    html = viewer_client.get(SYNC).content.decode()
    assert 'hx-trigger="every 2s"' in html
    assert "state machine 2 of 5" in html
    fragment = viewer_client.get(SYNC, HTTP_HX_REQUEST="true").content.decode()
    assert fragment.lstrip().startswith("{#") is False
    assert '<div id="sync-runs"' in fragment and "<html" not in fragment
    run.finished_at = timezone.now()
    run.status = SyncStatus.OK
    run.save()
    done = viewer_client.get(SYNC, HTTP_HX_REQUEST="true").content.decode()
    assert "hx-trigger" not in done  # the swapped-in copy stops the polling


def test_sync_page_says_when_a_running_sync_has_stalled(
    operator_client: Client, account: AwsAccount
) -> None:
    run = SyncRunFactory.create(account=account, running=True)
    AwsAccount.objects.filter(pk=account.pk).update(
        sync_run=run, sync_heartbeat_at=timezone.now() - timedelta(seconds=20)
    )
    live = operator_client.get(SYNC).content.decode()
    assert "data-stalled" not in live and 'title="A sync is running"' in live

    AwsAccount.objects.filter(pk=account.pk).update(
        sync_heartbeat_at=timezone.now() - sync_stale_after() - timedelta(minutes=3)
    )
    response = operator_client.get(SYNC)
    html = response.content.decode()
    assert "data-stalled" in html and "no progress since" in html and ">stalled<" in html
    assert 'title="A sync is running"' not in html, "Sync now takes a stalled run over"
    assert not response.context["polling"], "nothing will change until a trigger takes over"


def test_sync_page_can_be_narrowed_to_one_account(
    viewer_client: Client, account: AwsAccount, viewers: Any
) -> None:
    from tests.factories import AwsAccountFactory

    second = AwsAccountFactory.create(groups=[viewers])
    response = viewer_client.get(SYNC, {"account": second.pk})
    assert [r.account for r in response.context["rows"]] == [second]
    assert viewer_client.get(SYNC, {"account": "x"}).status_code == 400


@pytest.mark.parametrize("runs", [1, 20])
def test_sync_page_runs_a_fixed_number_of_queries(
    viewer_client: Client, account: AwsAccount, django_assert_num_queries: Any, runs: int
) -> None:
    for _ in range(runs):
        SyncRunFactory.create(account=account)
    # session, user, accounts, runs, the backlog of every account (one query), and the
    # permission lookups for the "sync now" button
    with django_assert_num_queries(7):
        viewer_client.get(SYNC)


@pytest.fixture
def queued(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    """Replace executions.tasks.sync_account with a recorder (no broker in unit tests)."""
    calls: list[tuple[Any, ...]] = []

    class FakeTask:
        def delay(self, *args: Any, **kwargs: Any) -> None:
            calls.append((*args, kwargs))

    module = types.ModuleType("executions.tasks")
    module.sync_account = FakeTask()  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "executions.tasks", module)
    return calls


def test_sync_now_queues_a_sync(
    operator_client: Client, account: AwsAccount, queued: list[tuple[Any, ...]]
) -> None:
    response = operator_client.post(reverse("dashboard:sync_now", args=[account.pk]))
    assert response.status_code == 302
    assert response["Location"] == f"{SYNC}?account={account.pk}"
    assert queued == [(account.pk, {"trigger": "manual"})]
    follow = operator_client.get(response["Location"])
    assert "Sync of visible-account queued." in follow.content.decode()
    assert "Sync now" in follow.content.decode()


def test_sync_now_needs_the_permission(
    viewer_client: Client, account: AwsAccount, queued: list[tuple[Any, ...]]
) -> None:
    assert viewer_client.post(reverse("dashboard:sync_now", args=[account.pk])).status_code == 403
    assert queued == []
    assert "Sync now" not in viewer_client.get(SYNC).content.decode()


def test_sync_now_for_a_hidden_account_is_404(
    operator_client: Client, other_account: AwsAccount, queued: list[tuple[Any, ...]]
) -> None:
    assert (
        operator_client.post(reverse("dashboard:sync_now", args=[other_account.pk])).status_code
        == 404
    )
    assert queued == []


def test_sync_now_needs_csrf(
    operator: User, account: AwsAccount, queued: list[tuple[Any, ...]]
) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(operator)
    assert client.post(reverse("dashboard:sync_now", args=[account.pk])).status_code == 403
    assert queued == []


def test_sync_now_reports_a_broker_failure(
    operator_client: Client, account: AwsAccount, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Down:
        def delay(self, *args: Any, **kwargs: Any) -> None:
            raise ConnectionRefusedError("redis down")

    module = types.ModuleType("executions.tasks")
    module.sync_account = Down()  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "executions.tasks", module)
    response = operator_client.post(reverse("dashboard:sync_now", args=[account.pk]), follow=True)
    assert (
        "Could not queue a sync of visible-account: ConnectionRefusedError."
        in response.content.decode()
    )
