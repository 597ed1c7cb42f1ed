"""The REST API (/api/v1/): the pages' data as JSON, with the pages' filters, scoping and paging.

Each view is the JSON twin of a page: it validates the same form, calls the same query
functions (executions.views, dashboard.connection_views) and scopes through the same
`visible_accounts`, so another account's object is a 404 here exactly as on the page.
Lists use keyset pagination; `next` is the next page's URL with the filters kept.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, TypeVar
from urllib.parse import urlencode

from django import forms
from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet
from django.db.models.functions import Substr
from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.decorators import api_view
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response

from api import serializers as s
from api.errors import BadFilters
from api.forms import (
    ConnectionFilterForm,
    EndpointFilterForm,
    ExecutionFilterForm,
    GroupStatusForm,
    SyncRunFilterForm,
)
from connections.models import (
    Connection,
    Endpoint,
    SyncRun,
    secret_parameter_names,
    with_account_but_no_secrets,
)
from dashboard.connection_views import cascade, endpoints_of, latency
from dashboard.forms import WindowForm
from executions.choices import GroupStatus, Outcome
from executions.forms import AttemptFilterForm, Cursor, GroupFilterForm, from_micros, to_micros
from executions.history import is_finished_outcome
from executions.map_run_views import map_run_rows
from executions.models import Execution, FailureGroup, HttpAttempt
from executions.presenting import LIST_FIELDS, parsed, parsed_query
from executions.redaction import Redactor, default_redactor
from executions.search import search_executions
from executions.views import (
    MAX_ATTEMPTS_SHOWN,
    PAGE_SIZE,
    attempt_page,
    filter_choices,
)
from executions.web import can_triage, visible_accounts

F_ = TypeVar("F_", bound=forms.Form)
ERRORS = {400: s.ErrorSerializer, 401: s.ErrorSerializer, 403: s.ErrorSerializer}
NOT_FOUND = {**ERRORS, 404: s.ErrorSerializer}


def params(form: type[forms.Form]) -> list[OpenApiParameter]:
    """The form's fields as query parameters: the schema documents exactly what is validated."""
    return [
        OpenApiParameter(name, str, description=str(field.label or ""))
        for name, field in form.base_fields.items()
    ]


def valid(form: F_) -> F_:
    if not form.is_valid():
        raise BadFilters(form)
    return form


def next_url(request: Request, form: forms.Form, after: str) -> str:
    kept = {k: str(v) for k, v in form.data.items() if k != "after" and v not in (None, "")}
    return request.build_absolute_uri(f"{request.path}?{urlencode({**kept, 'after': after})}")


M = TypeVar("M", bound=Any)


def keyset(
    request: Request, form: forms.Form, qs: QuerySet[M], key: str, *, by_time: bool
) -> tuple[list[M], str | None]:
    """Newest (or highest) first by (key, id), starting after the form's cursor."""
    cursor: Cursor | None = form.cleaned_data.get("after")
    if cursor:
        value = from_micros(cursor.value) if by_time else cursor.value
        qs = qs.filter(Q(**{f"{key}__lt": value}) | Q(**{key: value, "id__lt": cursor.id}))
    rows = list(qs.order_by(F(key).desc(), F("id").desc())[: PAGE_SIZE + 1])
    if len(rows) <= PAGE_SIZE:
        return rows, None
    rows, last = rows[:PAGE_SIZE], rows[PAGE_SIZE - 1]
    value = to_micros(getattr(last, key)) if by_time else getattr(last, key)
    return rows, next_url(request, form, Cursor(value, last.pk).encode())


class Redactors:
    """The Redactor for each attempt's connection (its secret parameter names added), with the
    connections' names read in one query for a whole page rather than one per row."""

    def __init__(self, attempts: list[HttpAttempt]) -> None:
        self.base = default_redactor()
        ids = {a.connection_id for a in attempts if a.connection_id}
        names = Connection.objects.filter(pk__in=ids).values_list(
            "pk", "invocation_parameter_names"
        )
        self.by_connection = {
            pk: self.base.with_secret_names(secret_parameter_names(value)) for pk, value in names
        }

    def of(self, attempt: HttpAttempt) -> Redactor:
        return self.by_connection.get(attempt.connection_id or 0, self.base)


