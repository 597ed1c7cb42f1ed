"""The classifier's context from the database: the `ContextSource` of ingestion and reclassify.

What is stored (successes, recorded connection state changes, 401/407 answers) plus what is
being written (`pending`, the batch not yet inserted), so a batch's attempts see each other.
Lookups are cached per sync; `settle` drops what a written batch made stale.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db.models import Subquery

from connections.deauthorization import TRIGGER_STATUSES
from connections.models import AwsAccount, Endpoint
from connections.models import ConnectionStateChange as StoredChange
from executions.choices import Outcome
from executions.classify import (
    ConnectionStateChange,
    DeauthorizationTracker,
    InMemoryContext,
    RequestShape,
    needs_last_success,
    with_recorded,
)
from executions.history import ParsedAttempt
from executions.models import HttpAttempt, HttpAttemptQuerySet

_REQUEST = ("request_headers", "request_query", "request_body")
# At most this many stored successes are read to prime one endpoint's spans (`prime`).
PRIME_LIMIT = 5000


@dataclass(frozen=True, slots=True)
class _Known:
    """The stored last success before `until` was `found` (at `at`), and no stored success
    lies between `at` and `upto`: the answer for any time in (at, upto]."""

    at: datetime | None
    shape: RequestShape | None
    upto: datetime | None  # None: no stored success after `at` at all

    def answers(self, before: datetime) -> bool:
        return (self.at is None or self.at < before) and (self.upto is None or before <= self.upto)


class StoredContext:
    """A `ContextSource` over one account's stored attempts and connection state changes."""

    def __init__(self, account: AwsAccount, template_of: Callable[[str], str]) -> None:
        self.account = account
        self._template_of = template_of  # URL → the endpoint template as stored
        self.pending = InMemoryContext()
        # Per endpoint: the span the last lookup found (replaced on the next miss), and the
        # spans `prime` learned, oldest first, searched by bisection (a long Map history's
        # endpoint can have thousands between two writes).
        self._successes: dict[tuple[str, str], _Known] = {}
        self._primed: dict[tuple[str, str], list[_Known]] = {}
        self._states: dict[str, tuple[ConnectionStateChange, ...]] = {}

    # --- ContextSource

    def last_success(self, attempt: ParsedAttempt, before: datetime | None) -> RequestShape | None:
        template = self._template_of(attempt.url)
        if before is None or not template:
            return None
        stored = self._stored_success(attempt.method, template, before)
        pending = self.pending.last_success_to(attempt.method, attempt.url, before)
        if pending is not None and (stored.at is None or pending[0] > stored.at):
            return pending[1]
        return stored.shape

    def connection_states(self, connection_arn: str) -> Sequence[ConnectionStateChange]:
        if not connection_arn:
            return ()
        if connection_arn not in self._states:
            self._states[connection_arn] = with_recorded(
                recorded_changes(connection_arn), self._inferred(connection_arn)
            )
        pending = self.pending.connection_states(connection_arn)
        stored = self._states[connection_arn]
        return with_recorded(stored, pending) if pending else stored

    def prime(self, asked: Iterable[tuple[ParsedAttempt, datetime]]) -> None:
        """Learn in one go the stored successes that the last-success lookups of `asked`
        (attempts about to be classified, each with its time) will need.

        Per endpoint with two or more lookups the cache cannot answer: the last success
        before the earliest, every success up to the latest (at most PRIME_LIMIT) and the
        first one after it: three queries, where one lookup at a time costs two per gap
        between successes (a reclassify batch is in id order, not time order).
        """
        wanted: dict[tuple[str, str], list[datetime]] = {}
        for attempt, before in asked:
            if not needs_last_success(attempt):
                continue
            template = self._template_of(attempt.url)
            if template and self._cached((attempt.method, template), before) is None:
                wanted.setdefault((attempt.method, template), []).append(before)
        for key, times in wanted.items():
            if len(set(times)) > 1:
                spans = [*self._primed.get(key, ()), *self._spans(key, min(times), max(times))]
                self._primed[key] = sorted(spans, key=_span_start)

    # --- keeping it true

    def settle(self, written: Iterable[HttpAttempt]) -> None:
        """The batch `pending` held is stored now: drop the lookups it made stale."""
        for row in written:
            if row.outcome == Outcome.SUCCEEDED and row.endpoint is not None:
                self._successes.pop((row.method, row.endpoint.url_template), None)
                self._primed.pop((row.method, row.endpoint.url_template), None)
            elif row.status_code in TRIGGER_STATUSES:
                self._states.pop(row.connection_arn, None)
        self.pending.clear()

    def forget(self) -> None:
        """After a rolled-back write: what was looked up there may be gone."""
        self._successes.clear()
        self._primed.clear()
        self._states.clear()
        self.pending.clear()

    def forget_connection_states(self) -> None:
        """New state changes were recorded (DescribeConnection): look them up again."""
        self._states.clear()

    # --- lookups

    def _cached(self, key: tuple[str, str], before: datetime) -> _Known | None:
        known = self._successes.get(key)
        if known is not None and known.answers(before):
            return known
        primed = self._primed.get(key)
        if not primed:
            return None
        # The span with the latest start before `before` is the only one that can hold it.
        index = bisect_left(primed, before, key=_span_start) - 1
        if index >= 0 and primed[index].answers(before):
            return primed[index]
        return None

    def _stored(self, key: tuple[str, str]) -> HttpAttemptQuerySet:
        """The endpoint's stored attempts, by its id (found in the same query): joined on the
        endpoint's columns instead, PostgreSQL cannot know that one endpoint matches, and
        sorted every success of it under a LIMIT 1 (9 ms against 0.03 on a long Map
        history's endpoint)."""
        method, template = key
        endpoint = Endpoint.objects.filter(
            account=self.account, method=method[:10], url_template=template[:2048]
        )
        return HttpAttempt.objects.filter(endpoint_id=Subquery(endpoint.values("pk")[:1]))

    def _stored_success(self, method: str, template: str, before: datetime) -> _Known:
        key = (method, template)
        known = self._cached(key, before)
        if known is not None:
            return known
        successes = self._stored(key)
        last = successes.successes_before(before).values("occurred_at", *_REQUEST).first()
        # The next one bounds how long this answer holds (one query per endpoint while the
        # failures asked about lie between the same two successes).
        upto = (
            successes.successes_after(before, inclusive=True)
            .values_list("occurred_at", flat=True)
            .first()
        )
        known = _Known(
            at=last["occurred_at"] if last else None,
            shape=RequestShape.from_request(*(last[f] for f in _REQUEST)) if last else None,
            upto=upto,
        )
        self._successes[key] = known
        return known

    def _spans(self, key: tuple[str, str], first: datetime, last: datetime) -> list[_Known]:
        """The spans between stored successes that cover every time in [first, last] (fewer
        when more than PRIME_LIMIT successes lie between: the rest is looked up lazily)."""
        successes = self._stored(key).filter(outcome=Outcome.SUCCEEDED)
        before = successes.successes_before(first).values("occurred_at", *_REQUEST).first()
        # Oldest first and, at one time, the highest id last: it is the one successes_before
        # (newest first, then highest id) names as the last success.
        between = list(
            successes.filter(occurred_at__gte=first, occurred_at__lt=last)
            .order_by("occurred_at", "id")
            .values("occurred_at", *_REQUEST)[: PRIME_LIMIT + 1]
        )
        complete = len(between) <= PRIME_LIMIT
        after: datetime | None = None
        if complete:
            after = (
                successes.successes_after(last, inclusive=True)
                .values_list("occurred_at", flat=True)
                .first()
            )
        else:
            between = between[:PRIME_LIMIT]
        # Each success, as the last one of its time, holds until the next time a success
        # happened; the last one until `after` (None: no success after it at all).
        rows = [before, *between] if before else between
        if not before:
            spans = [
                _Known(at=None, shape=None, upto=between[0]["occurred_at"] if between else after)
            ]
        else:
            spans = []
        for index, row in enumerate(rows):
            following = rows[index + 1]["occurred_at"] if index + 1 < len(rows) else None
            if following is not None and following == row["occurred_at"]:
                continue  # a later success at the same time is the one named
            if following is None and not complete:
                break  # where the next success lies is not known
            spans.append(
                _Known(
                    at=row["occurred_at"],
                    shape=RequestShape.from_request(*(row[f] for f in _REQUEST)),
                    upto=following if following is not None else after,
                )
            )
        return spans

    def _inferred(self, connection_arn: str) -> tuple[ConnectionStateChange, ...]:
        """De-authorizations inferred from the stored 401/407 answers of the connection, by
        the same rule as for attempts in memory (DeauthorizationTracker)."""
        tracker = DeauthorizationTracker()
        answers = HttpAttempt.objects.filter(
            account=self.account, connection_arn=connection_arn, status_code__in=TRIGGER_STATUSES
        ).values_list("state_name", "method", "url", "status_code", "scheduled_at", "closed_at")
        for state, method, url, status, scheduled, closed in answers:
            tracker.observe(
                ParsedAttempt(
                    state_name=state,
                    attempt_number=1,
                    method=method,
                    url=url,
                    connection_arn=connection_arn,
                    status_code=status,
                    scheduled_at=scheduled,
                    closed_at=closed,
                )
            )
        return tracker.changes_for(connection_arn)


_EARLIEST = datetime.min.replace(tzinfo=UTC)


def _span_start(known: _Known) -> datetime:
    return known.at or _EARLIEST


def recorded_changes(connection_arn: str) -> tuple[ConnectionStateChange, ...]:
    """The connection's state changes as DescribeConnection recorded them, oldest first."""
    changes = StoredChange.objects.filter(connection__arn=connection_arn).order_by("changed_at")
    return tuple(
        ConnectionStateChange(at=c.changed_at, state=c.state, reason=c.reason) for c in changes
    )
