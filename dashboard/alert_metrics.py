"""The alert-delivery families of `/metrics` (dashboard.metrics calls `alert_families`).

Read from the alerts app's tables at scrape time like every other family (dashboard sits above
alerts, so it imports them directly). Labels are fixed vocabularies only (channel kind, state,
outbox source): at most 4 × 3 + 4 × 2 + 3 + 3 series, whatever the number of rules or alerts.
Every combination is emitted, zeros included, so a panel or an alert on "failed > 0" has a
series to read before the first failure.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import datetime

from django.db.models import Count, Max, Min, Q
from prometheus_client.core import GaugeMetricFamily, Metric

from alerts.choices import Channel, DeliveryStatus
from alerts.models import Delivery
from connections.choices import SyncStatus
from connections.models import ConnectionStateChange, SyncRun
from executions.models import GroupTransition

OPEN_STATES = ("pending", "retrying", "sending")
DONE_STATES = (DeliveryStatus.SENT.value, DeliveryStatus.FAILED.value)


def alert_families(now: datetime, since: datetime) -> Iterator[Metric]:
    yield from _open_deliveries()
    yield _done_deliveries(since)
    yield from _outbox(now)


def _open_deliveries() -> Iterator[Metric]:
    # The rows of the partial index delivery_due (status pending or sending): the backlog only.
    rows = (
        Delivery.objects.filter(status__in=[DeliveryStatus.PENDING, DeliveryStatus.SENDING])
        .values_list("channel", "status")
        .annotate(
            fresh=Count("id", filter=Q(attempts=0)), retried=Count("id", filter=Q(attempts__gt=0))
        )
        .order_by()
    )
    counts: Counter[tuple[str, str]] = Counter()
    for channel, status, fresh, retried in rows:
        if status == DeliveryStatus.SENDING:
            counts[(channel, "sending")] += fresh + retried
        else:
            counts[(channel, "pending")] += fresh
            counts[(channel, "retrying")] += retried
    family = GaugeMetricFamily(
        "stepscope_alert_deliveries_open",
        "Alert deliveries not yet sent or given up, by channel and state (pending: never tried;"
        " retrying: failed at least once, waiting for its next try; sending: claimed by a worker).",
        labels=["channel", "state"],
    )
    for channel in Channel.values:
        for state in OPEN_STATES:
            family.add_metric([channel, state], counts[(channel, state)])
    yield family


def _done_deliveries(since: datetime) -> Metric:
    counts: Counter[tuple[str, str]] = Counter()
    sent = (
        Delivery.objects.filter(status=DeliveryStatus.SENT, sent_at__gte=since)
        .values_list("channel")
        .annotate(n=Count("id"))
        .order_by()
    )
    for channel, n in sent:
        counts[(channel, DeliveryStatus.SENT)] += n
    # A delivery that gave up did so at its last try.
    failed = (
        Delivery.objects.filter(status=DeliveryStatus.FAILED)
        .annotate(last_try=Max("tries__at"))
        .filter(last_try__gte=since)
        .values_list("channel")
        .annotate(n=Count("id", distinct=True))
        .order_by()
    )
    for channel, n in failed:
        counts[(channel, DeliveryStatus.FAILED)] += n
    family = GaugeMetricFamily(
        "stepscope_alert_deliveries_done_in_window",
        "Alert deliveries that ended in the window, by channel: sent, or failed (gave up after"
        " ALERT_MAX_ATTEMPTS tries).",
        labels=["channel", "state"],
    )
    for channel in Channel.values:
        for state in DONE_STATES:
            family.add_metric([channel, state], counts[(channel, state)])
    return family


def _outbox(now: datetime) -> Iterator[Metric]:
    """Undispatched outbox rows, each source counted through its own partial index."""
    sources = {
        "group_transition": GroupTransition.objects.filter(dispatched_at__isnull=True).aggregate(
            n=Count("id"), oldest=Min("at")
        ),
        "connection_change": ConnectionStateChange.objects.filter(
            dispatched_at__isnull=True
        ).aggregate(n=Count("id"), oldest=Min("observed_at")),
        "sync_run": SyncRun.objects.filter(
            dispatched_at__isnull=True, status=SyncStatus.FAILED, finished_at__isnull=False
        ).aggregate(n=Count("id"), oldest=Min("finished_at")),
    }
    backlog = GaugeMetricFamily(
        "stepscope_alert_outbox_backlog",
        "State changes not yet turned into alerts (undispatched outbox rows), by source.",
        labels=["source"],
    )
    age = GaugeMetricFamily(
        "stepscope_alert_outbox_oldest_seconds",
        "Age of the oldest undispatched outbox row, by source (0 when there is none): a growing"
        " value means the alerts drain is not running.",
        labels=["source"],
    )
    for source, row in sources.items():
        backlog.add_metric([source], row["n"])
        oldest = row["oldest"]
        age.add_metric([source], max(0.0, (now - oldest).total_seconds()) if oldest else 0.0)
    yield backlog
    yield age
