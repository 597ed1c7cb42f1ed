"""Failing attempts list (+ CSV), execution detail, failure groups and their triage actions.

Lists use keyset pagination on (sort value, id): the next page starts after the last row seen,
so page 1,000 costs what page 1 costs, and no COUNT(*) runs over a million attempts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, timedelta
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import connection as db_connection
from django.db.models import Count, F, IntegerField, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce, Substr, Trunc
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from connections import health
from connections.models import Connection, Endpoint, with_account_but_no_secrets
from executions import charts
from executions.choices import GroupStatus
from executions.execution_list import ExecutionPage, execution_page, total_of
from executions.forms import (
    ANY_GROUP_STATUS,
    SORTS,
    AttemptFilterForm,
    Cursor,
    FilterChoices,
    GroupFilterForm,
    SnoozeForm,
    from_micros,
    to_micros,
)
from executions.group_notes import notes_form
from executions.grouping import WORSE_FACTOR, failures_last_hour
from executions.history.variables import MAX_ASSIGNMENTS
from executions.map_run_views import group_map_runs, map_run_sections
from executions.models import Execution, FailureGroup, HttpAttempt, StateMachine
from executions.presenting import (
    LIST_FIELDS,
    GroupRow,
    assignment_views,
    attempt_lanes,
    attempt_view,
    console_url,
    csv_rows,
    event_timeline,
    execution_duration,
    group_sparkline,
    redrive_note,
)
from executions.redaction import Redactor, default_redactor
from executions.search import SEARCH_EXACT_COUNT_LIMIT, search_attempts
from executions.web import bad_filters, can_triage, is_htmx, render_page, visible_accounts

PAGE_SIZE = 50
GROUP_PAGE_SIZE = 30
# An execution with a big Map can hold thousands of attempts; the page shows the first ones and
# says so, rather than rendering megabytes of HTML.
MAX_ATTEMPTS_SHOWN = 200
PICKER_LIMIT = 1000
SPARK_DAYS = 14


# --- Filter choices and the filtered queryset -------------------------------------------------


def filter_choices(user: Any) -> FilterChoices:
    """Picker options for the visible accounts (four small queries, whatever the row count)."""
    accounts = list(visible_accounts(user).values_list("pk", "name", "regions"))
    ids = [pk for pk, _, _ in accounts]
    machines = list(
        StateMachine.objects.filter(account_id__in=ids)
        .order_by("name", "region")
        .values_list("pk", "name", "region", "account_id")[:PICKER_LIMIT]
    )
    endpoints = list(
        Endpoint.objects.filter(account_id__in=ids)
        .order_by("url_template", "method")
        .values_list("pk", "method", "url_template", "account_id")[:PICKER_LIMIT]
    )
    connections = list(
        Connection.objects.filter(account_id__in=ids)
        .order_by("name", "arn")
        .values_list("arn", "name", "account_id")[:PICKER_LIMIT]
    )
    regions = sorted(
        {str(r) for _, _, rs in accounts if isinstance(rs, list) for r in rs}
        | {m[2] for m in machines}
    )
    return FilterChoices(
        account_ids=ids,
        accounts=[(pk, name) for pk, name, _ in accounts],
        regions=regions,
        state_machines=[(pk, f"{name} ({region})") for pk, name, region, _ in machines],
        endpoints=[(pk, f"{method} {url}") for pk, method, url, _ in endpoints],
        connections=[(arn, name) for arn, name, _ in connections],
        machine_account={pk: account for pk, _, _, account in machines},
        endpoint_account={pk: account for pk, _, _, account in endpoints},
        connection_account={arn: account for arn, _, account in connections},
    )


def scoped_account_ids(data: dict[str, Any], choices: FilterChoices) -> list[int]:
    """Visible accounts, narrowed to the one a filter implies.

    With a single account id PostgreSQL walks one partial index in order and stops after a
    page; with several it has to merge, so narrowing early keeps filtered lists fast.
    """
    ids = set(choices.account_ids)
    implied = [
        data.get("account"),
        choices.connection_account.get(data.get("connection") or ""),
        choices.endpoint_account.get(data.get("endpoint") or 0),
        choices.machine_account.get(data.get("state_machine") or 0),
    ]
    for account in implied:
        if account:
            ids &= {account}
    return sorted(ids)


def status_q(status: str) -> Q:
    if status == "none":
        return Q(status_code__isnull=True)
    if status.endswith("xx"):
        low = int(status[0]) * 100
        return Q(status_code__gte=low, status_code__lt=low + 100)
    return Q(status_code=int(status))


def filtered_attempts(data: dict[str, Any], choices: FilterChoices) -> QuerySet[HttpAttempt]:
    accounts = scoped_account_ids(data, choices)
    qs = HttpAttempt.objects.failing().filter(account_id__in=accounts)
    exact = {
        "connection_arn": data.get("connection"),
        "endpoint_id": data.get("endpoint"),
        "category": data.get("category"),
        "execution__state_machine_id": data.get("state_machine"),
        "execution__state_machine__region": data.get("region"),
        "occurred_at__gte": data.get("since"),
        "occurred_at__lt": data.get("until"),
    }
    qs = qs.filter(**{k: v for k, v in exact.items() if v not in (None, "")})
    if data.get("status"):
        qs = qs.filter(status_q(data["status"]))
    if data.get("q"):
        qs = search_attempts(qs, data["q"], accounts)
    return qs


def sort_key(sort: str) -> str:
    return "sort_value" if sort.lstrip("-") == "duration" else "occurred_at"


def sorted_attempts(
    qs: QuerySet[HttpAttempt], sort: str, cursor: Cursor | None = None
) -> QuerySet[HttpAttempt]:
    """Order by the sort key then id, and start after the cursor (keyset pagination)."""
    descending = sort.startswith("-")
    if sort_key(sort) == "sort_value":
        # Attempts without a duration sort as -1: last when slowest first, first otherwise.
        qs = qs.annotate(sort_value=Coalesce("duration_ms", Value(-1)))
        key, value = "sort_value", (cursor.value if cursor else 0)
    else:
        key = "occurred_at"
        value = from_micros(cursor.value) if cursor else None  # type: ignore[assignment]
    if cursor:
        op = "lt" if descending else "gt"
        # The redundant range condition lets PostgreSQL use it as an index bound; the OR alone
        # would only be a filter applied while scanning.
        qs = qs.filter(
            Q(**{f"{key}__{op}": value}) | Q(**{key: value, f"id__{op}": cursor.id}),
            **{f"{key}__{op}e": value},
        )
    order = [F(key).desc(), F("id").desc()] if descending else [F(key).asc(), F("id").asc()]
    return qs.order_by(*order)


def cursor_of(row: HttpAttempt, sort: str) -> str:
    if sort.lstrip("-") == "duration":
        value = row.duration_ms if row.duration_ms is not None else -1
    else:
        value = to_micros(row.occurred_at)
    return Cursor(value, row.pk).encode()


@dataclass
class AttemptPage:
    rows: list[HttpAttempt]
    next_query: str  # query string of the next page ("" on the last page)
    first_query: str  # query string of the first page (filters kept, cursor dropped)
    is_first: bool


def keyset_ids(
    qs: QuerySet[HttpAttempt],
    accounts: list[int],
    sort: str,
    cursor: Cursor | None,
    limit: int,
) -> list[int]:
    """Ids of the next `limit` rows: one index range scan per account, merged.

    `account_id IN (1, 2, 3)` on an (account, occurred_at) index makes PostgreSQL read every
    matching row and sort them; a LIMITed branch per account reads `limit` rows from each, and
    the global first page is always within the union of the per-account first pages.
    """
    key = sort_key(sort)
    order = [f"-{key}", "-id"] if sort.startswith("-") else [key, "id"]
    if not db_connection.features.supports_slicing_ordering_in_compound:
        # SQLite (a fresh checkout) cannot LIMIT inside a UNION: one plain query instead.
        plain = sorted_attempts(qs.filter(account_id__in=accounts), sort, cursor)
        return list(plain.values_list("id", flat=True)[:limit])
    branches = [
        sorted_attempts(qs.filter(account_id=account), sort, cursor).values_list("id", key)[:limit]
        for account in accounts
    ]
    if len(branches) <= 1:
        return [pk for branch in branches for pk, _ in branch]
    merged = branches[0].union(*branches[1:], all=True).order_by(*order)[:limit]
    return [pk for pk, _ in merged]


def attempt_page(form: AttemptFilterForm) -> AttemptPage:
    data = form.cleaned_data
    accounts = scoped_account_ids(data, form.choices)
    qs = filtered_attempts(data, form.choices)  # already scoped; the branches narrow further
    ids = keyset_ids(qs, accounts, form.ordering, data.get("after"), PAGE_SIZE + 1)
    found = (
        HttpAttempt.objects.filter(pk__in=ids)
        .select_related("execution__state_machine", "connection")
        .only(*LIST_FIELDS)
        .annotate(cause_head=Substr("cause", 1, 240))
    )
    by_id = {row.pk: row for row in found} if ids else {}
    rows: list[HttpAttempt] = [by_id[pk] for pk in ids if pk in by_id]
    filters = form.active_filters()
    next_query = ""
    if len(rows) > PAGE_SIZE:
        rows = rows[:PAGE_SIZE]
        next_query = urlencode({**filters, "after": cursor_of(rows[-1], form.ordering)})
    return AttemptPage(rows, next_query, urlencode(filters), data.get("after") is None)


# --- Failing attempts list and CSV ------------------------------------------------------------


@login_required
def attempt_list(request: HttpRequest) -> HttpResponse:
    choices = filter_choices(request.user)
    form = AttemptFilterForm(request.GET, choices=choices)
    if not form.is_valid():
        return bad_filters(request, form)
    data = form.cleaned_data
    view = data["view"]
    accounts = scoped_account_ids(data, choices)
    attempts = filtered_attempts(data, choices)
    filters = form.active_filters()
    # The planner misjudges how many rows a text search matches (a common word matches tens of
    # thousands), and an exact count reads every match: searches count exactly to fewer.
    limit = SEARCH_EXACT_COUNT_LIMIT if data.get("q") else None
    if view == "executions":
        page: AttemptPage | ExecutionPage
        page, matching = execution_page(form, accounts, attempts, PAGE_SIZE)
        total = total_of(matching, limit)
    else:
        page, total = attempt_page(form), total_of(attempts, limit)
    others = {k: v for k, v in filters.items() if k != "view"}
    context = {
        "form": form,
        "page": page,
        "view": view,
        "total": total,
        "filters": filters,
        "export_query": urlencode(others),
        "save_query": urlencode(filters),
        "executions_query": urlencode(others),
        "attempts_query": urlencode({**others, "view": "attempts"}),
        "sort_label": SORTS[form.ordering],
    }
    if not is_htmx(request):
        return render_page(request, "executions/list.html", context)
    response = render_page(request, "executions/partials/results.html", context)
    # The address bar gets the filters that are set, not every empty field the form sent, so
    # the URL stays short enough to paste into a ticket.
    shown = {
        **form.active_filters(),
        **({"after": request.GET["after"]} if "after" in request.GET else {}),
    }
    response["HX-Push-Url"] = request.path + (f"?{urlencode(shown)}" if shown else "")
    return response


@login_required
def export_csv(request: HttpRequest) -> HttpResponse | StreamingHttpResponse:
    choices = filter_choices(request.user)
    form = AttemptFilterForm(request.GET, choices=choices)
    if not form.is_valid():
        return bad_filters(request, form)
    data = form.cleaned_data
    qs = sorted_attempts(filtered_attempts(data, choices), form.ordering, data.get("after"))
    base_url = request.build_absolute_uri(reverse("executions:list"))
    rows = csv_rows(qs, base_url, default_redactor())
    response = StreamingHttpResponse(rows, content_type="text/csv")
    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    response["Content-Disposition"] = f'attachment; filename="failing-attempts-{stamp}.csv"'
    return response


def last_success_id() -> Subquery:
    """Id of the newest successful call to the same endpoint before this attempt: the same
    baseline the classifier's context compared it with (StoredContext)."""
    return Subquery(
        HttpAttempt.objects.filter(endpoint_id=OuterRef("endpoint_id"))
        .successes_before(OuterRef("occurred_at"))
        .values("id")[:1]
    )


