"""EventBridge connection state: listed every sync, each change kept for the health timeline."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from connections.aws import AwsApi, AwsError, ConnectionDetail, ConnectionSummary
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
    for page in api.connection_pages():
        for item in page:
            arn = item.arn
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
    item: ConnectionSummary,
    existing: Connection | None,
    report: OnUnreadable,
) -> Connection:
    arn, name, modified = item.arn, item.name, item.modified_at
    detail = None
    if (
        existing is None
        or (modified and existing.aws_modified_at != modified)
        # Described before secrecy (or connectivity and KMS key) was recorded: once more.
        or "secret" not in (existing.invocation_parameter_names or {})
        or existing.described_at is None
    ):
        detail = _readable_detail(api, name, arn, report)
    with transaction.atomic():
        conn = existing or Connection(arn=arn, account=account, region=api.region)
        changed_state = conn.state != item.state or conn.state_reason != item.state_reason
        if detail is not None:
            conn.invocation_parameter_names = parameter_names(detail)
            conn.private_resources = private_resources(detail)
            conn.kms_key_identifier = detail.kms_key_identifier[:2048]
            conn.described_at = timezone.now()
        # A private connection provisions for minutes after each create or update, in the
        # state it had (ACTIVE): the change is dated, so the classifier can say so (#15 item 6).
        changed_state = changed_state or bool(
            conn.private_resources and modified and conn.aws_modified_at != modified
        )
        conn.aws_created_at = item.created_at or conn.aws_created_at
        conn.name = name[:128]
        conn.authorization_type = item.authorization_type
        conn.state = item.state
        conn.state_reason = item.state_reason
        conn.last_authorized_at = item.authorized_at
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


def _readable_detail(
    api: AwsApi, name: str, arn: str, report: OnUnreadable
) -> ConnectionDetail | None:
    """DescribeConnection, or None (what is stored is kept) when this connection cannot be
    described; raises ConnectionGoneError when it no longer exists."""
    try:
        return api.describe_connection(name)
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


def private_resources(detail: ConnectionDetail) -> dict[str, dict[str, str]]:
    """The VPC Lattice resources of a private API / private OAuth endpoint, as stored."""
    return {
        kind: {"configuration_arn": r.configuration_arn, "association_arn": r.association_arn}
        for kind, r in (("api", detail.private_api), ("auth", detail.private_auth))
        if r is not None
    }


def parameter_names(detail: ConnectionDetail) -> dict[str, list[str]]:
    """Names (never values) of the headers/query/body parameters the connection injects, and
    which of them carry secret values (the redactor hides those in its calls)."""
    names: dict[str, list[str]] = {"headers": [], "query": [], "body": [], "secret": []}
    for parameter in detail.parameters:
        names[parameter.kind].append(parameter.key)
        if parameter.secret:
            names["secret"].append(parameter.key)
    if detail.api_key_name is not None:
        names["headers"].append(detail.api_key_name)
        names["secret"].append(detail.api_key_name)
    if detail.sends_authorization:
        names["headers"].append("Authorization")
        names["secret"].append("Authorization")
    return names


def _mark_deleted(account: AwsAccount, region: str, seen: dict[str, Connection]) -> None:
    gone = Connection.objects.filter(account=account, region=region).exclude(arn__in=list(seen))
    for conn in gone.exclude(state=ConnectionState.DELETED):
        conn.state, conn.state_reason = ConnectionState.DELETED, "No longer listed by AWS."
        conn.save(update_fields=["state", "state_reason", "last_seen_at"])
        _record_change(conn, None)
