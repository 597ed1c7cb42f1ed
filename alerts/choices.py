"""Choice sets of the alerts app."""

from __future__ import annotations

from django.db import models


class Event(models.TextChoices):
    """What a rule fires on (the names `add_alert_rule --events` takes)."""

    NEW_GROUP = "new_group", "New failure group"
    REGRESSION = "regression", "Resolved group regressed"
    CONNECTION_DEAUTHORIZED = "connection_deauthorized", "Connection de-authorized"
    CONNECTION_FAILED_CONNECTIVITY = "connection_failed_connectivity", "Connection unreachable"
    SYNC_FAILED = "sync_failed", "Sync failed or stalled"
    RATE = "rate", "Group crossing a rate (N failures in M minutes)"
    # Not chosen on a rule: a group snoozed "until it gets worse" got worse. Announced to every
    # rule that fires on a group event (whoever heard of the group hears it got worse).
    WORSENED = "worsened", "Snoozed group got worse"


GROUP_RULE_EVENTS = frozenset({Event.NEW_GROUP, Event.REGRESSION, Event.RATE})
RULE_EVENT_CHOICES = [(e.value, e.label) for e in Event if e is not Event.WORSENED]


class AlertKind(models.TextChoices):
    """An alert announces an event, sums up a quiet period (digest) or checks a channel."""

    EVENT = "event", "Event"
    DIGEST = "digest", "Digest"
    TEST = "test", "Test"


class Channel(models.TextChoices):
    EMAIL = "email", "Email"
    SLACK = "slack", "Slack webhook"
    WEBHOOK = "webhook", "Signed JSON webhook"
    APPRISE = "apprise", "Apprise services"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"  # waiting for its (next) attempt
    SENDING = "sending", "Sending"  # claimed by a worker until `claimed_until`
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"  # gave up after ALERT_MAX_ATTEMPTS

    @property
    def colour(self) -> str:
        return {"pending": "blue", "sending": "blue", "sent": "green", "failed": "red"}[self.value]