def redacted(attempts: list[HttpAttempt], *, payloads: bool) -> list[HttpAttempt]:
    """The rows with what they show redacted again (in memory only; never saved)."""
    redactors = Redactors(attempts)
    for attempt in attempts:
        redactor = redactors.of(attempt)
        attempt.url = redactor.url(attempt.url)
        attempt.error = redactor.text(attempt.error)
        if payloads:
            attempt.cause = redactor.text(attempt.cause)
            attempt.request_headers = redactor.value(attempt.request_headers)
            attempt.request_query = redactor.value(parsed_query(attempt.request_query))
            attempt.request_body = redactor.value(parsed(attempt.request_body))
            attempt.response_headers = redactor.value(attempt.response_headers)
            attempt.response_body = redactor.value(parsed(attempt.response_body))
            attempt.evidence = redactor.value(attempt.evidence)
    return attempts


# --- Attempts and executions ------------------------------------------------------------------


@extend_schema(
    operation_id="attempt_list",
    parameters=params(AttemptFilterForm),
    responses={200: s.AttemptPage, **ERRORS},
)
@api_view(["GET"])
def attempt_list(request: Request) -> Response:
    form = valid(AttemptFilterForm(request.GET, choices=filter_choices(request.user)))
    page = attempt_page(form)
    rows = redacted(page.rows, payloads=False)
    nxt = (
        request.build_absolute_uri(f"{request.path}?{page.next_query}") if page.next_query else None
    )
    return Response({"results": s.AttemptSerializer(rows, many=True).data, "next": nxt})


@extend_schema(
    operation_id="attempt_detail", responses={200: s.AttemptDetailSerializer, **NOT_FOUND}
)
@api_view(["GET"])
def attempt_detail(request: Request, pk: int) -> Response:
    attempt = get_object_or_404(HttpAttempt.objects.visible_to(request.user), pk=pk)
    return Response(s.AttemptDetailSerializer(redacted([attempt], payloads=True)[0]).data)


@extend_schema(
    operation_id="execution_list",
    parameters=params(ExecutionFilterForm),
    responses={200: s.ExecutionPage, **ERRORS},
)
@api_view(["GET"])
def execution_list(request: Request) -> Response:
    form = valid(ExecutionFilterForm(request.GET))
    data = form.cleaned_data
    qs = Execution.objects.filter(account__in=visible_accounts(request.user))
    exact = {
        "account_id": data.get("account"),
        "state_machine_id": data.get("state_machine"),
        "state_machine__region": data.get("region"),
        "status": data.get("status"),
        "start_date__gte": data.get("since"),
        "start_date__lt": data.get("until"),
    }
    qs = qs.filter(**{k: v for k, v in exact.items() if v not in (None, "")})
    failed = {
        "connection_arn": data.get("connection"),
        "endpoint_id": data.get("endpoint"),
        "category": data.get("category"),
    }
    failed = {k: v for k, v in failed.items() if v not in (None, "")}
    if data.get("q"):  # the executions page's search, over the same failing attempts
        accounts = list(visible_accounts(request.user).values_list("pk", flat=True))
        attempts = HttpAttempt.objects.failing().filter(account_id__in=accounts, **failed)
        qs = search_executions(qs, data["q"], attempts)
    if failed:
        failing = HttpAttempt.objects.failing().filter(execution_id=OuterRef("pk"), **failed)
        qs = qs.filter(Exists(failing))
    rows, nxt = keyset(
        request, form, qs.defer("cause", "parse_problems"), "start_date", by_time=True
    )
    return Response({"results": s.ExecutionSerializer(rows, many=True).data, "next": nxt})


@extend_schema(
    operation_id="execution_detail", responses={200: s.ExecutionDetailSerializer, **NOT_FOUND}
)
@api_view(["GET"])
def execution_detail(request: Request, pk: int) -> Response:
    execution = get_object_or_404(Execution.objects.visible_to(request.user), pk=pk)
    attempts = list(execution.attempts.order_by("occurred_at", "id")[: MAX_ATTEMPTS_SHOWN + 1])
    redactor = default_redactor()
    execution.error = redactor.text(execution.error)
    body = dict(s.ExecutionSerializer(execution).data)
    body.update(
        cause=redactor.text(execution.cause),
        attempts=s.AttemptDetailSerializer(
            redacted(attempts[:MAX_ATTEMPTS_SHOWN], payloads=True),
            many=True,
        ).data,
        attempts_truncated=len(attempts) > MAX_ATTEMPTS_SHOWN,
        map_runs=s.MapRunSerializer(map_run_rows(execution), many=True).data,
    )
    return Response(body)


