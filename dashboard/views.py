"""Overview and sync-status pages, plus the window and timeline helpers of the top pages.

Access has one rule: a page sees only what `AwsAccount.objects.visible_to(user)` allows, and an
object outside it is a 404 (never a 403 that would confirm it exists). Every page runs a fixed
number of SQL queries whatever the row count: aggregates are done in SQL, lists are sliced.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import connection as db_connection
from django.db.models import Count, F, QuerySet, Window
from django.db.models.functions import RowNumber, Trunc
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from connections.arn import region_in_text
from connections.models import AwsAccount, SyncRun
from connections.unreadable import line_of
from connections.windows import WINDOWS
from dashboard import trends
from dashboard.backlog import Backlog, backlogs
from dashboard.forms import SyncFilterForm, WindowForm
from executions import charts
from executions.choices import GroupStatus, LoggingLevel
from executions.models import UNINSPECTED, Execution, FailureGroup, HttpAttempt, StateMachine
from executions.web import bad_filters, is_htmx, render_page, visible_accounts

TOP_N = 8
STANDARD_WITHOUT_FULL_LOGS = (
    "Not logging at ALL with execution data; nothing is hidden because Standard histories "
    "are read from GetExecutionHistory."
)
RUNS_PER_ACCOUNT = 8


# --- Shared helpers ---------------------------------------------------------------------------


def failure_buckets(
    attempts: QuerySet[HttpAttempt], bucketing: charts.Bucketing
) -> list[tuple[datetime, str, int]]:
    """(bucket start, category, count) of the given attempts, aggregated in SQL."""
    first, end = bucketing.span
    rows = (
        attempts.filter(occurred_at__gte=first, occurred_at__lt=end)
        .annotate(bucket=Trunc("occurred_at", bucketing.unit, tzinfo=UTC))
        .values_list("bucket", "category")
        .annotate(n=Count("id"))
        .order_by()
    )
    return [(bucket, category, n) for bucket, category, n in rows]


def timeline(
    attempts: QuerySet[HttpAttempt],
    start: datetime,
    end: datetime,
    intervals: list[tuple[datetime, datetime | None, str]] | None = None,
) -> charts.Chart:
    bucketing = charts.choose_bucketing(start, end)
    return charts.stacked_bars(
        failure_buckets(attempts, bucketing), bucketing, intervals=intervals or []
    )


def window_context(form: WindowForm) -> dict[str, Any]:
    start, end = form.bounds()
    return {
        "window_form": form,
        "windows": [(key, label) for key, (label, _) in WINDOWS.items()],
        "selected_window": form.selected,
        "window_start": start,
        "window_end": end,
    }


def can_sync(user: Any) -> bool:
    """A sync spends the account's AWS API quota, so it is an operator's action."""
    return bool(user.is_staff or user.has_perm("connections.change_awsaccount"))


# --- Overview ---------------------------------------------------------------------------------


@dataclass
class RegionHealth:
    """Sync health of one account in one region, with the state machines found there."""

    account: AwsAccount
    region: str
    last_run: SyncRun | None
    errors: list[str] = field(default_factory=list)
    machines: list[StateMachine] = field(default_factory=list)

    @property
    def logging_notes(self) -> list[tuple[StateMachine, str]]:
        """Machines not logging at ALL with execution data, and what that costs us."""
        return [
            (m, m.logs_hide_data or STANDARD_WITHOUT_FULL_LOGS)
            for m in self.machines
            if not (m.logging_level == LoggingLevel.ALL and m.include_execution_data)
        ]

    @property
    def hides_data(self) -> bool:
        return any(m.logs_hide_data for m in self.machines)


def _error_text(error: Any) -> str:
    if isinstance(error, dict):
        parts = [str(error.get(k)) for k in ("operation", "code", "message") if error.get(k)]
        return ": ".join(parts) or str(error)
    return str(error)


def _error_region(error: Any) -> str:
    """The region an error is about: a "region" key, else the first ARN's region, else ""."""
    if isinstance(error, dict):
        return str(error.get("region", ""))
    return region_in_text(str(error))