def _with_connection(
    redactor: Redactor, attempt: HttpAttempt, built: dict[int, Redactor]
) -> Redactor:
    # Redacted again at render time with its connection's secret names too, as stored: one
    # redactor per connection (`built`), not per attempt, as an execution may hold hundreds.
    connection = attempt.connection
    if connection is None:
        return redactor
    if connection.pk not in built:
        built[connection.pk] = redactor.with_secret_names(connection.secret_parameter_names)
    return built[connection.pk]


@login_required
def execution_detail(request: HttpRequest, pk: int) -> HttpResponse:
    execution = get_object_or_404(
        with_account_but_no_secrets(
            Execution.objects.visible_to(request.user).select_related(
                "state_machine", "parent_execution", "map_run"
            )
        ),
        pk=pk,
    )  # fmt: skip
    attempts = list(
        execution.attempts.select_related("endpoint", "connection", "failure_group")
        .annotate(baseline_id=last_success_id())
        .order_by("occurred_at", "id")[: MAX_ATTEMPTS_SHOWN + 1]
    )
    truncated = len(attempts) > MAX_ATTEMPTS_SHOWN
    attempts = attempts[:MAX_ATTEMPTS_SHOWN]
    wanted = {a.baseline_id for a in attempts if a.is_failure and a.baseline_id}  # type: ignore[attr-defined]
    baselines = HttpAttempt.objects.in_bulk(wanted) if wanted else {}
    redactor = default_redactor()
    built: dict[int, Redactor] = {}
    views = [
        attempt_view(a, baselines.get(a.baseline_id), _with_connection(redactor, a, built))  # type: ignore[attr-defined]
        for a in attempts
    ]
    context = {
        "execution": execution,
        "machine": execution.state_machine,
        "attempts": views,
        "truncated": truncated,
        "console_url": console_url(execution),
        "cause": redactor.text(execution.cause),
        "redrive_note": redrive_note(execution),
        "events": event_timeline(execution, attempts, redactor),
        "lanes": attempt_lanes(attempts),
        "duration": execution_duration(execution),
        "assignments": assignment_views(execution, redactor, MAX_ASSIGNMENTS),
        "map_runs": map_run_sections(execution),
    }
    return render_page(request, "executions/detail.html", context)


