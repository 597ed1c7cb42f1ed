"""Celery tasks: thin, taking ids. `drain_alerts` (beat) is the safety net: it turns the outbox
into alerts and queues every delivery that is due, including those a killed worker held."""

from __future__ import annotations

from typing import Any

from celery import Task, shared_task


def _queue(task: Task[Any, Any]) -> str:
    # Deliveries follow the queue the drain was sent to (as sync steps do), so a deployment or
    # a test routing to dedicated workers keeps them there.
    routing: str = (task.request.delivery_info or {}).get("routing_key") or (
        task.app.conf.task_default_queue
    )
    return routing


@shared_task(name="alerts.tasks.deliver", bind=True, acks_late=True)
def deliver(self: Task[Any, Any], delivery_id: int) -> str:
    from alerts.delivery import deliver as deliver_one
    from alerts.models import Delivery

    status = deliver_one(delivery_id)
    if status == "pending":
        # A retry after its backoff; lost with the broker, the beat drain queues it again.
        due = Delivery.objects.filter(pk=delivery_id).values_list("next_attempt_at", flat=True)
        eta = due.first()
        if eta is not None:
            deliver.apply_async((delivery_id,), eta=eta, queue=_queue(self))
    return status


@shared_task(name="alerts.tasks.drain_alerts", bind=True)
def drain_alerts(self: Task[Any, Any]) -> dict[str, int]:
    from alerts.delivery import due_ids
    from alerts.raising import raise_pending

    raised = raise_pending()
    due = due_ids()
    for delivery_id in due:
        deliver.apply_async((delivery_id,), queue=_queue(self))
    return {"raised": raised, "queued": len(due)}


@shared_task(name="alerts.tasks.prune_old_alerts", acks_late=True)
def prune_old_alerts() -> dict[str, int]:
    """Beat tick (hourly): alerts older than RETENTION_DAYS, their deliveries and log, in small
    batches; stateless, so a redelivered or concurrent run is harmless."""
    from dataclasses import asdict

    from alerts.retention import prune_alerts

    return asdict(prune_alerts())