def latest_runs(account_ids: list[int], per_account: int) -> list[SyncRun]:
    """The newest `per_account` runs of each account, in one query.

    A sync runs every minute, so runs pile up; one LIMITed branch per account reads a few
    rows from the (account, -started_at) index instead of ranking every run ever recorded.
    """
    if not account_ids:
        return []
    if not db_connection.features.supports_slicing_ordering_in_compound:
        # SQLite (a fresh checkout) cannot LIMIT inside a UNION: rank with a window instead.
        ranked = SyncRun.objects.filter(account_id__in=account_ids).annotate(
            rank=Window(
                RowNumber(), partition_by=[F("account_id")], order_by=F("started_at").desc()
            )
        )
        return list(ranked.filter(rank__lte=per_account).order_by("account_id", "-started_at"))
    branches = [
        SyncRun.objects.filter(account_id=pk).order_by("-started_at")[:per_account]
        for pk in account_ids
    ]
    merged = branches[0].union(*branches[1:], all=True) if len(branches) > 1 else branches[0]
    return sorted(merged, key=lambda run: (run.account_id, -run.started_at.timestamp()))


def sync_health(accounts: list[AwsAccount]) -> list[RegionHealth]:
    ids = [a.pk for a in accounts]
    last_runs = {run.account_id: run for run in latest_runs(ids, 1)}
    machines: dict[tuple[int, str], list[StateMachine]] = defaultdict(list)
    for machine in StateMachine.objects.filter(account_id__in=ids).only(
        "id", "account_id", "region", "name", "arn", "type", "logging_level",
        "include_execution_data", "last_synced_at",
    ):  # fmt: skip
        machines[(machine.account_id, machine.region)].append(machine)
    rows = []
    for account in accounts:
        run = last_runs.get(account.pk)
        regions = list(
            dict.fromkeys([*account.regions, *(r for a, r in machines if a == account.pk)])
        )
        for region in regions:
            errors = [
                _error_text(e)
                for e in (run.errors if run else [])
                if _error_region(e) in ("", region)
            ] + [
                line_of(p)
                for p in (run.unreadable if run else [])
                if isinstance(p, dict) and p.get("region") in ("", region)
            ]
            rows.append(RegionHealth(account, region, run, errors, machines[(account.pk, region)]))
    return rows


def top_connections(failing: QuerySet[HttpAttempt]) -> list[dict[str, Any]]:
    # Grouped by the foreign key, not the 1,600-character ARN, so the failing-attempts index
    # (which carries connection_id) answers it; the name comes from a join on the few rows.
    return list(
        failing.filter(connection__isnull=False)
        .values("connection_id", "connection__name", "connection__arn")
        .annotate(n=Count("id"))
        .order_by("-n", "connection_id")[:TOP_N]
    )


def failing_endpoints(failing: QuerySet[HttpAttempt]) -> list[dict[str, Any]]:
    """Every endpoint with a failure in `failing`, most failures first. Not cut to TOP_N: the
    same rows are the rising-rate candidates (dashboard/trends.py), one query for both; an
    account has endpoint templates by the dozen, not by the million."""
    return list(
        failing.filter(endpoint__isnull=False)
        .values("endpoint_id", "endpoint__method", "endpoint__url_template")
        .annotate(n=Count("id"))
        .order_by("-n", "endpoint_id")
    )


@login_required
def overview(request: HttpRequest) -> HttpResponse:
    form = WindowForm(request.GET)
    if not form.is_valid():
        return bad_filters(request, form, title="Invalid time window")
    accounts = list(visible_accounts(request.user))
    ids = [a.pk for a in accounts]
    context = window_context(form)
    start, end = context["window_start"], context["window_end"]
    failing = HttpAttempt.objects.failing().filter(account_id__in=ids)
    in_window = failing.filter(occurred_at__gte=start, occurred_at__lt=end)
    chart = timeline(failing, start, end)
    endpoints = failing_endpoints(in_window)
    context.update(
        accounts=accounts,
        chart=chart,
        top_connections=top_connections(in_window),
        top_endpoints=endpoints[:TOP_N],
        open_groups=list(
            FailureGroup.objects.filter(account_id__in=ids, status=GroupStatus.OPEN)
            .select_related("connection", "endpoint")
            .order_by("-last_seen_at", "-id")[:10]
        ),
        health=sync_health(accounts),
        # Failures counted from ListExecutions whose attempts are not known yet: said beside
        # the attempt counts, not mixed into them.
        uninspected=Execution.objects.filter(
            UNINSPECTED, account_id__in=ids, start_date__gte=start, start_date__lt=end
        ).count(),
        # What changed against the previous window of the same length.
        new_groups=trends.new_groups(ids, start, end),
        rising_endpoints=trends.rising_endpoints(
            ids, start, end, candidates=[row["endpoint_id"] for row in endpoints]
        ),
        rise_points=trends.RISE_POINTS,
        rise_min_attempts=trends.MIN_ATTEMPTS,
    )
    return render_page(request, "dashboard/overview.html", context)


