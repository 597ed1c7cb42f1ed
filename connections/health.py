"""Connection health: de-authorization episodes and the cascade of failures each one caused.

EventBridge de-authorizes a Basic or API-key connection as soon as the endpoint answers 401 or
407 (an OAuth one when its token cannot be refreshed). From then on every HTTP task through it
fails with `Events.ConnectionResource.InvalidConnectionState`, in every state machine that
shares it, until someone calls UpdateConnection. Those failures are noise around one cause;
this module names the cause.

Pure: the view runs two aggregate queries whose shape these functions decide (`plan`,
`trigger_windows`), then `episodes` joins the answers. No database, no Django models.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol
from urllib.parse import urlencode, urlsplit

from connections.choices import AuthorizationType, ConnectionState
from connections.deauthorization import INVALID_STATE
from connections.windows import WINDOWS

MAX_EPISODES = 5

# A Basic/API-key connection is de-authorized by the first 401/407 after it was last
# authorized, so a long look back is safe. An OAuth connection refreshes its token on a 401
# and gives up only if that fails: only the answer just before the de-authorization counts.
LOOKBACK = timedelta(hours=24)
OAUTH_LOOKBACK = timedelta(minutes=15)

OPENING_STATES = frozenset({ConnectionState.DEAUTHORIZED, ConnectionState.DEAUTHORIZING})
# States that end an episode: authorized again, or the connection is gone. Others met on the
# way (AUTHORIZING, UPDATING) do not: calls still fail while they last.
CLOSING_STATES = frozenset(
    {
        ConnectionState.AUTHORIZED,
        ConnectionState.ACTIVE,
        ConnectionState.DELETING,
        ConnectionState.DELETED,
    }
)


class StateChangeLike(Protocol):
    """What a recorded state change must offer (a `ConnectionStateChange` row does)."""

    @property
    def state(self) -> str: ...

    @property
    def changed_at(self) -> datetime: ...

    @property
    def reason(self) -> str: ...


@dataclass(frozen=True)
class Deauthorization:
    """A stretch during which the connection handed out no credentials, as AWS reported it."""

    started_at: datetime
    ended_at: datetime | None  # None: still de-authorized
    reason: str  # the StateReason of the de-authorizing change
    ended_by: str = ""  # the state that ended it (AUTHORIZED, ACTIVE, DELETED…)
    # False when no change was recorded and the start is the connection's LastModifiedTime.
    recorded: bool = True

    @property
    def deleted(self) -> bool:
        return self.ended_by in (ConnectionState.DELETING, ConnectionState.DELETED)


def deauthorizations(
    changes: Sequence[StateChangeLike],
    *,
    current_state: str = "",
    current_reason: str = "",
    modified_at: datetime | None = None,
) -> list[Deauthorization]:
    """De-authorized stretches from the state history, oldest first.

    A connection that is de-authorized now but has no recorded change (synced for the first
    time while broken) gets one open stretch from its last AWS modification, the best start
    known.
    """
    found: list[Deauthorization] = []
    opened: StateChangeLike | None = None
    reason = ""
    for change in sorted(changes, key=lambda c: c.changed_at):
        if change.state in OPENING_STATES:
            if opened is None:
                opened, reason = change, change.reason
            elif change.state == ConnectionState.DEAUTHORIZED and change.reason:
                # DEAUTHORIZING says little; the DEAUTHORIZED that follows carries the why.
                reason = change.reason
        elif change.state in CLOSING_STATES and opened is not None:
            found.append(
                Deauthorization(opened.changed_at, change.changed_at, reason, change.state)
            )
            opened = None
    if opened is not None:
        found.append(Deauthorization(opened.changed_at, None, reason))
    elif not changes and current_state in OPENING_STATES and modified_at is not None:
        found.append(Deauthorization(modified_at, None, current_reason, recorded=False))
    return found


# --- What to ask the database -----------------------------------------------------------------


@dataclass(frozen=True)
class Segment:
    """A stretch of time whose InvalidConnectionState failures belong to one episode.

    It runs from the end of the previous de-authorization (so failures dated before a change
    that was observed late still count) to the end of this one. The segment after the last
    de-authorization has none: failures there mean a de-authorization no sync observed.
    """

    index: int
    since: datetime
    until: datetime | None
    deauthorization: Deauthorization | None


@dataclass(frozen=True)
class Plan:
    segments: tuple[Segment, ...]
    horizon: datetime  # no failure before this is read
    hidden: int  # de-authorizations in the window beyond MAX_EPISODES, not shown


def lookback(authorization_type: str) -> timedelta:
    if authorization_type == AuthorizationType.OAUTH_CLIENT_CREDENTIALS:
        return OAUTH_LOOKBACK
    return LOOKBACK


def latest_trigger_wins(authorization_type: str) -> bool:
    """Which 401/407 in the look-back window caused it: the first (Basic, API key), or the
    last (OAuth, whose earlier 401s were answered by a successful token refresh)."""
    return authorization_type == AuthorizationType.OAUTH_CLIENT_CREDENTIALS


def plan(
    deauths: Sequence[Deauthorization],
    window_start: datetime,
    window_end: datetime,
    authorization_type: str = "",
    limit: int = MAX_EPISODES,
) -> Plan:
    """The segments to count failures in: the newest `limit` de-authorizations overlapping
    the window, plus the stretch after the last one if it ended."""
    overlapping = [
        i
        for i, d in enumerate(deauths)
        if d.started_at < window_end and (d.ended_at is None or d.ended_at > window_start)
    ]
    shown = overlapping[-limit:] if limit > 0 else []
    oldest = min([window_start, *(deauths[i].started_at for i in shown)])
    horizon = oldest - lookback(authorization_type)
    segments: list[Segment] = []
    for i in shown:
        previous_end = deauths[i - 1].ended_at if i > 0 else None
        since = max(horizon, previous_end) if previous_end else horizon
        segments.append(Segment(len(segments), since, deauths[i].ended_at, deauths[i]))
    last_end = deauths[-1].ended_at if deauths else horizon
    if last_end is not None and last_end < window_end:
        segments.append(Segment(len(segments), max(horizon, last_end), None, None))
    return Plan(tuple(segments), horizon, len(overlapping) - len(shown))


@dataclass(frozen=True)
class MachineHit:
    """InvalidConnectionState failures of one state machine (and account) in one segment."""

    segment: int
    state_machine_id: int
    state_machine: str
    region: str
    account_id: int
    account: str
    failures: int
    executions: int
    first_at: datetime
    last_at: datetime


def first_failure(hits: Sequence[MachineHit], segment: int) -> datetime | None:
    return min((h.first_at for h in hits if h.segment == segment), default=None)


def onset(segment: Segment, hits: Sequence[MachineHit]) -> datetime | None:
    """When calls started failing: the recorded change, or the first failure if earlier."""
    starts = [first_failure(hits, segment.index)]
    if segment.deauthorization is not None:
        starts.append(segment.deauthorization.started_at)
    known = [s for s in starts if s is not None]
    return min(known) if known else None


def trigger_windows(
    the_plan: Plan, hits: Sequence[MachineHit], authorization_type: str = ""
) -> dict[int, tuple[datetime, datetime]]:
    """Per segment, the (from, to) range, both inclusive, in which to look for the 401/407
    answer that de-authorized the connection: before the onset, after the segment began."""
    back = lookback(authorization_type)
    windows = {}
    for segment in the_plan.segments:
        start = onset(segment, hits)
        if start is not None:
            windows[segment.index] = (max(segment.since, start - back), start)
    return windows


# --- The answer -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Trigger:
    """The 401/407 answer that de-authorized the connection."""

    attempt_id: int
    at: datetime
    status_code: int | None
    error: str
    method: str
    endpoint_id: int | None
    endpoint: str  # the URL template (or the redacted URL when no endpoint was matched)
    state_machine_id: int
    state_machine: str
    execution_id: int
    execution: str
    account: str

    @property
    def status(self) -> str:
        if self.status_code is not None:
            return str(self.status_code)
        return self.error.rsplit(".", 1)[-1]

    @property
    def path(self) -> str:
        """The endpoint without its scheme and host: short enough for a headline."""
        return urlsplit(self.endpoint).path or self.endpoint


@dataclass(frozen=True)
class HitRow:
    hit: MachineHit
    list_query: str  # the failing-attempts list, filtered to these failures


@dataclass(frozen=True)
class Episode:
    """One de-authorization: its trigger, the reported change, and what failed because of it."""

    deauthorization: Deauthorization | None  # None: inferred from failures, never observed
    trigger: Trigger | None
    hits: tuple[MachineHit, ...]
    connection_arn: str
    rows: tuple[HitRow, ...] = field(default=())

    @property
    def recorded(self) -> bool:
        return self.deauthorization is not None and self.deauthorization.recorded

    @property
    def started_at(self) -> datetime | None:
        """When calls started failing: the reported change, or the first failure if earlier
        (a change observed by a later sync is dated late)."""
        starts = [self.first_failure_at]
        if self.deauthorization is not None:
            starts.append(self.deauthorization.started_at)
        known = [s for s in starts if s is not None]
        return min(known) if known else None

    @property
    def ended_at(self) -> datetime | None:
        return self.deauthorization.ended_at if self.deauthorization else None

    @property
    def ongoing(self) -> bool:
        return self.deauthorization is not None and self.deauthorization.ended_at is None

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at is None or self.ended_at is None:
            return None
        return (self.ended_at - self.started_at).total_seconds()

    @property
    def failures(self) -> int:
        return sum(h.failures for h in self.hits)

    @property
    def executions(self) -> int:
        return sum(h.executions for h in self.hits)

    @property
    def machines(self) -> int:
        return len({h.state_machine_id for h in self.hits})

    @property
    def accounts(self) -> tuple[str, ...]:
        return tuple(sorted({h.account for h in self.hits}))

    @property
    def first_failure_at(self) -> datetime | None:
        return min((h.first_at for h in self.hits), default=None)

    @property
    def last_failure_at(self) -> datetime | None:
        return max((h.last_at for h in self.hits), default=None)


def list_query(connection_arn: str, hit: MachineHit, until: datetime | None = None) -> str:
    """Filters of the failing-attempts list that show exactly these failures."""
    # The list's bounds are whole seconds: round the start down and the end up.
    filters = {
        "connection": connection_arn,
        "state_machine": str(hit.state_machine_id),
        "q": INVALID_STATE,
        "since": hit.first_at.replace(microsecond=0).strftime("%Y-%m-%d %H:%M:%S"),
    }
    if until is not None:
        ceiling = until.replace(microsecond=0) + timedelta(seconds=1)
        filters["until"] = ceiling.strftime("%Y-%m-%d %H:%M:%S")
    return urlencode(filters)


def episodes(
    the_plan: Plan,
    hits: Sequence[MachineHit],
    triggers: Mapping[int, Trigger],
    connection_arn: str,
) -> list[Episode]:
    """Newest first. The stretch after the last de-authorization becomes an (inferred)
    episode only if calls failed there with InvalidConnectionState."""
    found = []
    for segment in the_plan.segments:
        mine = sorted(
            (h for h in hits if h.segment == segment.index),
            key=lambda h: (-h.failures, h.state_machine, h.account),
        )
        if segment.deauthorization is None and not mine:
            continue
        until = segment.deauthorization.ended_at if segment.deauthorization else None
        rows = tuple(HitRow(h, list_query(connection_arn, h, until)) for h in mine)
        found.append(
            Episode(
                segment.deauthorization,
                triggers.get(segment.index),
                tuple(mine),
                connection_arn,
                rows,
            )
        )
    return found[::-1]


# --- Links from failure groups ---------------------------------------------------------------


def is_cascade(error: str) -> bool:
    """Whether failures with this error are the consequence of a de-authorization."""
    return error == INVALID_STATE


class ConnectionLike(Protocol):
    @property
    def pk(self) -> Any: ...

    @property
    def name(self) -> str: ...

    @property
    def state(self) -> str: ...


class GroupLike(Protocol):
    """What a failure group must offer (a `FailureGroup` row with its connection does)."""

    @property
    def error(self) -> str: ...

    @property
    def last_seen_at(self) -> datetime: ...

    @property
    def connection(self) -> ConnectionLike | None: ...


@dataclass(frozen=True)
class CascadeLink:
    """A pointer from InvalidConnectionState failures to the panel that explains them."""

    connection_id: int
    connection: str
    deauthorized_now: bool
    window: str  # the connection page's preset window that still shows the failures


def window_for(at: datetime, now: datetime) -> str:
    """The shortest preset window of the connection page that reaches back to `at`."""
    for key, (_, span) in WINDOWS.items():  # shortest first
        if now - span <= at:
            return key
    return list(WINDOWS)[-1]


def cascade_links(groups: Iterable[GroupLike], now: datetime) -> list[CascadeLink]:
    """One link per connection whose de-authorization explains some of these groups."""
    latest: dict[int, tuple[datetime, ConnectionLike]] = {}
    for group in groups:
        connection = group.connection
        if connection is None or not is_cascade(group.error):
            continue
        seen = latest.get(connection.pk)
        if seen is None or group.last_seen_at > seen[0]:
            latest[connection.pk] = (group.last_seen_at, connection)
    return [
        CascadeLink(
            connection.pk,
            connection.name,
            connection.state in OPENING_STATES,
            window_for(at, now),
        )
        for at, connection in latest.values()
    ]
