"""Connection and endpoint pages: health, error timelines, latency, recent failures.

Pages on top of both apps (they read connections and the attempts through them), so they live
here rather than in connections, which the executions layer builds on.

Each page aggregates in SQL over the chosen window using the attempts' partial indexes
(connection ARN / endpoint + occurred_at), so its cost follows the window, not the table.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import reduce
from operator import or_
from typing import Any

from django.contrib.auth.decorators import login_required
from django.db import connection as db_connection
from django.db.models import (
    Case,
    Count,
    F,
    IntegerField,
    Max,
    Min,
    Q,
    QuerySet,
    Value,
    When,
    Window,
)
from django.db.models.functions import RowNumber, Substr
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.utils import timezone

from connections import health
from connections.choices import ConnectionState
from connections.deauthorization import INVALID_STATE, TRIGGER_ERRORS
from connections.models import (
    AwsAccount,
    Connection,
    ConnectionStateChange,
    Endpoint,
    with_account_but_no_secrets,
)
from dashboard.forms import WindowForm
from dashboard.trends import Percentile, trends
from dashboard.views import timeline, window_context
from executions import charts
from executions.choices import Outcome
from executions.history import is_failing_outcome, is_finished_outcome
from executions.models import (
    CUT_OFF,
    FAILING,
    FINISHED,
    FailureGroup,
    HttpAttempt,
    HttpAttemptQuerySet,
)
from executions.presenting import LIST_FIELDS, injected_parameters
from executions.redaction import default_redactor
from executions.web import bad_filters, render_page, visible_accounts

RECENT = 25
GROUPS = 20
# States in which every HTTP task through the connection fails: shaded on the timeline.
UNHEALTHY_STATES = frozenset(
    {
        ConnectionState.DEAUTHORIZED,
        ConnectionState.DEAUTHORIZING,
        ConnectionState.FAILED_CONNECTIVITY,
    }
)


def recent_failures(qs: HttpAttemptQuerySet) -> list[HttpAttempt]:
    return list(
        qs.failing()
        .select_related("execution__state_machine", "connection")
        .only(*LIST_FIELDS)
        .annotate(cause_head=Substr("cause", 1, 240))
        .order_by("-occurred_at", "-id")[:RECENT]
    )


def window_or_400(request: HttpRequest) -> tuple[WindowForm, HttpResponse | None]:
    form = WindowForm(request.GET)
    if not form.is_valid():
        return form, bad_filters(request, form, title="Invalid time window")
    return form, None


# --- Connections ------------------------------------------------------------------------------


@dataclass
class ConnectionRow:
    connection: Connection
    failures: int


@login_required
def connection_list(request: HttpRequest) -> HttpResponse:
    form, error = window_or_400(request)
    if error:
        return error
    context = window_context(form)
    ids = list(visible_accounts(request.user).values_list("pk", flat=True))
    connections = list(
        Connection.objects.filter(account_id__in=ids)
        .select_related("account")
        .only("id", "arn", "name", "region", "state", "authorization_type", "account__name")
        .order_by("name", "id")
    )
    counts = dict(
        HttpAttempt.objects.failing()
        .filter(
            account_id__in=ids,
            occurred_at__gte=context["window_start"],
            occurred_at__lt=context["window_end"],
        )
        .exclude(connection_arn="")
        .values_list("connection_arn")
        .annotate(n=Count("id"))
        .order_by()
    )
    rows = [ConnectionRow(c, counts.get(c.arn, 0)) for c in connections]
    rows.sort(key=lambda r: (-r.failures, r.connection.name))
    context.update(rows=rows)
    return render_page(request, "connections/list.html", context)


def deauthorized_intervals(
    connection: Connection, changes: list[ConnectionStateChange]
) -> list[tuple[datetime, datetime | None, str]]:
    """Stretches spent in a failing state, from the recorded state history.

    A connection that is unhealthy now but has no recorded change is shaded from its last AWS
    modification time, the best start we know.
    """
    intervals: list[tuple[datetime, datetime | None, str]] = []
    opened: ConnectionStateChange | None = None
    for change in changes:
        bad = change.state in UNHEALTHY_STATES
        if bad and opened is None:
            opened = change
        elif not bad and opened is not None:
            intervals.append(
                (opened.changed_at, change.changed_at, _interval_title(opened, change))
            )
            opened = None
    if opened is not None:
        intervals.append((opened.changed_at, None, _interval_title(opened, None)))
    elif not changes and connection.state in UNHEALTHY_STATES and connection.aws_modified_at:
        intervals.append(
            (
                connection.aws_modified_at,
                None,
                f"{connection.state} since {connection.aws_modified_at:%Y-%m-%d %H:%M} UTC",
            )
        )
    return intervals


def _interval_title(opened: ConnectionStateChange, closed: ConnectionStateChange | None) -> str:
    until = f"{closed.changed_at:%Y-%m-%d %H:%M} UTC" if closed else "now"
    reason = f": {opened.reason}" if opened.reason else ""
    return f"{opened.state} from {opened.changed_at:%Y-%m-%d %H:%M} UTC to {until}{reason}"


def endpoints_of(connection: Connection, start: datetime, end: datetime) -> list[dict[str, Any]]:
    return list(
        HttpAttempt.objects.filter(
            connection_id=connection.pk, occurred_at__gte=start, occurred_at__lt=end
        )
        .filter(endpoint__isnull=False)
        .values("endpoint_id", "endpoint__method", "endpoint__url_template")
        .annotate(
            # Finished calls only: a call cut off is no call the endpoint answered or failed.
            total=Count("id", filter=FINISHED),
            failures=Count("id", filter=FAILING),
            aborted=Count("id", filter=CUT_OFF),
        )
        .order_by("-failures", "-total", "endpoint_id")[:GROUPS]
    )


# --- Cascade: what de-authorized the connection and what failed because of it ---------------


TRIGGER_FIELDS = (
    "id", "occurred_at", "status_code", "error", "method", "url", "account_id", "execution_id",
    "endpoint_id", "account__name", "execution__name", "execution__state_machine_id",
    "execution__state_machine__name", "endpoint__method", "endpoint__url_template",
)  # fmt: skip


def _segment_case(ranges: dict[int, Q]) -> Case:
    whens = [When(q, then=Value(index)) for index, q in ranges.items()]
    return Case(*whens, default=None, output_field=IntegerField())


def cascade_hits(attempts: HttpAttemptQuerySet, plan: health.Plan) -> list[health.MachineHit]:
    """InvalidConnectionState failures per segment × state machine × account (one query)."""
    ranges = {
        s.index: Q(occurred_at__gte=s.since, **({"occurred_at__lt": s.until} if s.until else {}))
        for s in plan.segments
    }
    rows = (
        attempts.filter(error=INVALID_STATE, occurred_at__gte=plan.horizon)
        .annotate(segment=_segment_case(ranges))
        .filter(segment__isnull=False)
        .values_list(
            "segment",
            "execution__state_machine_id",
            "execution__state_machine__name",
            "execution__state_machine__region",
            "account_id",
            "account__name",
        )
        .annotate(
            failures=Count("id"),
            executions=Count("execution_id", distinct=True),
            first_at=Min("occurred_at"),
            last_at=Max("occurred_at"),
        )
        .order_by()
    )
    return [health.MachineHit(*row) for row in rows]


def cascade_triggers(
    attempts: HttpAttemptQuerySet, windows: dict[int, tuple[datetime, datetime]], latest: bool
) -> dict[int, health.Trigger]:
    """The 401/407 answer that de-authorized the connection, per segment (one query)."""
    if not windows:
        return {}
    ranges = {i: Q(occurred_at__gte=a, occurred_at__lte=b) for i, (a, b) in windows.items()}
    order = (
        [F("occurred_at").desc(), F("id").desc()]
        if latest
        else [F("occurred_at").asc(), F("id").asc()]
    )
    rows = (
        attempts.filter(error__in=TRIGGER_ERRORS)
        .filter(reduce(or_, ranges.values()))
        .annotate(segment=_segment_case(ranges))
        .annotate(rank=Window(RowNumber(), partition_by=[F("segment")], order_by=order))
        .filter(rank=1)
        .select_related("account", "execution__state_machine", "endpoint")
        .only(*TRIGGER_FIELDS)
    )
    redactor = default_redactor()
    return {row.segment: _trigger(row, redactor.url(row.url)) for row in rows}  # type: ignore[attr-defined]


def _trigger(row: HttpAttempt, url: str) -> health.Trigger:
    machine = row.execution.state_machine
    return health.Trigger(
        attempt_id=row.pk,
        at=row.occurred_at,
        status_code=row.status_code,
        error=row.error,
        method=row.endpoint.method if row.endpoint else row.method,
        endpoint_id=row.endpoint_id,
        endpoint=row.endpoint.url_template if row.endpoint else url,
        state_machine_id=machine.pk,
        state_machine=machine.name,
        execution_id=row.execution_id,
        execution=row.execution.name,
        account=row.account.name,
    )


@dataclass
class Cascade:
    episodes: list[health.Episode]
    hidden: int  # older de-authorizations in the window, not shown

    @property
    def ongoing(self) -> bool:
        return any(e.ongoing for e in self.episodes)


def cascade(
    connection: Connection,
    changes: list[ConnectionStateChange],
    visible: QuerySet[AwsAccount],
    start: datetime,
    end: datetime,
) -> Cascade:
    """De-authorization episodes overlapping the window: at most two queries, whatever the
    number of failures, over the accounts the user may see (a connection may be called from
    several)."""
    auth = connection.authorization_type
    deauths = health.deauthorizations(
        changes,
        current_state=connection.state,
        current_reason=connection.state_reason,
        modified_at=connection.aws_modified_at,
    )
    plan = health.plan(deauths, start, end, auth)
    if not plan.segments:
        return Cascade([], plan.hidden)
    attempts = HttpAttempt.objects.failing().filter(
        connection_arn=connection.arn, account__in=visible
    )
    hits = cascade_hits(attempts, plan)
    windows = health.trigger_windows(plan, hits, auth)
    triggers = cascade_triggers(attempts, windows, health.latest_trigger_wins(auth))
    return Cascade(health.episodes(plan, hits, triggers, connection.arn), plan.hidden)


@login_required
def connection_detail(request: HttpRequest, pk: int) -> HttpResponse:
    connection = get_object_or_404(
        with_account_but_no_secrets(
            Connection.objects.filter(account__in=visible_accounts(request.user))
        ),
        pk=pk,
    )  # fmt: skip
    form, error = window_or_400(request)
    if error:
        return error
    context = window_context(form)
    start, end = context["window_start"], context["window_end"]
    changes = list(connection.changes.order_by("changed_at", "id"))
    attempts = HttpAttempt.objects.filter(
        account_id=connection.account_id, connection_arn=connection.arn
    )
    context.update(
        connection=connection,
        cascade=cascade(connection, changes, visible_accounts(request.user), start, end),
        changes=changes[::-1],
        chart=timeline(attempts.failing(), start, end, deauthorized_intervals(connection, changes)),
        # All calls through it (connection_id: the att_connection_all index), not only failures.
        trends=trends(HttpAttempt.objects.filter(connection_id=connection.pk), start, end),
        endpoints=endpoints_of(connection, start, end),
        groups=list(
            FailureGroup.objects.filter(account_id=connection.account_id)
            .filter(Q(connection_id=connection.pk) | Q(connection_arn=connection.arn))
            .select_related("endpoint")
            .order_by("-last_seen_at", "-id")[:GROUPS]
        ),
        recent=recent_failures(attempts),
        list_query=f"connection={connection.arn}",
        injected_parameters=injected_parameters(connection.invocation_parameter_names),
    )
    return render_page(request, "connections/detail.html", context)


# --- Endpoints --------------------------------------------------------------------------------


def latency(attempts: QuerySet[HttpAttempt]) -> dict[str, float | None]:
    """p50/p95 of the finished, timed calls: an aborted call's time is only until the cut."""
    timed = attempts.filter(FINISHED, duration_ms__isnull=False)
    if db_connection.vendor == "postgresql":
        result = timed.aggregate(
            p50=Percentile("duration_ms", 0.5), p95=Percentile("duration_ms", 0.95)
        )
        return {"p50": result["p50"], "p95": result["p95"]}
    # SQLite (a fresh checkout) has no PERCENTILE_CONT: estimate from the newest calls.
    newest = timed.order_by("-occurred_at").values_list("duration_ms", flat=True)[:5000]
    values = sorted(v for v in newest if v is not None)
    if not values:
        return {"p50": None, "p95": None}
    return {
        "p50": float(values[len(values) // 2]),
        "p95": float(values[min(len(values) - 1, int(len(values) * 0.95))]),
    }


@dataclass
class StatusRow:
    label: str
    outcome: str
    count: int
    width: float
    query: str  # the list filter for this status ("" when the list would show nothing)


def status_mix(attempts: QuerySet[HttpAttempt]) -> list[StatusRow]:
    rows = list(
        attempts.values_list("status_code", "outcome").annotate(n=Count("id")).order_by("-n")
    )
    widths = charts.proportions([n for _, _, n in rows])
    mix = []
    for (code, outcome, n), width in zip(rows, widths, strict=True):
        failing = is_failing_outcome(outcome)
        label = str(code) if code is not None else "no response"
        query = f"status={code if code is not None else 'none'}" if failing else ""
        mix.append(StatusRow(label, outcome, n, width, query))
    return mix


@login_required
def endpoint_detail(request: HttpRequest, pk: int) -> HttpResponse:
    endpoint = get_object_or_404(
        with_account_but_no_secrets(
            Endpoint.objects.filter(account__in=visible_accounts(request.user))
        ),
        pk=pk,
    )  # fmt: skip
    form, error = window_or_400(request)
    if error:
        return error
    context = window_context(form)
    start, end = context["window_start"], context["window_end"]
    attempts = HttpAttempt.objects.filter(account_id=endpoint.account_id, endpoint_id=endpoint.pk)
    in_window = attempts.filter(occurred_at__gte=start, occurred_at__lt=end)
    mix = status_mix(in_window)
    # The rate is over finished calls; the aborted ones are said beside it (from the same mix).
    total = sum(r.count for r in mix if is_finished_outcome(r.outcome))
    aborted = sum(r.count for r in mix if r.outcome == Outcome.ABORTED)
    failures = sum(r.count for r in mix if r.query)
    groups = list(
        FailureGroup.objects.filter(account_id=endpoint.account_id, endpoint_id=endpoint.pk)
        .select_related("connection")
        .order_by("-last_seen_at", "-id")[:GROUPS]
    )
    context.update(
        endpoint=endpoint,
        chart=timeline(attempts.failing(), start, end),
        latency=latency(in_window),
        trends=trends(attempts, start, end),
        mix=mix,
        total=total,
        aborted=aborted,
        failures=failures,
        failure_rate=(failures / total * 100) if total else None,
        groups=groups,
        cascade_links=health.cascade_links(groups, timezone.now()),
        recent=recent_failures(attempts),
        list_query=f"endpoint={endpoint.pk}",
    )
    return render_page(request, "connections/endpoint.html", context)
