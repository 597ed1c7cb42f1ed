"""`manage.py register_account`: the admin's registration, from a terminal or a script."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandParser

from connections.arn import role_account
from connections.choices import AuthMode
from connections.forms import AwsAccountForm
from connections.models import AwsAccount


class Command(BaseCommand):
    help = "Register (or update, by name) an AWS account for ingestion. Exit 2 on bad input."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", required=True)
        parser.add_argument(
            "--account-id", default="", help="12 digits; read from the role ARN if omitted."
        )
        parser.add_argument("--region", required=True, help="R or R1,R2")
        parser.add_argument("--role-arn", default="")
        parser.add_argument("--external-id", default="")
        parser.add_argument("--access-key-id", default="")
        parser.add_argument(
            "--secret-access-key-file",
            default="",
            help="A file holding the secret key (never a flag: flags land in shell history).",
        )
        parser.add_argument("--endpoint-url", default="")
        parser.add_argument("--sync-interval", type=int, default=60)

    def handle(self, *args: Any, **opts: Any) -> None:
        data = self._form_data(opts)
        existing = AwsAccount.objects.filter(name=opts["name"]).first()
        form = AwsAccountForm(data=data, instance=existing)
        if not form.is_valid():
            self._fail(
                "; ".join(
                    f"{field}: {' '.join(str(e) for e in errs)}"
                    for field, errs in form.errors.items()
                )
            )
        try:
            account = form.save()
        except ValidationError as exc:  # an overlapping registration saved since the check
            self._fail("; ".join(f"{f}: {' '.join(m)}" for f, m in exc.message_dict.items()))
            return
        verb = "Updated" if existing else "Registered"
        self.stdout.write(
            f"{verb} account {account.name} ({account.account_id}) in {', '.join(account.regions)}."
        )

    def _form_data(self, opts: dict[str, Any]) -> dict[str, Any]:
        secret = ""
        if opts["secret_access_key_file"]:
            try:
                secret = Path(opts["secret_access_key_file"]).read_text(encoding="utf-8").strip()
            except OSError as exc:
                self._fail(f"cannot read --secret-access-key-file: {exc.strerror}")
        if opts["role_arn"] and (opts["access_key_id"] or secret):
            self._fail(
                "give either --role-arn or --access-key-id/--secret-access-key-file, not both"
            )
        mode = AuthMode.DEFAULT_CHAIN
        if opts["role_arn"]:
            mode = AuthMode.ASSUME_ROLE
        elif opts["access_key_id"] or secret:
            mode = AuthMode.ACCESS_KEYS
        account_id = opts["account_id"] or role_account(opts["role_arn"])
        return {
            "name": opts["name"],
            "account_id": account_id,
            "regions": opts["region"],
            "auth_mode": mode,
            "role_arn": opts["role_arn"],
            "external_id": opts["external_id"],
            "access_key_id": opts["access_key_id"],
            "secret_access_key": secret,
            "endpoint_url": opts["endpoint_url"],
            "enabled": True,
            "sync_interval_seconds": opts["sync_interval"],
        }

    def _fail(self, message: str) -> None:
        self.stderr.write(f"register_account: {message}")
        sys.exit(2)
