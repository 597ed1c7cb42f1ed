"""`manage.py rotate_secrets`: re-encrypt every stored secret under the newest key."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction

from connections.models import ACCOUNT_SECRET_FIELDS, AwsAccount


class Command(BaseCommand):
    help = "Re-encrypt account secrets with the first FIELD_ENCRYPTION_KEYS key."

    def handle(self, *args: Any, **opts: Any) -> None:
        count = 0
        with transaction.atomic():
            # Loading decrypts with any configured key; saving encrypts with the newest one.
            for account in AwsAccount.objects.select_for_update():
                account.save(update_fields=list(ACCOUNT_SECRET_FIELDS))
                count += 1
        self.stdout.write(f"Re-encrypted the secrets of {count} account(s).")
