"""EventBridge connection state: listed every sync, each change kept for the health timeline."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from connections.aws import AwsApi
from connections.choices import ConnectionState
from connections.models import AwsAccount, Connection, ConnectionStateChange


def sync_connections(api: AwsApi, account: AwsAccount) -> dict[str, Connection]:
    """ListConnections (DescribeConnection only for new or modified ones); returns them by ARN."""
    seen: dict[str, Connection] = {}
    for page in api.pages("events", "ListConnections", token_key="NextToken", Limit=100):
        for item in page.get("Connections", []):
            arn = str(item.get("ConnectionArn", ""))
            if arn:
                seen[arn] = _upsert(api, account, item)
    _mark_deleted(account, api.region, seen)
    return seen


def _upsert(api: AwsApi, account: AwsAccount, item: dict[str, Any]) -> Connection:
    arn = str(item["ConnectionArn"])
    modified = _aware(item.get("LastModifiedTime"))
    existing = Connection.objects.filter(arn=arn).first()
    with transaction.atomic():
        conn = existing or Connection(arn=arn, account=account, region=api.region)
        changed_state = conn.state != item.get("ConnectionState", "") or (
            conn.state_reason != (item.get("StateReason") or "")
        )
        if (
            existing is None
            or (modified and conn.aws_modified_at != modified)
            # Described before secrecy was recorded: once more, so non-secret ones show again.
            or "secret" not in (conn.invocation_parameter_names or {})
        ):
            conn.invocation_parameter_names = _parameter_names(api, arn)
        conn.name = str(item.get("Name", ""))[:128]
        conn.authorization_type = str(item.get("AuthorizationType", ""))
        conn.state = str(item.get("ConnectionState", ""))
        conn.state_reason = str(item.get("StateReason") or "")
        conn.last_authorized_at = _aware(item.get("LastAuthorizedTime"))
        conn.aws_modified_at = modified
        conn.save()
        if changed_state:
            _record_change(conn, modified)
    return conn


def _record_change(conn: Connection, modified: datetime | None) -> None:
    # AWS's LastModifiedTime is the best time we have for the change; a state seen without it
    # is dated when we saw it.
    ConnectionStateChange.objects.get_or_create(
        connection=conn,
        state=conn.state,
        changed_at=modified or timezone.now(),
        defaults={"reason": conn.state_reason},
    )


def _parameter_names(api: AwsApi, arn: str) -> dict[str, list[str]]:
    """Names (never values) of the headers/query/body parameters the connection injects, and
    which of them carry secret values (the redactor hides those in its calls)."""
    detail = api.call("events", "DescribeConnection", Name=arn.split("/")[-2])
    auth = detail.get("AuthParameters") or {}
    params = auth.get("InvocationHttpParameters") or {}
    names: dict[str, list[str]] = {"headers": [], "query": [], "body": [], "secret": []}
    for kind, field in (
        ("headers", "HeaderParameters"),
        ("query", "QueryStringParameters"),
        ("body", "BodyParameters"),
    ):
        for item in params.get(field) or []:
            key = str(item.get("Key", ""))
            names[kind].append(key)
            # AWS omits the value of a secret parameter: no value means secret too.
            if item.get("IsValueSecret") or "Value" not in item:
                names["secret"].append(key)
    if "ApiKeyAuthParameters" in auth:
        api_key_name = str(auth["ApiKeyAuthParameters"].get("ApiKeyName", ""))
        names["headers"].append(api_key_name)
        names["secret"].append(api_key_name)
    if "BasicAuthParameters" in auth or "OAuthParameters" in auth:
        names["headers"].append("Authorization")
        names["secret"].append("Authorization")
    return names


def _mark_deleted(account: AwsAccount, region: str, seen: dict[str, Connection]) -> None:
    gone = Connection.objects.filter(account=account, region=region).exclude(arn__in=list(seen))
    for conn in gone.exclude(state=ConnectionState.DELETED):
        conn.state, conn.state_reason = ConnectionState.DELETED, "No longer listed by AWS."
        conn.save(update_fields=["state", "state_reason", "last_seen_at"])
        _record_change(conn, None)


def _aware(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if timezone.is_aware(value) else timezone.make_aware(value, UTC)
    return None
