"""Account registration: one validation shared by the admin and `register_account`."""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from connections.arn import role_account
from connections.aws.client import available_regions
from connections.choices import AuthMode, OperatorMode
from connections.models import ACCOUNT_SECRET_FIELDS, AwsAccount

# AWS's own access key ids (long-term AKIA, temporary ASIA) are 20 characters. An endpoint URL
# (the sandbox, LocalStack, whose convention is `test`/`test`) accepts any non-empty strings.
AWS_ACCESS_KEY_ID = re.compile(r"^(AKIA|ASIA)[A-Z0-9]{16}$")
AWS_ACCESS_KEY_ID_RULE = (
    "An AWS access key id is AKIA or ASIA followed by 16 capital letters or digits."
)


OPERATOR_SECRET_FIELDS = tuple(n for n in ACCOUNT_SECRET_FIELDS if n.startswith("operator_"))


class RegionsField(forms.CharField):
    """Comma-separated region names, each checked against botocore's region list."""

    def to_python(self, value: Any) -> list[str]:  # type: ignore[override]
        if isinstance(value, list):
            value = ",".join(value)
        names = [r.strip() for r in str(value or "").split(",") if r.strip()]
        return list(dict.fromkeys(names))

    def validate(self, value: Any) -> None:
        if not value:
            raise ValidationError("Name at least one region, e.g. eu-west-1.")
        unknown = sorted(set(value) - available_regions())
        if unknown:
            raise ValidationError(f"Unknown region(s): {', '.join(unknown)}.")

    def prepare_value(self, value: Any) -> str:
        return ",".join(value) if isinstance(value, list) else str(value or "")


def _write_only() -> forms.CharField:
    """A secret's input: never rendered back, blank keeps the stored value."""
    return forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        strip=True,
        help_text="Write-only. Leave blank to keep the stored value.",
    )


class AwsAccountForm(forms.ModelForm):  # type: ignore[type-arg]
    """Validates an account; secrets are write-only (blank keeps the stored value)."""

    endpoint_url = forms.URLField(
        required=False,
        assume_scheme="https",
        help_text="Only for the sandbox or VPC endpoints; empty means real AWS.",
    )
    regions = RegionsField(help_text="Comma-separated, e.g. eu-west-1,us-east-1.")
    external_id = _write_only()
    access_key_id = _write_only()
    secret_access_key = _write_only()
    operator_external_id = _write_only()
    operator_access_key_id = _write_only()
    operator_secret_access_key = _write_only()

    class Meta:
        model = AwsAccount
        fields = [
            "name",
            "account_id",
            "regions",
            "auth_mode",
            "role_arn",
            "external_id",
            "access_key_id",
            "secret_access_key",
            "operator_auth_mode",
            "operator_role_arn",
            "operator_external_id",
            "operator_access_key_id",
            "operator_secret_access_key",
            "endpoint_url",
            "enabled",
            "sync_interval_seconds",
            "groups",
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Never send a stored secret back to the browser, not even as an initial value.
        for name in ACCOUNT_SECRET_FIELDS:
            self.initial.pop(name, None)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        mode = data.get("auth_mode")
        stored = self.instance if self.instance.pk else None
        for name in ACCOUNT_SECRET_FIELDS:
            if not data.get(name) and stored is not None:
                data[name] = getattr(stored, name)
        if mode == AuthMode.ASSUME_ROLE:
            self._check_role(data)
        elif mode == AuthMode.ACCESS_KEYS:
            self._check_keys(data)
        operator = data.get("operator_auth_mode") or OperatorMode.NONE
        if operator == OperatorMode.ASSUME_ROLE:
            self._check_role(data, prefix="operator_")
        elif operator == OperatorMode.ACCESS_KEYS:
            self._check_keys(data, prefix="operator_")
        else:
            # No operator role: no operator secret kept either (removing the role removes them).
            for name in ("operator_role_arn", *OPERATOR_SECRET_FIELDS):
                data[name] = ""
        if data.get("sync_interval_seconds") is not None and data["sync_interval_seconds"] < 10:
            self.add_error("sync_interval_seconds", "Sync at most every 10 seconds.")
        return data

    def _check_role(self, data: dict[str, Any], prefix: str = "") -> None:
        """The reader's role (no prefix) or the operator's (`operator_`): the same rules."""
        field = f"{prefix}role_arn"
        account = role_account(data.get(field) or "")
        if not account:
            self.add_error(field, "Give an IAM role ARN: arn:aws:iam::123456789012:role/Name.")
        elif data.get("account_id") and account != data["account_id"]:
            self.add_error(field, "The role ARN names another account than the account id.")

    def _check_keys(self, data: dict[str, Any], prefix: str = "") -> None:
        key_field, secret_field = f"{prefix}access_key_id", f"{prefix}secret_access_key"
        key_id, secret = data.get(key_field) or "", data.get(secret_field) or ""
        if data.get("endpoint_url"):
            if not key_id:
                self.add_error(key_field, "Give an access key id (any text for a sandbox).")
            if not secret:
                self.add_error(secret_field, "Give the secret access key (write-only).")
            return
        if not AWS_ACCESS_KEY_ID.match(key_id):
            self.add_error(key_field, AWS_ACCESS_KEY_ID_RULE)
        if len(secret) < 16:
            self.add_error(secret_field, "Give the secret access key (write-only).")

    def save(self, commit: bool = True) -> AwsAccount:
        account: AwsAccount = super().save(commit=False)
        for name in ACCOUNT_SECRET_FIELDS:
            setattr(account, name, self.cleaned_data.get(name) or "")
        if commit:
            account.save()
            self.save_m2m()
        return account
