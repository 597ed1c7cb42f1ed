"""`manage.py prune`: delete executions older than the retention, as the hourly beat task does."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from executions.retention import prune, retention_days, retention_problem


class Command(BaseCommand):
    help = "Delete executions (and their attempts) that stopped more than RETENTION_DAYS ago."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="Only say how many would go.")
        parser.add_argument("--days", help="Use this retention instead of RETENTION_DAYS.")

    def handle(self, *args: Any, **opts: Any) -> None:
        raw = opts.get("days")
        if raw is not None and (problem := retention_problem(raw)):
            raise CommandError(problem.replace("RETENTION_DAYS", "--days"))
        days = retention_days() if raw is None else int(raw)
        result = prune(days, dry_run=opts["dry_run"])
        if result.cutoff is None:
            self.stdout.write("Retention is 0 days: everything is kept, nothing pruned.")
            return
        verb = "Would delete" if result.dry_run else "Deleted"
        self.stdout.write(
            f"{verb} {result.executions} execution(s) and {result.attempts} attempt(s) "
            f"stopped before {result.cutoff:%Y-%m-%d %H:%M} UTC ({days} days)."
        )
        if not result.dry_run:
            self.stdout.write(
                f"Recounted {result.groups_recounted} failure group(s), "
                f"deleted {result.groups_deleted} left empty."
            )