# --- Failure groups ---------------------------------------------------------------------------


def daily_counts(group_ids: list[int], days: int) -> dict[int, list[int]]:
    """Failures per UTC day for each group over the last `days` days (one query)."""
    today = charts.floor_to(timezone.now(), charts.DAY)
    start = today - timedelta(days=days - 1)
    series = {pk: [0] * days for pk in group_ids}
    rows = (
        HttpAttempt.objects.filter(failure_group_id__in=group_ids, occurred_at__gte=start)
        .annotate(day=Trunc("occurred_at", "day", tzinfo=UTC))
        .values_list("failure_group_id", "day")
        .annotate(n=Count("id"))
        .order_by()
    )
    for group_id, day, n in rows:
        index = (day - start).days
        if group_id in series and 0 <= index < days:
            series[group_id][index] = n
    return series


TREND_WINDOW = timedelta(hours=24)


def with_trend(qs: QuerySet[FailureGroup]) -> QuerySet[FailureGroup]:
    """`recent` (failures in the last 24 h) and `trend` (recent minus the 24 h before): two
    index range scans (att_group) per listed group, whatever the size of the group."""
    now = timezone.now()

    def failures(start: Any, end: Any) -> Coalesce:
        counted = (
            HttpAttempt.objects.filter(
                failure_group=OuterRef("pk"), occurred_at__gte=start, occurred_at__lt=end
            )
            .order_by()
            .values("failure_group")
            .annotate(n=Count("id"))
            .values("n")
        )
        return Coalesce(Subquery(counted, output_field=IntegerField()), 0)

    recent = failures(now - TREND_WINDOW, now + TREND_WINDOW)
    before = failures(now - 2 * TREND_WINDOW, now - TREND_WINDOW)
    return qs.annotate(recent=recent, trend=recent - before)


