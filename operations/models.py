"""What operators did to AWS: every replay, reveal and redrive, as the audit and the work item.

A row is written before the AWS call (PENDING) and finished by the task that makes it, so a
call that never returned is still on the audit page. `client_token` is unique and is the
RedriveExecution clientToken: a task run twice (a redelivery after a worker died) sends the
same token and AWS redrives once.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse

from connections.models import AwsAccount
from executions.models import Execution, FailureGroup, HttpAttempt
from operations.choices import AUDIT_PERMISSION, ActionKind, ActionOutcome


class OperatorActionQuerySet(models.QuerySet["OperatorAction"]):
    def readable_by(self, user: Any) -> OperatorActionQuerySet:
        """The acting user's own rows; all rows for admins (superusers, or the audit
        permission through a group); always within the accounts the user sees."""
        if not getattr(user, "is_authenticated", False) or not getattr(user, "is_active", False):
            return self.none()
        scoped = self.filter(account__in=AwsAccount.objects.visible_to(user).values("pk"))
        if user.is_superuser or user.has_perm(AUDIT_PERMISSION):
            return scoped
        return scoped.filter(Q(user=user))


class RedriveBatch(models.Model):
    """The redrive of a failure group's executions, or of a filter's: one OperatorAction (PENDING) per eligible
    execution, written with the batch; the task works through them, so a batch a killed worker
    left is resumed by its redelivery and each row is redriven once (conditional claim)."""

    account = models.ForeignKey(AwsAccount, on_delete=models.CASCADE, related_name="+")
    group = models.ForeignKey(
        FailureGroup, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    username = models.CharField(max_length=150)
    # A batch of the failing-executions page: the filter it was started from (query-string
    # names and values, as the page's "Redrive these" link sent them); empty for a group's.
    filters = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Renewed by the task before each row; a batch silent for SYNC_STALE_AFTER_SECONDS (its
    # worker was killed) is queued again by the beat (operations.tasks.resume_redrive_batches).
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Redrive batch {self.pk} by {self.username}"

    def get_absolute_url(self) -> str:
        return reverse("operations:batch", args=[self.pk])

    @property
    def filter_query(self) -> str:
        return urlencode(self.filters) if isinstance(self.filters, dict) else ""


class OperatorAction(models.Model):
    kind = models.CharField(max_length=10, choices=ActionKind.choices)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Kept when the user is deleted: the audit says who, whatever happens to the account.
    username = models.CharField(max_length=150)
    account = models.ForeignKey(AwsAccount, on_delete=models.CASCADE, related_name="+")
    execution = models.ForeignKey(
        Execution, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    target = models.CharField(max_length=2048, help_text="The ARN acted on.")
    # The request as sent, secrets redacted (operations/audit.py).
    request = models.JSONField(default=dict, blank=True)
    client_token = models.CharField(max_length=64, unique=True)
    aws_request_id = models.CharField(max_length=128, blank=True)
    outcome = models.CharField(
        max_length=10, choices=ActionOutcome.choices, default=ActionOutcome.PENDING
    )
    message = models.TextField(blank=True)
    # When a task took the row (RUNNING): another task takes it over only once it is stale.
    claimed_at = models.DateTimeField(null=True, blank=True)
    batch = models.ForeignKey(
        RedriveBatch, null=True, blank=True, on_delete=models.CASCADE, related_name="actions"
    )
    # A replay: the attempt replayed, and TestState's answer with every secret redacted
    # (operations/replay_result.py). A revealed answer is never stored, only this form.
    attempt = models.ForeignKey(
        HttpAttempt, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    result = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = OperatorActionQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "-created_at"], name="operations_action_user")]
        permissions = [
            ("replay_attempt", "Can replay an HTTP attempt through TestState"),
            ("reveal_secrets", "Can reveal connection secrets in a replay"),
            ("redrive_execution", "Can redrive executions"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} of {self.target} by {self.username}"

    def get_absolute_url(self) -> str:
        return reverse("operations:action", args=[self.pk])

    @property
    def outcome_colour(self) -> str:
        return ActionOutcome(self.outcome).colour

    @property
    def is_replay(self) -> bool:
        return self.kind in (ActionKind.REPLAY, ActionKind.REVEAL)

    @property
    def is_open(self) -> bool:
        return self.outcome in (ActionOutcome.PENDING, ActionOutcome.RUNNING)
