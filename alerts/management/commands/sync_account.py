"""`manage.py sync_account NAME`: the sync of executions' command, then the alerts it raised,
delivered before the command exits (each once; what a receiver refuses stays for the worker)."""

from __future__ import annotations

from alerts.delivery import deliver, due_ids
from alerts.raising import raise_pending
from connections.models import AwsAccount
from executions.management.commands.sync_account import Command as SyncCommand


class Command(SyncCommand):
    help = SyncCommand.help + " Then deliver the alerts the run raised."

    def after_sync(self, account: AwsAccount) -> None:
        raised = raise_pending()
        outcomes = [deliver(delivery_id) for delivery_id in due_ids(account_id=account.pk)]
        if raised or outcomes:
            failed = sum(1 for status in outcomes if status and status != "sent")
            self.stderr.write(
                f"… alerts: {raised} raised, {outcomes.count('sent')} delivered"
                + (f", {failed} to retry by the worker" if failed else "")
            )
