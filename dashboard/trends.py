"""Rates and change: failure rate and latency per time bucket, and what changed on the overview.

Counts alone mislead an on-call engineer: 40 failures out of 50 calls is an outage, 40 out of
40,000 is noise. So the connection and endpoint pages chart failed ÷ finished attempts per
bucket, and the overview compares its window with the previous one of the same length.
Aborted and in-progress calls are no part of a rate or a latency (`executions.models.FINISHED`):
the aborted ones are counted beside them.

"Failing" is `executions.models.FAILING`, the one definition every page uses. Each function
below is one SQL query, shaped for the indexes named in docs/performance.md.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db import connection as db_connection
from django.db.models import Aggregate, Count, F, FloatField, Q, QuerySet
from django.db.models.functions import Trunc

from executions import charts, trend_charts
from executions.models import CUT_OFF, FAILING, FINISHED, FailureGroup, HttpAttempt

# The rising-endpoint rule (shown on the overview, so the reader knows what "rising" means).
RISE_POINTS = 10.0  # failure rate up by at least this many percentage points…
MIN_ATTEMPTS = 20  # …over at least this many attempts in the current window
CHANGES_N = 8


class Percentile(Aggregate):
    """PostgreSQL's PERCENTILE_CONT(fraction) WITHIN GROUP (ORDER BY expression)."""

    function = "PERCENTILE_CONT"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression: str, fraction: float, filter: Q | None = None) -> None:
        # A float we write ourselves, never user input, so formatting it into SQL is safe.
        # `filter` becomes FILTER (WHERE …), which PostgreSQL allows on ordered-set aggregates.
        super().__init__(expression, fraction=repr(float(fraction)), filter=filter)


def trend_rows(
    attempts: QuerySet[HttpAttempt], bucketing: charts.Bucketing
) -> list[trend_charts.BucketStats]:
    """(bucket, finished, failed, aborted, p50, p95) of the attempts in the buckets' span: one
    query.

    Total and latency are over finished calls only (FINISHED); PERCENTILE_CONT also ignores
    NULL durations (attempts that never got an answer), as a latency figure should. SQLite (a
    fresh checkout) has no PERCENTILE_CONT: there the latency is left out rather than guessed.
    """
    first, end = bucketing.span
    aggregates: dict[str, Any] = {
        "total": Count("id", filter=FINISHED),
        "failed": Count("id", filter=FAILING),
        "aborted": Count("id", filter=CUT_OFF),
    }
    postgres = db_connection.vendor == "postgresql"
    if postgres:
        aggregates |= {
            "p50": Percentile("duration_ms", 0.5, filter=FINISHED),
            "p95": Percentile("duration_ms", 0.95, filter=FINISHED),
        }
    rows = (
        attempts.filter(occurred_at__gte=first, occurred_at__lt=end)
        .annotate(bucket=Trunc("occurred_at", bucketing.unit, tzinfo=UTC))
        .values("bucket")
        .annotate(**aggregates)
        .order_by("bucket")
    )
    return [
        trend_charts.BucketStats(
            r["bucket"], r["total"], r["failed"], r.get("p50"), r.get("p95"), r["aborted"]
        )
        for r in rows
    ]


def trends(attempts: QuerySet[HttpAttempt], start: datetime, end: datetime) -> trend_charts.Trends:
    bucketing = charts.choose_bucketing(start, end)
    return trend_charts.trends(trend_rows(attempts, bucketing), bucketing)


# --- What changed (overview) ------------------------------------------------------------------


@dataclass(frozen=True)
class RisingEndpoint:
    endpoint_id: int
    method: str
    url_template: str
    total: int
    failed: int
    previous_total: int
    previous_failed: int

    @property
    def rate(self) -> float:
        return self.failed / self.total * 100

    @property
    def previous_rate(self) -> float:
        # An endpoint not called in the previous window had no failures there.
        return self.previous_failed / self.previous_total * 100 if self.previous_total else 0.0

    @property
    def rise(self) -> float:
        return self.rate - self.previous_rate


def new_groups(account_ids: list[int], start: datetime, end: datetime) -> list[FailureGroup]:
    """Groups first seen in the window: failures of a kind not seen before it."""
    return list(
        FailureGroup.objects.filter(
            account_id__in=account_ids, first_seen_at__gte=start, first_seen_at__lt=end
        )
        .select_related("connection", "endpoint")
        .order_by("-first_seen_at", "-id")[:CHANGES_N]
    )


def rising_endpoints(
    account_ids: list[int], start: datetime, end: datetime, candidates: Collection[int]
) -> list[RisingEndpoint]:
    """Endpoints whose failure rate rose by RISE_POINTS over MIN_ATTEMPTS finished attempts
    (one query; aborted calls count in neither the rate nor the minimum).

    Only an endpoint that failed in the window can have a rising rate: `candidates` are those
    endpoints, which the overview has already counted from the failing-attempts index
    (dashboard/views.py `failing_endpoints`). Their calls in both windows are counted on
    att_endpoint_all, so the cost follows the failing endpoints' traffic, never the whole table.
    """
    previous = start - (end - start)
    # A literal list, not a subquery: with a list PostgreSQL plans the counting as index scans
    # on att_endpoint_all; with a subquery it estimated a hash join over a sequential scan of
    # the whole table (190 ms against 10 ms at 1M attempts).
    if not candidates:
        return []
    now = Q(occurred_at__gte=start)
    before = Q(occurred_at__lt=start)
    rows = (
        HttpAttempt.objects.filter(
            account_id__in=account_ids,
            endpoint_id__in=candidates,
            occurred_at__gte=previous,
            occurred_at__lt=end,
        )
        .values("endpoint_id", "endpoint__method", "endpoint__url_template")
        .annotate(
            total=Count("id", filter=now & FINISHED),
            failed=Count("id", filter=now & FAILING),
            previous_total=Count("id", filter=before & FINISHED),
            previous_failed=Count("id", filter=before & FAILING),
        )
        .filter(total__gte=MIN_ATTEMPTS)
        .order_by(F("endpoint_id"))
    )
    rising = [
        endpoint
        for r in rows
        if (
            endpoint := RisingEndpoint(
                r["endpoint_id"],
                r["endpoint__method"],
                r["endpoint__url_template"],
                r["total"],
                r["failed"],
                r["previous_total"],
                r["previous_failed"],
            )
        ).rise
        >= RISE_POINTS
    ]
    rising.sort(key=lambda e: (-e.rise, e.endpoint_id))
    return rising[:CHANGES_N]