@login_required
def group_list(request: HttpRequest) -> HttpResponse:
    form = GroupFilterForm(request.GET)
    if not form.is_valid():
        return bad_filters(request, form)
    data = form.cleaned_data
    qs: QuerySet[FailureGroup] = FailureGroup.objects.visible_to(request.user).select_related(
        "assignee"
    )
    status = data.get("status") or GroupStatus.OPEN
    if status != ANY_GROUP_STATUS:
        qs = qs.filter(status=status)
    if data.get("category"):
        qs = qs.filter(category=data["category"])
    if data.get("q"):
        qs = qs.filter(title__icontains=data["q"])
    sort = data["sort"]
    qs = with_trend(qs)
    column = {"last_seen": "last_seen_at", "count": "count", "trend": "trend"}[sort]
    cursor: Cursor | None = data.get("after")
    if cursor:
        seen = from_micros(cursor.value) if sort == "last_seen" else cursor.value
        qs = qs.filter(Q(**{f"{column}__lt": seen}) | Q(**{column: seen, "id__lt": cursor.id}))
    groups = list(qs.order_by(f"-{column}", "-id")[: GROUP_PAGE_SIZE + 1])
    next_query = ""
    if len(groups) > GROUP_PAGE_SIZE:
        groups = groups[:GROUP_PAGE_SIZE]
        last = groups[-1]
        value = to_micros(last.last_seen_at) if sort == "last_seen" else getattr(last, column)
        after = Cursor(value, last.pk).encode()
        next_query = urlencode({**form.active_filters(), "after": after})
    series = daily_counts([g.pk for g in groups], SPARK_DAYS)
    context = {
        "form": form,
        "rows": [GroupRow(g, group_sparkline(series[g.pk], SPARK_DAYS)) for g in groups],
        "status": status,
        "sort": sort,
        "next_query": next_query,
        "first_query": urlencode(form.active_filters()),
        "is_first": cursor is None,
    }
    return render_page(request, "executions/groups.html", context)