# --- Sync status ------------------------------------------------------------------------------


UNREADABLE_KEYS = ("kind", "name", "arn", "operation", "code", "message", "missing", "hint")


@dataclass
class RunRow:
    """A sync run with what the template cannot compute: its duration and readable errors."""

    run: SyncRun

    @property
    def took(self) -> str:
        if self.run.finished_at is None:
            return ""
        return charts.duration_label((self.run.finished_at - self.run.started_at).total_seconds())

    @property
    def errors(self) -> list[str]:
        errors = self.run.errors if isinstance(self.run.errors, list) else [self.run.errors]
        return [_error_text(e) for e in errors if e]

    @property
    def unreadable(self) -> list[dict[str, str]]:
        """Resources this run could not read (connections/unreadable.py), each with its hint."""
        rows = self.run.unreadable if isinstance(self.run.unreadable, list) else []
        return [
            {key: str(row.get(key) or "") for key in UNREADABLE_KEYS}
            for row in rows
            if isinstance(row, dict)
        ]

    @property
    def api_calls(self) -> list[tuple[str, Any]]:
        calls = self.run.api_calls
        return sorted(calls.items()) if isinstance(calls, dict) else []

    @property
    def throttles(self) -> list[tuple[str, Any]]:
        """Throttled answers by operation (botocore's own retries included): why a run was slow."""
        throttles = self.run.throttles
        return (
            sorted((op, n) for op, n in throttles.items() if n)
            if isinstance(throttles, dict)
            else []
        )


@dataclass
class AccountSyncs:
    account: AwsAccount
    runs: list[RunRow]

    stalled_since: datetime | None = None
    backlog: list[Backlog] = field(default_factory=list)

    @property
    def running(self) -> bool:
        """A live run holds the account (a stalled one does not: any trigger takes over)."""
        return self.stalled_since is None and any(row.run.is_running for row in self.runs)


@login_required
def sync_status(request: HttpRequest) -> HttpResponse:
    form = SyncFilterForm(request.GET)
    if not form.is_valid():
        return bad_filters(request, form)
    accounts_qs = visible_accounts(request.user)
    if form.cleaned_data.get("account"):
        accounts_qs = accounts_qs.filter(pk=form.cleaned_data["account"])
    accounts = list(accounts_qs)
    runs: dict[int, list[RunRow]] = defaultdict(list)
    for run in latest_runs([a.pk for a in accounts], RUNS_PER_ACCOUNT):
        runs[run.account_id].append(RunRow(run))
    now = timezone.now()
    waiting = backlogs(accounts)
    rows = [
        AccountSyncs(
            account, runs[account.pk], account.sync_stalled_since(now), waiting[account.pk]
        )
        for account in accounts
    ]
    context = {
        "rows": rows,
        # Poll only while something runs: an idle page costs the server nothing.
        "polling": any(row.running for row in rows),
        "can_sync": can_sync(request.user),
        "query": request.GET.urlencode(),
    }
    template = (
        "dashboard/partials/sync_runs.html" if is_htmx(request) else "dashboard/sync_status.html"
    )
    return render_page(request, template, context)


@login_required
@require_POST
def sync_now(request: HttpRequest, pk: int) -> HttpResponse:
    account = get_object_or_404(visible_accounts(request.user), pk=pk)
    if not can_sync(request.user):
        raise PermissionDenied("Only operators may start a sync.")
    # Imported here: the task module pulls in Celery and boto3, which page views never need.
    from executions.tasks import sync_account

    try:
        sync_account.delay(account.pk, trigger="manual")
    except Exception as exc:  # broker down: say so instead of a 500
        messages.error(request, f"Could not queue a sync of {account.name}: {type(exc).__name__}.")
    else:
        messages.success(request, f"Sync of {account.name} queued.")
    return HttpResponseRedirect(reverse("dashboard:sync_status") + f"?account={account.pk}")
