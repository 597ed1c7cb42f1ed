"""`manage.py sync_account NAME`: the periodic sync, run now, in the foreground."""

from __future__ import annotations

import sys
from datetime import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.utils.dateparse import parse_datetime

from connections.choices import SyncStatus
from connections.models import AwsAccount
from executions.sync import sync_account_by_id


class Command(BaseCommand):
    help = "Sync one account now (same code as the Celery task) and print a summary."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")
        parser.add_argument("--region", action="append", help="Only this region (repeatable).")
        parser.add_argument("--since", help="ISO time: also (re)read executions started after it.")

    def handle(self, *args: Any, **opts: Any) -> None:
        account = AwsAccount.objects.filter(name=opts["name"]).first()
        if account is None:
            self._fail(f"no account named {opts['name']!r}")
            return
        since = self._since(opts.get("since"))
        summary = sync_account_by_id(
            account.pk,
            trigger="command",
            regions=opts.get("region"),
            since=since,
            progress=lambda msg: self.stderr.write(f"… {msg}"),
        )
        if summary.get("skipped"):
            self._fail(summary["skipped"])
        self.after_sync(account)
        calls = ", ".join(f"{op} {n}" for op, n in sorted(summary["api_calls"].items())) or "none"
        throttled = ", ".join(f"{op} {n}" for op, n in sorted(summary["throttles"].items()))
        self.stdout.write(
            f"{account.name}: {summary['status']}; executions added {summary['executions_added']}, "
            f"updated {summary['executions_updated']}; attempts added {summary['attempts_added']}; "
            f"API calls: {calls}; throttled: {throttled or 'none'}"
        )
        for error in summary["errors"][:20]:
            self.stdout.write(f"  error: {error}")
        if summary["status"] != SyncStatus.OK:
            # Scripts and cron see a run that did not read everything: exit 1, last line why.
            self._fail(what_failed(account.name, summary["status"], summary["errors"]))

    def after_sync(self, account: AwsAccount) -> None:
        """Hook for the layers above, run before the summary and exit status (alerts/ delivers
        the run's alerts here)."""

    def _since(self, raw: str | None) -> datetime | None:
        if not raw:
            return None
        value = parse_datetime(raw)
        if value is None:
            self._fail(f"--since {raw!r} is not an ISO date-time")
        return value

    def _fail(self, message: str) -> None:
        self.stderr.write(f"sync_account: {message}")
        sys.exit(1)


def what_failed(name: str, status: str, errors: list[str]) -> str:
    """One line: how the run ended, how many errors it recorded and the first of them."""
    if not errors:
        return f"sync of {name!r} ended {status}"
    first = " ".join(errors[0].split())  # a database error spans several lines
    if len(first) > 300:
        first = first[:299] + "…"
    count = f"{len(errors)} error" + ("" if len(errors) == 1 else "s")
    return f"sync of {name!r} ended {status}: {count}; the first: {first}"