@login_required
def group_detail(request: HttpRequest, pk: int) -> HttpResponse:
    group = get_object_or_404(
        with_account_but_no_secrets(FailureGroup.objects.visible_to(request.user)).select_related(
            "connection", "endpoint", "assignee"
        ),
        pk=pk,
    )
    days = 30
    recent = list(
        # Not group.attempts: the related manager would set .failure_group on each row and
        # load the deferred failure_group_id one row at a time.
        HttpAttempt.objects.filter(failure_group_id=group.pk)
        .select_related("execution__state_machine", "connection")
        .only(*LIST_FIELDS)
        .annotate(cause_head=Substr("cause", 1, 240))
        .order_by("-occurred_at", "-id")[:PAGE_SIZE]
    )
    context = {
        "group": group,
        "spark": charts.sparkline(
            daily_counts([group.pk], days)[group.pk],
            width=360,
            height=48,
            title=f"failures per day, last {days} days",
        ),
        "recent": recent,
        "cascade_links": health.cascade_links([group], timezone.now()),
        "affected": group.attempts.aggregate(n=Count("execution_id", distinct=True))["n"],
        "can_triage": can_triage(request.user),
        "now": timezone.now(),
        "statuses": GroupStatus,
        "notes_form": notes_form(group),
        "map_runs": group_map_runs(group),
    }
    return render_page(request, "executions/group.html", context)


GROUP_ACTIONS = {
    "resolve": (GroupStatus.RESOLVED, "resolved"),
    "ignore": (GroupStatus.IGNORED, "ignored"),
    "reopen": (GroupStatus.OPEN, "reopened"),
}


@login_required
@require_POST
def group_action(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    group = get_object_or_404(FailureGroup.objects.visible_to(request.user), pk=pk)
    if not can_triage(request.user):
        raise PermissionDenied("You may not change failure groups.")
    status, verb = GROUP_ACTIONS[action]
    # A conditional UPDATE: two people clicking at once both succeed without a lost write.
    FailureGroup.objects.filter(pk=group.pk).update(status=status, status_changed_at=timezone.now())
    messages.success(request, f"Group {verb}.")
    return HttpResponseRedirect(group.get_absolute_url())


@login_required
@require_POST
def group_alerting(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    """Acknowledge, snooze (for `hours`, default 24) or mute a group: what it may raise."""
    group = get_object_or_404(FailureGroup.objects.visible_to(request.user), pk=pk)
    if not can_triage(request.user):
        raise PermissionDenied("You may not change failure groups.")
    now = timezone.now()
    if action == "snooze":
        form = SnoozeForm(request.POST)
        if not form.is_valid():
            return bad_filters(request, form, title="Invalid snooze")
        if form.cleaned_data["until_worse"]:
            rate = failures_last_hour([group.pk], now).get(group.pk, 0)
            FailureGroup.objects.filter(pk=group.pk).update(snoozed_rate=rate, snoozed_until=None)
            messages.success(
                request,
                f"Snoozed until it gets worse: more than {WORSE_FACTOR * rate} failure(s) in an"
                f" hour (the last hour had {rate}).",
            )
        else:
            until = now + timedelta(hours=form.cleaned_data["hours"] or 24)
            FailureGroup.objects.filter(pk=group.pk).update(snoozed_until=until, snoozed_rate=None)
            messages.success(request, f"Snoozed until {until:%Y-%m-%d %H:%M} UTC: no alerts.")
    elif action == "acknowledge":
        FailureGroup.objects.filter(pk=group.pk).update(acknowledged_at=now)
        messages.success(request, "Acknowledged.")
    else:
        FailureGroup.objects.filter(pk=group.pk).update(
            muted=action == "mute", snoozed_until=None, snoozed_rate=None
        )
        messages.success(request, "Muted: no alerts." if action == "mute" else "Alerts resumed.")
    return HttpResponseRedirect(group.get_absolute_url())
