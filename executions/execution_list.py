"""The failing-executions list: one row per execution, its failing attempts collapsed, and the
total that matches a filter (exact while cheap, the planner's estimate past a threshold).

The attempt filters of /executions/ apply here too: an execution is listed when one of its
failing attempts matches them. A failure known only from ListExecutions (its history not read
yet, executions/sync/listing.py) is listed too, as "failed — not yet inspected" with the HTTP
states its machine's definition names, until an attempt-only filter asks for what it cannot say. Pages are keyset-paginated on (start_date, id), newest first,
over the partial index exec_failing_new_start; three queries fill a page whatever its size (a
fourth reads the definitions of the machines of rows not inspected yet).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from django.db import connection as db_connection
from django.db.models import Count, Exists, Max, OuterRef, Q, QuerySet

from executions.choices import Category
from executions.classify.titles import connection_label
from executions.forms import AttemptFilterForm, Cursor, from_micros, to_micros
from executions.history import http_states_from_definition
from executions.models import Execution, HttpAttempt, StateMachine

# Above this many matching rows (by the planner's estimate) the page shows the estimate,
# labelled as one, instead of running an exact COUNT over a large share of 1M attempts.
EXACT_COUNT_LIMIT = 5_000


@dataclass(frozen=True)
class Total:
    value: int
    estimated: bool


def total_of(qs: QuerySet[Any], limit: int | None = None) -> Total:
    """How many rows `qs` matches: exact when the planner expects at most `limit`, else its
    estimate (EXPLAIN costs no scan). SQLite (a fresh checkout) always counts."""
    limit = EXACT_COUNT_LIMIT if limit is None else limit
    if db_connection.vendor != "postgresql":
        return Total(qs.count(), False)
    try:
        plan = json.loads(qs.order_by().explain(format="json"))
    except ValueError:  # nothing to explain: a filter that can match nothing (no account)
        return Total(qs.count(), False)
    estimate = int(plan[0]["Plan"]["Plan Rows"])
    if estimate > limit:
        return Total(estimate, True)
    # The estimate can be low by orders of magnitude; the exact count is capped at the limit
    # so a bad guess still costs at most `limit` rows read.
    exact = qs.order_by().values("pk")[: limit + 1].count()
    return (
        Total(exact, False)
        if exact <= limit
        else Total(estimate if estimate > exact else exact, True)
    )


@dataclass(frozen=True)
class FailedState:
    name: str
    category: str
    category_label: str
    attempts: int


@dataclass
class ExecutionRow:
    execution: Execution
    states: list[FailedState] = field(default_factory=list)
    attempts: int = 0
    last_error: str = ""
    last_status: int | None = None
    last_failed_at: datetime | None = None
    connections: list[str] = field(default_factory=list)
    # Not inspected yet: the HTTP states its machine's definition has (what may have failed).
    http_states: list[str] = field(default_factory=list)

    @property
    def duration_seconds(self) -> float | None:
        e = self.execution
        return (e.stop_date - e.start_date).total_seconds() if e.stop_date else None


@dataclass
class ExecutionPage:
    rows: list[ExecutionRow]
    next_query: str
    first_query: str
    is_first: bool


# The attempt filters that narrow executions only through their attempts.
ATTEMPT_ONLY = ("connection", "endpoint", "category", "status", "since", "until", "q")


def failing_executions(
    data: dict[str, Any], accounts: list[int], attempts: QuerySet[HttpAttempt]
) -> QuerySet[Execution]:
    """Executions with a failing attempt that matches the filters (`attempts`, already
    filtered and scoped); without attempt-only filters, no subquery is needed at all."""
    qs = Execution.objects.failing_or_uninspected().filter(account_id__in=accounts)
    if data.get("state_machine"):
        qs = qs.filter(state_machine_id=data["state_machine"])
    if data.get("region"):
        qs = qs.filter(state_machine__region=data["region"])
    if any(data.get(name) not in (None, "") for name in ATTEMPT_ONLY):
        qs = qs.filter(Exists(attempts.filter(execution_id=OuterRef("pk"))))
    return qs


def _ordered(qs: QuerySet[Execution], cursor: Cursor | None, newest: bool) -> QuerySet[Execution]:
    if cursor:
        at, op = from_micros(cursor.value), ("lt" if newest else "gt")
        qs = qs.filter(
            Q(**{f"start_date__{op}": at}) | Q(start_date=at, **{f"id__{op}": cursor.id}),
            **{f"start_date__{op}e": at},
        )
    return qs.order_by(*(("-start_date", "-id") if newest else ("start_date", "id")))


def _summaries(ids: list[int]) -> dict[int, ExecutionRow]:
    """The failing attempts of the listed executions, collapsed: two queries for the page."""
    labels = dict(Category.choices)
    rows: dict[int, ExecutionRow] = {}
    failing = HttpAttempt.objects.failing().filter(execution_id__in=ids)
    per_state = (
        failing.values("execution_id", "state_name", "category", "connection_arn")
        .annotate(n=Count("id"), last=Max("occurred_at"))
        .order_by("execution_id", "last")
    )
    for r in per_state:
        row = rows.setdefault(r["execution_id"], ExecutionRow(execution=Execution()))
        row.attempts += r["n"]
        key = (r["state_name"], r["category"])
        found = next((s for s in row.states if (s.name, s.category) == key), None)
        if found:
            row.states[row.states.index(found)] = FailedState(
                found.name, found.category, found.category_label, found.attempts + r["n"]
            )
        else:
            row.states.append(
                FailedState(r["state_name"], r["category"], labels.get(r["category"], "—"), r["n"])
            )
        label = connection_label(r["connection_arn"]) if r["connection_arn"] else ""
        if label and label not in row.connections:
            row.connections.append(label)
    newest = (
        failing.order_by("execution_id", "-occurred_at", "-id")
        .distinct("execution_id")
        .values("execution_id", "error", "status_code", "occurred_at")
        if db_connection.vendor == "postgresql"
        else failing.order_by("execution_id", "occurred_at", "id").values(
            "execution_id", "error", "status_code", "occurred_at"
        )
    )
    for last in newest:  # on SQLite the last one per execution wins, the same answer
        row = rows.setdefault(last["execution_id"], ExecutionRow(execution=Execution()))
        row.last_error, row.last_status = last["error"], last["status_code"]
        row.last_failed_at = last["occurred_at"]
    return rows


def _name_http_states(rows: list[ExecutionRow]) -> None:
    """Each row's HTTP states from its machine's stored definition (one query for the page)."""
    if not rows:
        return
    ids = {row.execution.state_machine_id for row in rows}
    names = {
        machine.pk: sorted(http_states_from_definition(machine.definition))
        for machine in StateMachine.objects.filter(pk__in=ids).only("pk", "definition")
    }
    for row in rows:
        row.http_states = names.get(row.execution.state_machine_id, [])


def execution_page(
    form: AttemptFilterForm, accounts: list[int], attempts: QuerySet[HttpAttempt], page_size: int
) -> tuple[ExecutionPage, QuerySet[Execution]]:
    data = form.cleaned_data
    newest = form.ordering != "occurred_at"
    matching = failing_executions(data, accounts, attempts)
    found = list(
        _ordered(matching, data.get("after"), newest)
        .select_related("state_machine")
        .only(
            "id", "name", "arn", "status", "start_date", "stop_date", "error", "account_id",
            "source", "history_complete", "state_machine__name", "state_machine__region",
            "state_machine__type",
        )[: page_size + 1]
    )  # fmt: skip
    filters = form.active_filters()
    next_query = ""
    if len(found) > page_size:
        found = found[:page_size]
        last = found[-1]
        cursor = Cursor(to_micros(last.start_date), last.pk).encode()
        next_query = urlencode({**filters, "after": cursor})
    summaries = _summaries([e.pk for e in found]) if found else {}
    rows = []
    for execution in found:
        row = summaries.get(execution.pk) or ExecutionRow(execution=execution)
        row.execution = execution
        rows.append(row)
    _name_http_states([row for row in rows if not row.execution.inspected])
    first = urlencode(filters)
    return ExecutionPage(rows, next_query, first, data.get("after") is None), matching
