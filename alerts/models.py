"""Alert rules, the alerts they raised, and the delivery of each alert on each channel."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse

from alerts.choices import GROUP_RULE_EVENTS, AlertKind, Channel, DeliveryStatus, Event
from connections.crypto import EncryptedTextField
from connections.models import AwsAccount, Connection, Endpoint, SyncRun
from executions.models import FailureGroup


class AlertRuleQuerySet(models.QuerySet["AlertRule"]):
    def visible_to(self, user: Any) -> AlertRuleQuerySet:
        """Rules this user may see and edit: every account the rule watches is visible to them.

        A rule watching no account watches all of them, so only a superuser sees it.
        """
        if not getattr(user, "is_authenticated", False) or not getattr(user, "is_active", False):
            return self.none()
        if user.is_superuser:
            return self.all()
        hidden = AwsAccount.objects.exclude(pk__in=AwsAccount.objects.visible_to(user))
        return self.filter(accounts__isnull=False).exclude(accounts__in=hidden).distinct()


class AlertRule(models.Model):
    """Which events to announce, for which accounts and resources, on which channels."""

    name = models.CharField(max_length=100, unique=True)
    enabled = models.BooleanField(default=True)
    # Event values (alerts.choices.Event).
    events = models.JSONField(default=list)
    # Filters; empty means "any". No account means every account (superusers only).
    accounts = models.ManyToManyField(AwsAccount, blank=True, related_name="alert_rules")
    regions = models.JSONField(default=list, blank=True)
    connections = models.ManyToManyField(Connection, blank=True, related_name="alert_rules")
    endpoints = models.ManyToManyField(Endpoint, blank=True, related_name="alert_rules")
    categories = models.JSONField(default=list, blank=True)
    # Like Hookdeck's final-attempt choice: a group whose failures were all retried away
    # (no final attempt failed) raises nothing.
    final_attempts_only = models.BooleanField(default=True)
    # Channels. URLs of incoming webhooks embed a token: secrets, encrypted like account keys.
    email_to = models.JSONField(default=list, blank=True)
    slack_webhook_url = EncryptedTextField(blank=True)
    webhook_url = EncryptedTextField(blank=True)
    signing_secret = EncryptedTextField(blank=True)
    # apprise URLs (alerts/apprise_channel.py) carry the service's token too.
    apprise_url = EncryptedTextField(blank=True)
    # After an alert about one subject (group, connection, account), further changes of that
    # subject within this many seconds are summed up in one digest instead.
    quiet_period_seconds = models.PositiveIntegerField(default=3600)
    # The rate event: a group with at least `rate_failures` failures in the last `rate_minutes`.
    rate_failures = models.PositiveIntegerField(default=0)
    rate_minutes = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = AlertRuleQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("alerts:rule", args=[self.pk])

    @property
    def channels(self) -> list[str]:
        found: list[str] = []
        if self.email_to:
            found.append(Channel.EMAIL)
        if self.slack_webhook_url:
            found.append(Channel.SLACK)
        if self.webhook_url:
            found.append(Channel.WEBHOOK)
        if self.apprise_url:
            found.append(Channel.APPRISE)
        return found

    def wants(self, event: Event) -> bool:
        if event is Event.WORSENED:
            return self.enabled and bool(GROUP_RULE_EVENTS.intersection(self.events))
        if event is Event.RATE and not (self.rate_failures and self.rate_minutes):
            return False
        return self.enabled and event in self.events

    @property
    def rate_text(self) -> str:
        return f"{self.rate_failures} failures in {self.rate_minutes} minutes"


SECRET_RULE_FIELDS = ("slack_webhook_url", "webhook_url", "signing_secret", "apprise_url")


class Alert(models.Model):
    """One announcement by one rule. `key` (source row × rule) makes raising it idempotent and
    travels with every delivery (Idempotency-Key) so receivers can drop a repeat."""

    rule = models.ForeignKey(AlertRule, on_delete=models.CASCADE, related_name="alerts")
    key = models.CharField(max_length=120, unique=True)
    kind = models.CharField(max_length=10, choices=AlertKind.choices, default=AlertKind.EVENT)
    event = models.CharField(max_length=40, choices=Event.choices, blank=True)
    account = models.ForeignKey(
        AwsAccount, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    # The subject, for the quiet period and the digest: "group:12", "connection:3", "account:1".
    subject = models.CharField(max_length=40, blank=True)
    group = models.ForeignKey(
        FailureGroup, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    sync_run = models.ForeignKey(
        SyncRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The message, built once from stored (redacted) rows: every channel renders this.
    payload = models.JSONField(default=dict)
    # Group count when raised; the digest reports the failures added during the quiet period.
    count_at_raise = models.PositiveIntegerField(default=0)
    # The digest closing this alert's quiet period was raised (or found nothing to say).
    digest_done = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["rule", "subject", "-created_at"]),
            models.Index(
                fields=["created_at"],
                condition=Q(digest_done=False, kind="event"),
                name="alert_digest_pending",
            ),
        ]

    def __str__(self) -> str:
        return str(self.payload.get("title", self.key))


class RateWatch(models.Model):
    """Whether a group is above a rule's rate, and how often it crossed it: the crossing number
    is in the alert key, and only the drain whose conditional UPDATE flips `above` raises it."""

    rule = models.ForeignKey(AlertRule, on_delete=models.CASCADE, related_name="+")
    group = models.ForeignKey(FailureGroup, on_delete=models.CASCADE, related_name="+")
    above = models.BooleanField(default=False)
    crossings = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["rule", "group"], name="uniq_rate_watch")]

    def __str__(self) -> str:
        return f"rule {self.rule_id} group {self.group_id}: {'above' if self.above else 'below'}"


class Delivery(models.Model):
    """An alert on one channel: claimed with a conditional UPDATE, retried with backoff."""

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="deliveries")
    channel = models.CharField(max_length=10, choices=Channel.choices)
    status = models.CharField(
        max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    # A worker holds the delivery until then; killed, the next drain takes it over.
    claimed_until = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    last_answer = models.TextField(blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["alert", "channel"], name="uniq_alert_channel")
        ]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status__in=["pending", "sending"]),
                name="delivery_due",
            )
        ]

    def __str__(self) -> str:
        return f"{self.alert_id} via {self.channel}: {self.status}"

    @property
    def status_colour(self) -> str:
        return DeliveryStatus(self.status).colour


class DeliveryAttempt(models.Model):
    """One try of one delivery: the log a rule's page shows (sent, failed and why, retried)."""

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="tries")
    at = models.DateTimeField(auto_now_add=True)
    ok = models.BooleanField()
    # The receiver's answer (status and the start of its body) or the network error.
    answer = models.TextField(blank=True)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{'sent' if self.ok else 'failed'} at {self.at:%Y-%m-%d %H:%M:%S}"
