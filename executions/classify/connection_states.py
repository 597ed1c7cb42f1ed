"""What the connection's recorded states say about a failure (issue 15 item 6).

DescribeConnection's states tell three failures apart that the HTTP task's error does not:
a private connection still provisioning after a create or update (AWS: calls may fail for the
first minutes; retry on timeouts), a private connection whose network path failed
(FAILED_CONNECTIVITY: VPC Lattice, not credentials) and a de-authorization caused by the
connection secret's KMS key (fix the key policy; new credentials will not help).

Only private connections are ever ACTIVE or FAILED_CONNECTIVITY (public ones are AUTHORIZED),
so the state itself says a connection is private. The checks here read the state in force when
the attempt was made: the newest recorded change at or before it.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from connections.deauthorization import DEAUTHORIZED
from executions.classify.context import ConnectionStateChange
from executions.classify.facts import Facts
from executions.classify.handling import advise_retry

ACTIVE = "ACTIVE"
FAILED_CONNECTIVITY = "FAILED_CONNECTIVITY"
# AWS gives no figure for "a few minutes" of provisioning; calls later than this after the
# create or update are not blamed on it.
PROVISIONING_WINDOW = timedelta(minutes=10)
# The errors a still-provisioning private connection produces: no answer in time.
PROVISIONING_ERRORS = frozenset({"States.Http.Socket", "States.Timeout"})
# A StateReason that names the key: "KMS", "kms:Decrypt", "KMSAccessDenied", "AWS KMS key".
_KMS = re.compile(r"\bkms\b|\bkms[A-Z:]|\bkey policy\b", re.IGNORECASE)


def state_at_attempt(f: Facts) -> ConnectionStateChange | None:
    """The connection's state when the attempt was made (the newest change if its time is
    unknown), or None when no state is known."""
    at = f.attempt.scheduled_at or f.attempt.closed_at
    known = [
        c
        for c in f.context.connection_states
        if isinstance(c, ConnectionStateChange) and (at is None or _aware(c.at) <= _aware(at))
    ]
    return max(known, key=lambda c: _aware(c.at)) if known else None


def _note(f: Facts, change: ConnectionStateChange) -> None:
    f.decided_by.append("connection_states")
    f.extra["connection_state"] = {
        "state": change.state,
        "at": _iso(change.at),
        "reason": change.reason,
        "inferred": change.reason.startswith("inferred"),
    }


# --------------------------------------------------------------------------- checks


def provisioning(f: Facts) -> bool:
    """A timeout through a private connection made ACTIVE (created or updated) minutes ago."""
    change = state_at_attempt(f)
    at = f.attempt.scheduled_at or f.attempt.closed_at
    if change is None or at is None or change.state.upper() != ACTIVE:
        return False
    since = _aware(at) - _aware(change.at)
    if not timedelta(0) <= since <= PROVISIONING_WINDOW:
        return False
    _note(f, change)
    f.extra["seconds_since_change"] = int(since.total_seconds())
    return True


def failed_connectivity(f: Facts) -> bool:
    change = state_at_attempt(f)
    if change is None or change.state.upper() != FAILED_CONNECTIVITY:
        return False
    _note(f, change)
    return True


def kms_deauthorized(f: Facts) -> bool:
    change = state_at_attempt(f)
    if change is None or change.state.upper() != DEAUTHORIZED or not _KMS.search(change.reason):
        return False
    _note(f, change)
    return True


# --------------------------------------------------------------------------- hints


def provisioning_hint(f: Facts) -> str:
    seconds = f.extra.get("seconds_since_change", 0)
    retry = advise_retry(
        f,
        "add a Retry on States.Timeout and States.Http.Socket (e.g. IntervalSeconds 30, "
        "BackoffRate 2, MaxAttempts 5)",
        "let it run longer (more MaxAttempts or a longer interval)",
    )
    return (
        f"{f.call} got no answer {_ago(seconds)} after the private-API connection {f.connection} "
        "was created or updated: AWS says calls may fail for the first minutes while a private "
        f"connection provisions (VPC Lattice) — {retry}; if it persists, check the resource "
        "configuration and gateway"
    )


def failed_connectivity_hint(f: Facts) -> str:
    reason = f.extra.get("connection_state", {}).get("reason", "")
    why = f" ({reason})" if reason else ""
    return (
        f"connection {f.connection} is FAILED_CONNECTIVITY{why}: EventBridge cannot reach the "
        "private endpoint — a network path problem (the VPC Lattice resource configuration, its "
        "resource gateway, security groups or DNS), not credentials: fix the path, then call "
        "UpdateConnection; rotating the credentials will not help"
    )


def kms_deauthorized_hint(f: Facts) -> str:
    change = f.extra.get("connection_state", {})
    return (
        f"connection {f.connection} was de-authorized at {change.get('at', '?')} because "
        f"EventBridge could not use the KMS key of its secret ({change.get('reason', '')}) — fix "
        "the key policy (allow EventBridge kms:Decrypt and kms:GenerateDataKey for the "
        "connection's secret; the key must be enabled and tagged EventBridgeApiDestinations=true),"
        " then call UpdateConnection; do not rotate the credentials, they are not the problem"
    )


def _ago(seconds: int) -> str:
    return f"{seconds} s" if seconds < 120 else f"{seconds // 60} min"


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _iso(value: datetime) -> str:
    return _aware(value).astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
