"""What the API answers. Output only: the OpenAPI schema is generated from these, and the
schemathesis test checks every answer against it.

Request and response payloads are redacted again on the way out, with the same Redactor the
pages use (executions/redaction.py), so patterns added after a row was stored still apply.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from alerts.choices import AlertKind, Channel, DeliveryStatus
from alerts.models import AlertRule, DeliveryAttempt
from connections.models import Connection, ConnectionStateChange, Endpoint, SyncRun
from executions.models import Execution, FailureGroup, HttpAttempt


class ErrorSerializer(serializers.Serializer[Any]):
    message = serializers.CharField()
    # Shadows Serializer.errors for the type checker only: DRF moves declared fields off the class.
    errors = serializers.DictField(  # type: ignore[assignment]
        child=serializers.ListField(child=serializers.CharField()), required=False
    )


class PageSerializer(serializers.Serializer[Any]):
    """Keyset page: `next` is the URL of the next page, null on the last one."""

    next = serializers.URLField(allow_null=True)


class AttemptSerializer(serializers.ModelSerializer[HttpAttempt]):
    """A failing attempt as listed (the list page's columns: no payloads)."""

    url = serializers.CharField(help_text="Redacted.")

    class Meta:
        model = HttpAttempt
        fields: tuple[str, ...] = (
            "id", "occurred_at", "account", "execution", "state_name", "attempt_number",
            "method", "url", "status_code", "error", "category", "subcategory", "duration_ms",
            "connection_arn", "connection", "endpoint", "outcome", "final_attempt", "caught",
        )  # fmt: skip


class AttemptDetailSerializer(AttemptSerializer):
    """One attempt with its classification and its redacted request and response."""

    cause = serializers.CharField()
    request_headers = serializers.JSONField()
    request_query = serializers.JSONField()
    request_body = serializers.JSONField()
    response_headers = serializers.JSONField()
    response_body = serializers.JSONField()

    class Meta(AttemptSerializer.Meta):
        fields = (
            *AttemptSerializer.Meta.fields,
            "branch_path", "redrive_count", "scheduled_at", "closed_at", "cause",
            "evidence", "hint", "classifier_version", "failure_group", "response_truncated",
            "request_headers", "request_query", "request_body", "response_headers",
            "response_body", "timeout_seconds",
        )  # fmt: skip


class AttemptPage(PageSerializer):
    results = AttemptSerializer(many=True)


class ExecutionSerializer(serializers.ModelSerializer[Execution]):
    inspected = serializers.BooleanField(
        read_only=True,
        help_text='False for a failure known only from ListExecutions ("failed — not yet'
        ' inspected"): its history, attempts, error and cause are still to be read.',
    )

    class Meta:
        model = Execution
        fields: tuple[str, ...] = (
            "id", "arn", "name", "account", "state_machine", "status", "start_date",
            "stop_date", "error", "redrive_count", "source", "has_failed_attempt",
            "inspected", "parent_execution", "map_run",
        )  # fmt: skip


class MapRunFailureSerializer(serializers.Serializer[Any]):
    method = serializers.CharField()
    endpoint = serializers.CharField()
    category = serializers.CharField()
    subcategory = serializers.CharField()
    children = serializers.IntegerField(help_text="Child executions that ended this way.")


class MapRunSerializer(serializers.Serializer[Any]):
    """A Map Run the execution started, with its children's failures together."""

    id = serializers.IntegerField()
    arn = serializers.CharField()
    label = serializers.CharField()  # type: ignore[assignment]  # a field, not the form label
    map_state = serializers.CharField()
    status = serializers.CharField()
    error = serializers.CharField(help_text="Redacted.")
    cause = serializers.CharField(help_text="Redacted.")
    redrive_count = serializers.IntegerField()
    started_at = serializers.DateTimeField(allow_null=True)
    stopped_at = serializers.DateTimeField(allow_null=True)
    tolerated_failure_percentage = serializers.FloatField(allow_null=True)
    tolerated_failure_count = serializers.IntegerField(allow_null=True)
    execution_counts = serializers.DictField(child=serializers.IntegerField())
    read_problem = serializers.CharField()
    children = serializers.IntegerField()
    failing_children = serializers.IntegerField()
    verdict = serializers.ChoiceField(
        choices=["endpoint", "items", "mixed"],
        allow_null=True,
        help_text="endpoint: all failed the same way at one endpoint; items: the items' own "
        "requests (client-side); mixed: several ways.",
    )
    failures = MapRunFailureSerializer(many=True)
    hint = serializers.CharField()


class ExecutionDetailSerializer(ExecutionSerializer):
    cause = serializers.CharField(help_text="Redacted.")
    attempts = AttemptDetailSerializer(many=True)
    attempts_truncated = serializers.BooleanField()
    map_runs = MapRunSerializer(many=True)

    class Meta(ExecutionSerializer.Meta):
        fields = (
            *ExecutionSerializer.Meta.fields, "cause", "attempts", "attempts_truncated", "map_runs"
        )  # fmt: skip


class ExecutionPage(PageSerializer):
    results = ExecutionSerializer(many=True)


class GroupSerializer(serializers.ModelSerializer[FailureGroup]):
    class Meta:
        model = FailureGroup
        fields: tuple[str, ...] = (
            "id", "account", "title", "category", "subcategory", "status", "status_code",
            "error", "method", "connection", "connection_arn", "endpoint", "hint",
            "first_seen_at", "last_seen_at", "count", "status_changed_at", "regressed_at",
        )  # fmt: skip


class GroupDetailSerializer(GroupSerializer):
    affected_executions = serializers.IntegerField()
    recent_attempts = AttemptSerializer(many=True)

    class Meta(GroupSerializer.Meta):
        fields = (*GroupSerializer.Meta.fields, "affected_executions", "recent_attempts")


class GroupPage(PageSerializer):
    results = GroupSerializer(many=True)


class ConnectionSerializer(serializers.ModelSerializer[Connection]):
    failures = serializers.IntegerField(help_text="Failing attempts in the window.")

    class Meta:
        model = Connection
        fields: tuple[str, ...] = (
            "id", "arn", "name", "account", "region", "authorization_type", "state",
            "state_reason", "last_authorized_at", "aws_modified_at", "aws_created_at",
            "private_resources", "kms_key_identifier", "failures",
        )  # fmt: skip


class StateChangeSerializer(serializers.ModelSerializer[ConnectionStateChange]):
    class Meta:
        model = ConnectionStateChange
        fields: tuple[str, ...] = ("state", "reason", "changed_at", "observed_at")


class ConnectionDetailSerializer(ConnectionSerializer):
    window_start = serializers.DateTimeField()
    window_end = serializers.DateTimeField()
    state_history = StateChangeSerializer(many=True)
    cascade = serializers.JSONField(
        help_text="De-authorization episodes in the window: trigger, and what failed after."
    )
    endpoints = serializers.JSONField(
        help_text="Endpoints called through it, by failures: `total` counts finished calls "
        "(aborted and in-progress ones are not), `aborted` the calls cut off."
    )

    class Meta(ConnectionSerializer.Meta):
        fields = (
            *ConnectionSerializer.Meta.fields,
            "window_start", "window_end", "state_history", "cascade", "endpoints",
        )  # fmt: skip


class ConnectionPage(PageSerializer):
    results = ConnectionSerializer(many=True)


class EndpointSerializer(serializers.ModelSerializer[Endpoint]):
    class Meta:
        model = Endpoint
        fields: tuple[str, ...] = (
            "id",
            "account",
            "method",
            "url_template",
            "first_seen_at",
            "last_seen_at",
        )


class StatusMixSerializer(serializers.Serializer[Any]):
    status_code = serializers.IntegerField(allow_null=True)
    outcome = serializers.CharField()
    count = serializers.IntegerField()


class LatencySerializer(serializers.Serializer[Any]):
    p50 = serializers.FloatField(allow_null=True)
    p95 = serializers.FloatField(allow_null=True)


class EndpointDetailSerializer(EndpointSerializer):
    window_start = serializers.DateTimeField()
    window_end = serializers.DateTimeField()
    total = serializers.IntegerField(
        help_text="Finished calls in the window: aborted and in-progress ones are not counted."
    )
    failures = serializers.IntegerField()
    aborted = serializers.IntegerField(
        help_text="Calls cut off in the window (StopExecution, an aborted state, another "
        "branch's failure): in neither `total` nor `latency_ms`."
    )
    latency_ms = LatencySerializer(help_text="p50/p95 of the finished, timed calls.")
    status_mix = StatusMixSerializer(many=True)

    class Meta(EndpointSerializer.Meta):
        fields = (
            *EndpointSerializer.Meta.fields,
            "window_start", "window_end", "total", "failures", "aborted", "latency_ms",
            "status_mix",
        )  # fmt: skip


class EndpointPage(PageSerializer):
    results = EndpointSerializer(many=True)


class SyncRunSerializer(serializers.ModelSerializer[SyncRun]):
    class Meta:
        model = SyncRun
        fields: tuple[str, ...] = (
            "id", "account", "started_at", "finished_at", "status", "trigger", "api_calls",
            "executions_added", "executions_updated", "attempts_added", "errors", "fatal",
            "throttles", "unreadable", "progress",
        )  # fmt: skip


class SyncRunPage(PageSerializer):
    results = SyncRunSerializer(many=True)


class GroupStatusSerializer(serializers.Serializer[Any]):
    status = serializers.ChoiceField(choices=["open", "resolved", "ignored"])


class IsSet(serializers.BooleanField):
    """Whether a secret field holds a value; the value itself never leaves the server."""

    def to_representation(self, value: Any) -> bool:
        return bool(value)


class AlertRuleSerializer(serializers.ModelSerializer[AlertRule]):
    """A rule with its filters and channels. Webhook URLs embed a token and the signing secret
    signs deliveries: the API says only whether each is set (the view never loads them)."""

    channels = serializers.SerializerMethodField()
    slack_webhook_set = IsSet(help_text="A Slack incoming-webhook URL is set (never shown).")
    webhook_set = IsSet(help_text="A signed JSON webhook URL is set (never shown).")
    signing_secret_set = IsSet(help_text="A signing secret is set (never shown).")
    apprise_set = IsSet(help_text="Apprise URLs are set (never shown).")
    sent = serializers.IntegerField(help_text="Deliveries sent.")
    failed = serializers.IntegerField(help_text="Deliveries given up after every retry.")

    class Meta:
        model = AlertRule
        fields = (
            "id", "name", "enabled", "events", "accounts", "regions", "connections", "endpoints",
            "categories", "final_attempts_only", "email_to", "channels", "slack_webhook_set",
            "webhook_set", "signing_secret_set", "apprise_set", "quiet_period_seconds", "created_at", "sent",
            "failed",
        )  # fmt: skip

    @extend_schema_field(serializers.ListField(child=serializers.ChoiceField(Channel.choices)))
    def get_channels(self, rule: AlertRule) -> list[str]:
        # From the view's annotations: the model's `channels` property would decrypt the URLs.
        present = {
            Channel.EMAIL: bool(rule.email_to),
            Channel.SLACK: getattr(rule, "slack_webhook_set", False),
            Channel.WEBHOOK: getattr(rule, "webhook_set", False),
            Channel.APPRISE: getattr(rule, "apprise_set", False),
        }
        return [str(channel) for channel, found in present.items() if found]


class AlertRulePage(PageSerializer):
    results = AlertRuleSerializer(many=True)


class DeliveryLogSerializer(serializers.ModelSerializer[DeliveryAttempt]):
    """One try of one delivery, as the rule's page lists it."""

    alert = serializers.IntegerField(source="delivery.alert_id")
    alert_kind = serializers.ChoiceField(source="delivery.alert.kind", choices=AlertKind.choices)
    alert_title = serializers.CharField(help_text="The alert's title (redacted).")
    channel = serializers.ChoiceField(source="delivery.channel", choices=Channel.choices)
    delivery_status = serializers.ChoiceField(
        source="delivery.status",
        choices=DeliveryStatus.choices,
        help_text="Where the delivery stands now: a failed try of a pending one will be retried.",
    )
    answer = serializers.CharField(help_text="The receiver's answer or the error (redacted).")

    class Meta:
        model = DeliveryAttempt
        fields = ("id", "at", "ok", "answer", "alert", "alert_kind", "alert_title", "channel",
                  "delivery_status")  # fmt: skip


class DeliveryLogPage(PageSerializer):
    results = DeliveryLogSerializer(many=True)
