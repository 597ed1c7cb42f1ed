"""One recipe for classifying an attempt in context, whatever knows the context.

`classify_in_context` is what ingestion, `reclassify`, `classify_history` and the benchmark
call. It asks a `ContextSource` only what the attempt's class can depend on (the last success
before it for a 4xx; the connection's states for an InvalidConnectionState failure), so the
answer is a function of the attempts known, never of the order they arrived in:

- the last success is the newest successful call to the same method and endpoint template
  that happened *before the attempt* (by time, as the execution page's diff picks it);
- connection states are every recorded or inferred change; the rule picks the one nearest
  before the attempt itself.

Two sources: `InMemoryContext` here (fed every attempt first, then asked), and the
database-backed one in `executions/stored_context.py`.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from operator import itemgetter
from typing import Protocol

from executions.classify.connection_states import PROVISIONING_ERRORS
from executions.classify.context import (
    ClassificationContext,
    ConnectionStateChange,
    RequestShape,
)
from executions.classify.engine import Classification, classify, needs_last_success
from executions.classify.trackers import DeauthorizationTracker, endpoint_key
from executions.history import OUTCOME_SUCCEEDED, HttpStateInfo, ParsedAttempt

INVALID_CONNECTION_STATE = "Events.ConnectionResource.InvalidConnectionState"


class ContextSource(Protocol):
    """What is known beyond one attempt, asked only when it can change the attempt's class."""

    def last_success(self, attempt: ParsedAttempt, before: datetime | None) -> RequestShape | None:
        """The request shape of the newest success to the attempt's endpoint before `before`."""
        ...

    def connection_states(self, connection_arn: str) -> Sequence[ConnectionStateChange]:
        """Every known state change of the connection (recorded or inferred), oldest first."""
        ...


def classify_in_context(
    attempt: ParsedAttempt,
    source: ContextSource,
    definition_state: HttpStateInfo | None = None,
    at: datetime | None = None,
) -> Classification:
    """Classify `attempt` with what `source` knows; `at` is when it happened (default: its
    scheduled, else closed time — ingestion passes the stored occurred_at)."""
    when = at if at is not None else attempt_time(attempt)
    context = ClassificationContext(
        connection_states=(
            source.connection_states(attempt.connection_arn)
            if needs_connection_states(attempt)
            else ()
        ),
        last_success_shape=(
            source.last_success(attempt, when) if needs_last_success(attempt) else None
        ),
        definition_state=definition_state,
    )
    return classify(attempt, context)


# The errors whose class the connection's states can change: de-authorized (by a 401/407 or a
# KMS key) or FAILED_CONNECTIVITY, and timeouts of a private connection still provisioning.
NEEDS_CONNECTION_STATES = frozenset(
    {
        INVALID_CONNECTION_STATE,
        "Events.ConnectionResource.InvalidPrivateConnectionState",
        *PROVISIONING_ERRORS,
    }
)


def needs_connection_states(attempt: ParsedAttempt) -> bool:
    """Whether the connection's states can change this attempt's class."""
    return attempt.error in NEEDS_CONNECTION_STATES and bool(attempt.connection_arn)


def attempt_time(attempt: ParsedAttempt) -> datetime | None:
    """When the attempt happened, as stored in occurred_at (scheduled, else closed)."""
    return attempt.scheduled_at or attempt.closed_at


_Request = tuple[object, object, object]  # a success's Headers, QueryParameters, RequestBody


class InMemoryContext:
    """A `ContextSource` over attempts held in memory (`classify_history`, the benchmark).

    Observe every attempt first, then classify: a success observed after a failure still
    counts for it when it happened before it.
    """

    def __init__(self, attempts: Iterable[ParsedAttempt] = ()) -> None:
        # Per (METHOD, template): success times and requests, sorted on demand. The request
        # only, not the attempt: its response would stay in memory as long as the source.
        self._successes: dict[tuple[str, str], list[tuple[datetime, _Request]]] = {}
        self._sorted: set[tuple[str, str]] = set()
        self._shapes: dict[tuple[str, str], dict[int, RequestShape]] = {}
        self._deauthorizations = DeauthorizationTracker()
        self._recorded: dict[str, list[ConnectionStateChange]] = {}
        self.observe_all(attempts)

    def record(self, connection_arn: str, change: ConnectionStateChange) -> None:
        """A state DescribeConnection reported (a saved answer given with the histories)."""
        self._recorded.setdefault(connection_arn, []).append(change)

    def observe_all(self, attempts: Iterable[ParsedAttempt]) -> None:
        for attempt in attempts:
            self.observe(attempt)

    def observe(self, attempt: ParsedAttempt) -> None:
        if attempt.outcome == OUTCOME_SUCCEEDED:
            at = attempt.scheduled_at or attempt.closed_at  # attempt_time, inlined: per attempt
            if attempt.url and at is not None:
                key = endpoint_key(attempt.method, attempt.url)
                request = (attempt.request_headers, attempt.request_query, attempt.request_body)
                self._successes.setdefault(key, []).append((at, request))
                self._sorted.discard(key)
                self._shapes.pop(key, None)  # positions move once it is sorted in
        else:
            self._deauthorizations.observe(attempt)

    def last_success(self, attempt: ParsedAttempt, before: datetime | None) -> RequestShape | None:
        found = self.last_success_to(attempt.method, attempt.url, before)
        return found[1] if found else None

    def last_success_to(
        self, method: str, url: str, before: datetime | None
    ) -> tuple[datetime, RequestShape] | None:
        """When the newest success to METHOD url's template before `before` happened, and its
        request shape."""
        key = endpoint_key(method, url)
        successes = self._successes.get(key)
        if not successes or before is None:
            return None
        if key not in self._sorted:
            successes.sort(key=_time)
            self._sorted.add(key)
        index = bisect_left(successes, before, key=_time) - 1
        if index < 0:
            return None
        # Many failures share one last success: its shape is computed once.
        shapes = self._shapes.setdefault(key, {})
        if index not in shapes:
            shapes[index] = RequestShape.from_request(*successes[index][1])
        return successes[index][0], shapes[index]

    def clear(self) -> None:
        self._successes.clear()
        self._sorted.clear()
        self._shapes.clear()
        self._deauthorizations = DeauthorizationTracker()
        self._recorded.clear()

    def connection_states(self, connection_arn: str) -> Sequence[ConnectionStateChange]:
        inferred = self._deauthorizations.changes_for(connection_arn)
        recorded = self._recorded.get(connection_arn)
        return with_recorded(recorded, inferred) if recorded else sorted(inferred, key=_change_time)


# A C-level key: it runs for every sort and bisect of the successes.
_time: Callable[[tuple[datetime, _Request]], datetime] = itemgetter(0)


def _change_time(change: ConnectionStateChange) -> datetime:
    return change.at


def with_recorded(
    recorded: Sequence[ConnectionStateChange], inferred: Sequence[ConnectionStateChange]
) -> tuple[ConnectionStateChange, ...]:
    """Recorded (DescribeConnection) and inferred (401/407) changes, oldest first."""
    return tuple(sorted((*recorded, *inferred), key=_change_time))
