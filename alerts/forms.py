"""The rule form: scoped to the accounts the user sees; secrets write-only."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator, URLValidator

from alerts import apprise_channel, links
from alerts.choices import RULE_EVENT_CHOICES, Event
from alerts.models import SECRET_RULE_FIELDS, AlertRule
from connections.models import AwsAccount, Connection, Endpoint
from executions.choices import Category

MAX_RATE_MINUTES = 1440


def _split(value: str) -> list[str]:
    return [item.strip() for item in value.replace("\n", ",").split(",") if item.strip()]


class AlertRuleForm(forms.ModelForm):  # type: ignore[type-arg]
    """Blank secret fields keep the stored value; a stored secret is never sent back."""

    events = forms.MultipleChoiceField(
        choices=RULE_EVENT_CHOICES, widget=forms.CheckboxSelectMultiple
    )
    categories = forms.MultipleChoiceField(
        choices=Category.choices,
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text="None ticked: every category.",
    )
    regions = forms.CharField(required=False, help_text="Comma-separated; empty: every region.")
    email_to = forms.CharField(required=False, label="E-mail to", help_text="Comma-separated.")
    slack_webhook_url = forms.CharField(
        required=False,
        label="Slack webhook URL",
        widget=forms.PasswordInput(render_value=False),
        help_text="Write-only; blank keeps the stored one.",
    )
    webhook_url = forms.CharField(
        required=False,
        label="Webhook URL",
        widget=forms.PasswordInput(render_value=False),
        help_text="Write-only; blank keeps the stored one.",
    )
    signing_secret = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Write-only, 16 characters or more; blank keeps the stored one.",
    )
    apprise_url = forms.CharField(
        required=False,
        label="Apprise URL(s)",
        widget=forms.PasswordInput(render_value=False),
        help_text="Any service apprise knows (comma-separated for several), e.g. "
        "msteams://…, discord://…, ntfys://…, json://host/path. Write-only; blank keeps the "
        "stored one.",
    )

    class Meta:
        model = AlertRule
        fields = [
            "name",
            "enabled",
            "events",
            "accounts",
            "regions",
            "connections",
            "endpoints",
            "categories",
            "final_attempts_only",
            "email_to",
            "slack_webhook_url",
            "webhook_url",
            "signing_secret",
            "apprise_url",
            "quiet_period_seconds",
            "rate_failures",
            "rate_minutes",
        ]
        widgets = {"accounts": forms.CheckboxSelectMultiple}
        labels = {"rate_failures": "Rate: N failures", "rate_minutes": "Rate: in M minutes"}
        help_texts = {
            "connections": "None chosen: every connection.",
            "endpoints": "None chosen: every endpoint.",
            "rate_failures": "For the rate event: alert once when a group reaches N failures…",
            "rate_minutes": "…within the last M minutes (1 to 1440).",
        }

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user
        accounts: Any = self.fields["accounts"]
        accounts.queryset = AwsAccount.objects.visible_to(user).only("pk", "name", "account_id")
        accounts.required = not user.is_superuser
        # Scoped like the accounts: only resources of accounts the user sees are offered.
        visible = AwsAccount.objects.visible_to(user)
        connections: Any = self.fields["connections"]
        connections.queryset = Connection.objects.filter(account__in=visible).order_by("name")
        endpoints: Any = self.fields["endpoints"]
        endpoints.queryset = Endpoint.objects.filter(account__in=visible)
        # Only the rate event needs N and M (checked in clean); a rule without it leaves them 0.
        for name in ("rate_failures", "rate_minutes"):
            self.fields[name].required = False
        for name in SECRET_RULE_FIELDS:
            self.initial[name] = ""
        if self.instance.pk:
            self.initial["regions"] = ", ".join(self.instance.regions)
            self.initial["email_to"] = ", ".join(self.instance.email_to)

    def clean_regions(self) -> list[str]:
        return _split(self.cleaned_data.get("regions") or "")

    def clean_email_to(self) -> list[str]:
        addresses = _split(self.cleaned_data.get("email_to") or "")
        for address in addresses:
            try:
                EmailValidator()(address)
            except ValidationError as exc:
                # The address goes in as a parameter: a "%" in it is text, not a format.
                raise ValidationError(
                    "%(address)s is not an e-mail address.", params={"address": address}
                ) from exc
        return addresses

    def _url(self, name: str) -> str:
        value = str(self.cleaned_data.get(name) or "").strip()
        if value:
            URLValidator(schemes=["http", "https"], message="Give an http(s) URL.")(value)
            return value
        return str(getattr(self.instance, name) or "")

    def clean_slack_webhook_url(self) -> str:
        return self._url("slack_webhook_url")

    def clean_webhook_url(self) -> str:
        return self._url("webhook_url")

    def clean_signing_secret(self) -> str:
        value = str(self.cleaned_data.get("signing_secret") or "").strip()
        if value and len(value) < 16:
            raise ValidationError("At least 16 characters.")
        return value or self.instance.signing_secret

    def clean_apprise_url(self) -> str:
        value = str(self.cleaned_data.get("apprise_url") or "").strip()
        if not value:
            return str(self.instance.apprise_url or "")
        problem = apprise_channel.problem(value)
        if problem:
            raise ValidationError(problem)
        return value

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        channels = ("email_to", "slack_webhook_url", "webhook_url", "apprise_url")
        if not any(data.get(name) for name in channels):
            raise ValidationError("Give at least one channel: e-mail, Slack, webhook or apprise.")
        accounts = {a.pk for a in data.get("accounts") or []}
        for name in ("connections", "endpoints"):
            outside = [r for r in data.get(name) or [] if accounts and r.account_id not in accounts]
            if outside:
                self.add_error(name, "Choose only resources of the accounts the rule watches.")
        for name in ("rate_failures", "rate_minutes"):
            data[name] = data.get(name) or 0
        if Event.RATE in (data.get("events") or []):
            n, m = data.get("rate_failures") or 0, data.get("rate_minutes") or 0
            if n < 1 or not 1 <= m <= MAX_RATE_MINUTES:
                self.add_error(
                    "rate_failures",
                    f"The rate event needs N of 1 or more and M of 1 to {MAX_RATE_MINUTES}.",
                )
        return data


class ActionLinkForm(forms.Form):
    """The query string of an alert's action link: one signed token (alerts/links.py)."""

    t = forms.CharField(max_length=2000, label="Link token")

    def clean_t(self) -> tuple[int, links.Action]:
        try:
            return links.read(self.cleaned_data["t"])
        except links.LinkError as exc:
            raise ValidationError(str(exc)) from exc