# --- Failure groups ---------------------------------------------------------------------------


@extend_schema(
    operation_id="group_list",
    parameters=params(GroupFilterForm),
    responses={200: s.GroupPage, **ERRORS},
)
@api_view(["GET"])
def group_list(request: Request) -> Response:
    form = valid(GroupFilterForm(request.GET))
    data = form.cleaned_data
    qs = FailureGroup.objects.visible_to(request.user)
    status = data.get("status") or GroupStatus.OPEN
    if status != "all":
        qs = qs.filter(status=status)
    if data.get("category"):
        qs = qs.filter(category=data["category"])
    if data.get("q"):
        qs = qs.filter(title__icontains=data["q"])
    rows, nxt = keyset(request, form, qs, "last_seen_at", by_time=True)
    return Response({"results": s.GroupSerializer(rows, many=True).data, "next": nxt})


def _group_body(group: FailureGroup) -> dict[str, Any]:
    recent = list(
        HttpAttempt.objects.filter(failure_group_id=group.pk)
        .select_related("execution__state_machine", "connection")
        .only(*LIST_FIELDS)
        .annotate(cause_head=Substr("cause", 1, 240))
        .order_by("-occurred_at", "-id")[:PAGE_SIZE]
    )
    body = dict(s.GroupSerializer(group).data)
    body["affected_executions"] = group.attempts.aggregate(n=Count("execution_id", distinct=True))[
        "n"
    ]
    body["recent_attempts"] = s.AttemptSerializer(redacted(recent, payloads=False), many=True).data
    return body


@extend_schema(operation_id="group_detail", responses={200: s.GroupDetailSerializer, **NOT_FOUND})
@api_view(["GET"])
def group_detail(request: Request, pk: int) -> Response:
    group = get_object_or_404(FailureGroup.objects.visible_to(request.user), pk=pk)
    return Response(_group_body(group))


@extend_schema(
    operation_id="group_status",
    request=s.GroupStatusSerializer,
    responses={200: s.GroupDetailSerializer, **NOT_FOUND},
    description="Resolve, ignore or reopen a group (needs executions.change_failuregroup).",
)
@api_view(["POST"])
def group_status(request: Request, pk: int) -> Response:
    group = get_object_or_404(FailureGroup.objects.visible_to(request.user), pk=pk)
    if not can_triage(request.user):
        raise PermissionDenied("You may not change failure groups.")
    data = request.data if isinstance(request.data, dict) else {}
    form = GroupStatusForm({"status": data.get("status")})
    if not form.is_valid():
        raise BadFilters(form, "Invalid status.")
    # The same conditional UPDATE as the page's buttons: concurrent changes lose no write.
    FailureGroup.objects.filter(pk=group.pk).update(
        status=form.cleaned_data["status"], status_changed_at=timezone.now()
    )
    group.refresh_from_db()
    return Response(_group_body(group))


# --- Connections, endpoints, sync runs --------------------------------------------------------


@extend_schema(
    operation_id="connection_list",
    parameters=params(ConnectionFilterForm),
    responses={200: s.ConnectionPage, **ERRORS},
)
@api_view(["GET"])
def connection_list(request: Request) -> Response:
    form = valid(ConnectionFilterForm(request.GET))
    data = form.cleaned_data
    start, end = form.bounds()
    ids = list(visible_accounts(request.user).values_list("pk", flat=True))
    qs = Connection.objects.filter(account_id__in=ids)
    exact = {"account_id": data.get("account"), "region": data.get("region")}
    qs = qs.filter(**{k: v for k, v in exact.items() if v not in (None, "")})
    if data.get("state"):
        qs = qs.filter(state=data["state"])
    rows, nxt = keyset(request, form, qs.defer("invocation_parameter_names"), "id", by_time=False)
    counts = dict(
        HttpAttempt.objects.failing()
        .filter(account_id__in=ids, occurred_at__gte=start, occurred_at__lt=end)
        .filter(connection_arn__in=[c.arn for c in rows])
        .values_list("connection_arn")
        .annotate(n=Count("id"))
        .order_by()
    )
    for row in rows:
        row.failures = counts.get(row.arn, 0)  # type: ignore[attr-defined]
    return Response({"results": s.ConnectionSerializer(rows, many=True).data, "next": nxt})


