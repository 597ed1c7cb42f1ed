"""Retention for alerts: alerts raised more than RETENTION_DAYS ago go, with their deliveries
and their delivery log, in small batches (executions/retention.py's recipe: each batch its own
short transaction, SKIP LOCKED, no state of its own, so a killed run resumes and two runs side
by side take different rows). An alert still being delivered (pending or sending) or whose
quiet-period digest is still to come stays until that is over."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.db.models import Q, QuerySet

from alerts.choices import AlertKind, DeliveryStatus
from alerts.models import Alert, Delivery, DeliveryAttempt
from executions.retention import cutoff_for, retention_days

# Rows per DELETE: the log first (many tries per delivery), then deliveries, then alerts.
BATCH = 1000


@dataclass
class AlertPruneResult:
    alerts: int = 0
    deliveries: int = 0
    attempts: int = 0


def old_alerts(cutoff: datetime) -> QuerySet[Alert]:
    busy = Delivery.objects.filter(
        status__in=[DeliveryStatus.PENDING, DeliveryStatus.SENDING]
    ).values("alert_id")
    return (
        Alert.objects.filter(created_at__lt=cutoff)
        .exclude(Q(kind=AlertKind.EVENT, digest_done=False) | Q(pk__in=busy))
        .order_by()
    )


def prune_alerts(days: int | None = None, *, now: datetime | None = None) -> AlertPruneResult:
    result = AlertPruneResult()
    cutoff = cutoff_for(retention_days() if days is None else days, now)
    if cutoff is None:
        return result
    while n := _batch(DeliveryAttempt.objects.filter(delivery__alert__in=old_alerts(cutoff))):
        result.attempts += n
    while n := _batch(Delivery.objects.filter(alert__in=old_alerts(cutoff))):
        result.deliveries += n
    while n := _batch(old_alerts(cutoff)):
        result.alerts += n
    return result


def _batch(rows: QuerySet[Alert] | QuerySet[Delivery] | QuerySet[DeliveryAttempt]) -> int:
    with transaction.atomic():
        ids = list(
            rows.order_by()
            .select_for_update(skip_locked=True, of=("self",))
            .values_list("pk", flat=True)[:BATCH]
        )
        if ids:
            # By then nothing points at these rows any more (log → deliveries → alerts).
            rows.model._default_manager.filter(pk__in=ids).delete()
        return len(ids)
