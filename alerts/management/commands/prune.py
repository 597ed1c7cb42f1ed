"""`manage.py prune`: executions' prune, then the alerts older than the same retention
(alerts/retention.py), as the hourly beat tasks do."""

from __future__ import annotations

from typing import Any

from alerts.retention import prune_alerts
from executions.management.commands.prune import Command as PruneCommand
from executions.retention import retention_days


class Command(PruneCommand):
    help = PruneCommand.help + " Then alerts, their deliveries and delivery log as old."

    def handle(self, *args: Any, **opts: Any) -> None:
        super().handle(*args, **opts)
        raw = opts.get("days")
        days = retention_days() if raw is None else int(raw)
        if opts["dry_run"] or days <= 0:
            return
        result = prune_alerts(days)
        self.stdout.write(
            f"Deleted {result.alerts} alert(s), {result.deliveries} delivery(ies) and "
            f"{result.attempts} delivery attempt(s) older than {days} days."
        )
