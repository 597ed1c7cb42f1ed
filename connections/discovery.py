"""EventBridge connection state: listed every sync, each change kept for the health timeline."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from connections.aws import AwsApi, AwsError
from connections.choices import ConnectionState
from connections.models import AwsAccount, Connection, ConnectionStateChange, owned_elsewhere
from connections.unreadable import CONNECTION, GONE_CODES, Unreadable, unreadable

OnUnreadable = Callable[[Unreadable], None]


class ConnectionGoneError(Exception):
    """Listed, then not found by DescribeConnection: deleted in between."""


def sync_connections(
    api: AwsApi,
    account: AwsAccount,
    on_unreadable: OnUnreadable | None = None,
    on_skip: Callable[[str], None] | None = None,
) -> dict[str, Connection]:
    """ListConnections (DescribeConnection only for new or modified ones); returns them by ARN.

    A connection DescribeConnection cannot read costs only itself: it is handed to
    `on_unreadable` and the others are still stored. A connection another registration owns is
    left alone and reported to `on_skip`.
    """
    report = on_unreadable or (lambda _problem: None)
    seen: dict[str, Connection] = {}
    for page in api.pages("events", "ListConnections", token_key="NextToken", Limit=100):
        for item in page.get("Connections", []):
            arn = str(item.get("ConnectionArn", ""))
            if not arn:
                continue
            existing = Connection.objects.filter(arn=arn).first()
            if existing is not None and existing.account_id != account.pk:
                # Forms refuse overlapping registrations; this covers rows forced past them.
                if on_skip is not None:
                    on_skip(owned_elsewhere("connection", arn, _name_of(existing.account_id)))
                continue
            try:
                seen[arn] = _upsert(api, account, item, existing, report)
            except ConnectionGoneError:
                continue  # not seen: a stored row of it is marked deleted below
    _mark_deleted(account, api.region, seen)
    return seen


def _name_of(account_pk: int) -> str:
    # Only the name: loading the row would decrypt its secrets for nothing.
    name = AwsAccount.objects.filter(pk=account_pk).values_list("name", flat=True).first()
    return name or f"#{account_pk}"


def _upsert(
    api: AwsApi,
    account: AwsAccount,
    item: dict[str, Any],
    existing: Connection | None,
    report: OnUnreadable,
) -> Connection:
    arn = str(item["ConnectionArn"])
    # DescribeConnection takes the name: the listing's, never one cut out of the ARN.
    name = str(item.get("Name", ""))
    modified = _aware(item.get("LastModifiedTime"))
    names = None
    if (
        existing is None
        or (modified and existing.aws_modified_at != modified)
        # Described before secrecy was recorded: once more, so non-secret ones show again.
        or "secret" not in (existing.invocation_parameter_names or {})
    ):
        names = _readable_parameter_names(api, name, arn, report)
    with transaction.atomic():
        conn = existing or Connection(arn=arn, account=account, region=api.region)
        changed_state = conn.state != item.get("ConnectionState", "") or (
            conn.state_reason != (item.get("StateReason") or "")
        )
        if names is not None:
            conn.invocation_parameter_names = names
        conn.name = name[:128]
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


def _readable_parameter_names(
    api: AwsApi, name: str, arn: str, report: OnUnreadable
) -> dict[str, list[str]] | None:
    """The parameter names, or None (kept as stored) when this connection cannot be described;
    raises ConnectionGoneError when it no longer exists."""
    try:
        return _parameter_names(api, name)
    except AwsError as exc:
        if not exc.about_one_resource:
            raise
        gone = exc.code in GONE_CODES
        missing = (
            "deleted after it was listed: not stored (a stored copy is marked deleted)"
            if gone
            else "state stored from the listing; the names of the parameters it adds are unknown"
        )
        report(unreadable(CONNECTION, name, arn, api.region, exc, missing))
        if gone:
            raise ConnectionGoneError(arn) from exc
        return None


def _parameter_names(api: AwsApi, name: str) -> dict[str, list[str]]:
    """Names (never values) of the headers/query/body parameters the connection injects, and
    which of them carry secret values (the redactor hides those in its calls)."""
    detail = api.call("events", "DescribeConnection", Name=name)
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
