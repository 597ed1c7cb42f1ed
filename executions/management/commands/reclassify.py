"""`manage.py reclassify`: run stored attempts through the current classifier rules again."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from connections.models import AwsAccount
from executions.classification import reclassify_account
from executions.classify import RULES_VERSION


class Command(BaseCommand):
    help = "Reclassify stored HTTP attempts (by default only those classified by older rules)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--all", action="store_true", help="Also attempts already on the current rules."
        )
        parser.add_argument("--account", help="Only this account (name).")

    def handle(self, *args: Any, **opts: Any) -> None:
        accounts = AwsAccount.objects.all()
        if opts.get("account"):
            accounts = accounts.filter(name=opts["account"])
        total = sum(
            reclassify_account(account, include_current=opts["all"], progress=self.stderr.write)
            for account in accounts
        )
        self.stdout.write(f"Reclassified {total} attempt(s) with rules {RULES_VERSION}.")
