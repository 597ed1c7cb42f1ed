"""Celery tasks: thin, taking ids. `drain_alerts` (beat) is the safety net: it turns the outbox
into alerts and queues every delivery that is due, including those a killed worker held."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="alerts.tasks.deliver", acks_late=True)
def deliver(delivery_id: int) -> str:
    from alerts.delivery import deliver as deliver_one
    from alerts.models import Delivery

    status = deliver_one(delivery_id)
    if status == "pending":
        # A retry after its backoff; lost with the broker, the beat drain queues it again.
        due = Delivery.objects.filter(pk=delivery_id).values_list("next_attempt_at", flat=True)
        eta = due.first()
        if eta is not None:
            deliver.apply_async((delivery_id,), eta=eta)
    return status


@shared_task(name="alerts.tasks.drain_alerts")
def drain_alerts() -> dict[str, int]:
    from alerts.delivery import due_ids
    from alerts.raising import raise_pending

    raised = raise_pending()
    due = due_ids()
    for delivery_id in due:
        deliver.delay(delivery_id)
    return {"raised": raised, "queued": len(due)}