@extend_schema(
    operation_id="connection_detail",
    parameters=params(WindowForm),
    responses={200: s.ConnectionDetailSerializer, **NOT_FOUND},
)
@api_view(["GET"])
def connection_detail(request: Request, pk: int) -> Response:
    visible = visible_accounts(request.user)
    connection = get_object_or_404(
        with_account_but_no_secrets(Connection.objects.filter(account__in=visible)), pk=pk
    )
    form = valid(WindowForm(request.GET))
    start, end = form.bounds()
    changes = list(connection.changes.order_by("changed_at", "id"))
    connection.failures = (  # type: ignore[attr-defined]
        HttpAttempt.objects.failing()
        .filter(account_id=connection.account_id, connection_arn=connection.arn)
        .filter(occurred_at__gte=start, occurred_at__lt=end)
        .count()
    )
    body = dict(s.ConnectionSerializer(connection).data)
    found = cascade(connection, changes, visible, start, end)
    body.update(
        window_start=start,
        window_end=end,
        state_history=s.StateChangeSerializer(changes[::-1], many=True).data,
        cascade={"episodes": [asdict(e) for e in found.episodes], "hidden": found.hidden},
        endpoints=endpoints_of(connection, start, end),
    )
    return Response(body)


@extend_schema(
    operation_id="endpoint_list",
    parameters=params(EndpointFilterForm),
    responses={200: s.EndpointPage, **ERRORS},
)
@api_view(["GET"])
def endpoint_list(request: Request) -> Response:
    form = valid(EndpointFilterForm(request.GET))
    data = form.cleaned_data
    qs = Endpoint.objects.filter(account__in=visible_accounts(request.user))
    if data.get("account"):
        qs = qs.filter(account_id=data["account"])
    if data.get("q"):
        qs = qs.filter(url_template__icontains=data["q"])
    rows, nxt = keyset(request, form, qs, "id", by_time=False)
    return Response({"results": s.EndpointSerializer(rows, many=True).data, "next": nxt})


@extend_schema(
    operation_id="endpoint_detail",
    parameters=params(WindowForm),
    responses={200: s.EndpointDetailSerializer, **NOT_FOUND},
)
@api_view(["GET"])
def endpoint_detail(request: Request, pk: int) -> Response:
    endpoint = get_object_or_404(
        Endpoint.objects.filter(account__in=visible_accounts(request.user)), pk=pk
    )
    form = valid(WindowForm(request.GET))
    start, end = form.bounds()
    in_window = HttpAttempt.objects.filter(
        account_id=endpoint.account_id,
        endpoint_id=endpoint.pk,
        occurred_at__gte=start,
        occurred_at__lt=end,
    )
    # The page's status_mix adds bar widths and list links; the API wants the plain counts.
    mix = list(
        in_window.values("status_code", "outcome").annotate(count=Count("id")).order_by("-count")
    )
    failing = in_window.failing().count()
    body = dict(s.EndpointSerializer(endpoint).data)
    body.update(
        window_start=start,
        window_end=end,
        # As on the page: the rate's denominator is the finished calls, the aborted apart.
        total=sum(r["count"] for r in mix if is_finished_outcome(r["outcome"])),
        failures=failing,
        aborted=sum(r["count"] for r in mix if r["outcome"] == Outcome.ABORTED),
        latency_ms=latency(in_window),
        status_mix=mix,
    )
    return Response(body)


@extend_schema(
    operation_id="sync_run_list",
    parameters=params(SyncRunFilterForm),
    responses={200: s.SyncRunPage, **ERRORS},
)
@api_view(["GET"])
def sync_run_list(request: Request) -> Response:
    form = valid(SyncRunFilterForm(request.GET))
    qs = SyncRun.objects.filter(account__in=visible_accounts(request.user))
    if form.cleaned_data.get("account"):
        qs = qs.filter(account_id=form.cleaned_data["account"])
    rows, nxt = keyset(request, form, qs, "started_at", by_time=True)
    return Response({"results": s.SyncRunSerializer(rows, many=True).data, "next": nxt})
