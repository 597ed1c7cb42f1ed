"""Parsed attempts → stored rows: redacted, linked to endpoint and connection, classified, grouped.

Idempotent by construction: an attempt's key is (execution, key event id); only attempts not yet
stored are inserted, and only those count towards their failure group. Re-running a sync over
the same events therefore changes nothing.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Count, F, IntegerField, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce, Greatest, Least
from django.utils import timezone

from connections.models import (
    AwsAccount,
    Connection,
    ConnectionStateChange,
    Endpoint,
    secret_parameter_names,
)
from executions.choices import GroupStatus, GroupTransitionKind, Outcome
from executions.classify import (
    Classification,
    ClassificationContext,
    DeauthorizationTracker,
    RequestShape,
    classify,
    fingerprint,
    needs_last_success,
)
from executions.classify import ConnectionStateChange as StateChangeFact
from executions.classify.endpoint_templates import endpoint_template
from executions.history import HttpStateInfo, ParsedAttempt
from executions.history.events import BIGINT_MAX, INT_MAX, in_range
from executions.models import Execution, FailureGroup, HttpAttempt
from executions.redaction import Redactor, default_redactor
from executions.transitions import record_group_transition

# Endpoints and failure groups are brought up to date every this many executions written
# (and at the end of each sync step), so the dashboard sees a long sync progress.
FLUSH_EVERY_WRITES = 50


def _max_response_chars() -> int:
    return int(settings.STEPSCOPE["MAX_RESPONSE_CHARS"])


@dataclass
class AttemptWriter:
    """Writes attempts of one account; caches endpoints, connections and context per sync."""

    account: AwsAccount
    redactor: Redactor = field(default_factory=default_redactor)
    _endpoints: dict[tuple[str, str], Endpoint] = field(default_factory=dict)
    _connections: dict[str, Connection | None] = field(default_factory=dict)
    _states: dict[str, tuple[StateChangeFact, ...]] = field(default_factory=dict)
    _success_shapes: dict[tuple[str, str], RequestShape | None] = field(default_factory=dict)
    # 401/407 answers seen in this sync: they explain later InvalidConnectionState failures
    # even before DescribeConnection shows the connection DEAUTHORIZED.
    _deauthorizations: DeauthorizationTracker = field(default_factory=DeauthorizationTracker)
    _definition: Mapping[str, HttpStateInfo] = field(default_factory=dict)
    _groups: dict[str, FailureGroup] = field(default_factory=dict)
    _touched_groups: set[int] = field(default_factory=set)
    _endpoint_seen: dict[int, tuple[datetime, datetime]] = field(default_factory=dict)
    _redactors: dict[str, Redactor] = field(default_factory=dict)
    _account_redactor: Redactor | None = None
    _writes: int = 0
    added: int = 0

    def write(
        self,
        execution: Execution,
        attempts: Iterable[ParsedAttempt],
        states: Mapping[str, HttpStateInfo] | None = None,
        *,
        fresh_execution: bool = False,
    ) -> int:
        """Store the attempts not yet stored for this execution; returns how many were new.

        `states` is the definition's static view of each HTTP state (declared headers…);
        `fresh_execution` says the execution row was just created, so nothing is stored yet.
        """
        return self.write_many([(execution, attempts)], states, fresh_executions=fresh_execution)

    def write_many(
        self,
        batch: Sequence[tuple[Execution, Iterable[ParsedAttempt]]],
        states: Mapping[str, HttpStateInfo] | None = None,
        *,
        fresh_executions: bool = False,
    ) -> int:
        """`write` for several executions of one state machine, in one INSERT."""
        self._definition = states or {}
        rows: list[HttpAttempt] = []
        newly_failed: list[Execution] = []
        for execution, attempts in batch:
            fresh = self._new_rows(execution, attempts, stored_none=fresh_executions)
            rows.extend(fresh)
            if not execution.has_failed_attempt and any(r.is_failure for r in fresh):
                newly_failed.append(execution)
        if rows:
            # Inside the caller's transaction when there is one: a savepoint would cost two
            # more round trips per write and buy nothing (the caller rolls back as a whole).
            with transaction.atomic(savepoint=False):
                HttpAttempt.objects.bulk_create(rows, ignore_conflicts=True)
                self._touched_groups.update(r.failure_group_id for r in rows if r.failure_group_id)
                if newly_failed:
                    Execution.objects.filter(pk__in=[e.pk for e in newly_failed]).update(
                        has_failed_attempt=True
                    )
            for execution in newly_failed:
                execution.has_failed_attempt = True
            self.added += len(rows)
        before, self._writes = self._writes, self._writes + len(batch)
        if self._writes // FLUSH_EVERY_WRITES > before // FLUSH_EVERY_WRITES:
            self.flush()
        return len(rows)

    def _new_rows(
        self, execution: Execution, attempts: Iterable[ParsedAttempt], *, stored_none: bool
    ) -> list[HttpAttempt]:
        """Rows for the closed attempts of one execution that are not stored yet."""
        batch = [_pg_safe_texts(a) for a in attempts if a.outcome != Outcome.IN_PROGRESS]
        if not batch:
            return []
        known: set[int] = (
            set()
            if stored_none
            else set(
                HttpAttempt.objects.filter(execution=execution).values_list(
                    "key_event_id", flat=True
                )
            )
        )
        fresh: dict[int, HttpAttempt] = {}
        for parsed in batch:
            key = attempt_key(parsed)
            if key in fresh:
                # Two attempts identified by one event (ids missing or mangled): one is kept.
                fresh[key].problems.append(f"another attempt identified by event {key} was dropped")
            elif key not in known:
                fresh[key] = self._row(execution, parsed, key)
        return list(fresh.values())

    def flush(self) -> None:
        """Bring touched endpoints and failure groups up to date, a few statements for all.

        Group counts and first/last seen are recomputed from the stored attempts rather than
        incremented, so they are exact whatever happened before (a killed worker, a retry).
        """
        for endpoint_id, (first, last) in self._endpoint_seen.items():
            Endpoint.objects.filter(pk=endpoint_id).update(
                first_seen_at=Least(F("first_seen_at"), Value(first)),
                last_seen_at=Greatest(F("last_seen_at"), Value(last)),
            )
        self._endpoint_seen.clear()
        if self._touched_groups:
            refresh_groups(self._touched_groups)
            self._touched_groups.clear()

    def forget_uncommitted(self) -> None:
        """After a rolled-back write: a cached endpoint, group or last success may have been
        created in that transaction and be gone, so they are looked up again."""
        self._endpoints.clear()
        self._success_shapes.clear()
        self._groups.clear()

    def use_definition(self, states: Mapping[str, HttpStateInfo]) -> None:
        self._definition = states

    def redactor_for(self, connection: Connection | None) -> Redactor:
        """The settings' redactor plus the secret parameter names of the attempt's connection
        (unknown connection: the generic rules; scrub.py re-redacts once it is described)."""
        if connection is None:
            return self.redactor
        if connection.arn not in self._redactors:
            self._redactors[connection.arn] = self.redactor.with_secret_names(
                connection.secret_parameter_names
            )
        return self._redactors[connection.arn]

    def account_redactor(self) -> Redactor:
        """For what belongs to no single connection (definitions, execution causes): the
        secret names of every connection of the account."""
        if self._account_redactor is None:
            self._account_redactor = account_redactor(self.account, self.redactor)
        return self._account_redactor

    def _row(self, execution: Execution, parsed: ParsedAttempt, key: int) -> HttpAttempt:
        # Templates go through the URL rules too (after ids became {id}): a token-like path
        # segment that is no id shape must not reach the endpoint table.
        template = self.redactor.url(endpoint_template(parsed.url)) if parsed.url else ""
        occurred = parsed.scheduled_at or parsed.closed_at or execution.start_date
        endpoint = self._endpoint(parsed.method, template, occurred) if template else None
        classification = self.classify(parsed, template)
        connection = self._connection(parsed.connection_arn)
        redactor = self.redactor_for(connection)
        body, truncated = self._response_text(parsed.response_body, redactor)
        row = HttpAttempt(
            account=self.account,
            execution=execution,
            state_name=pg_safe(parsed.state_name[:80]),
            branch_path=pg_safe(parsed.branch_path[:200]),
            attempt_number=parsed.attempt_number,
            key_event_id=key,
            entered_event_id=in_range(parsed.entered_event_id, BIGINT_MAX, -BIGINT_MAX - 1),
            scheduled_event_id=in_range(parsed.scheduled_event_id, BIGINT_MAX, -BIGINT_MAX - 1),
            closed_event_id=in_range(parsed.closed_event_id, BIGINT_MAX, -BIGINT_MAX - 1),
            redrive_count=in_range(parsed.redrive_count, INT_MAX) or 0,
            scheduled_at=parsed.scheduled_at,
            closed_at=parsed.closed_at,
            occurred_at=occurred,
            duration_ms=in_range(parsed.duration_ms, INT_MAX),
            method=pg_safe(parsed.method[:10]),
            url=pg_safe(redactor.url(parsed.url)),
            endpoint=endpoint,
            connection_arn=pg_safe(parsed.connection_arn[:1600]),
            connection=connection,
            request_headers=_jsonable(redactor.value(parsed.request_headers)) or {},
            request_query=_jsonable(redactor.value(parsed.request_query)),
            request_body=_jsonable(redactor.value(parsed.request_body)),
            status_code=parsed.status_code if _is_status(parsed.status_code) else None,
            response_headers=_jsonable(redactor.value(parsed.response_headers)) or {},
            response_body=pg_safe(body),
            response_truncated=truncated or parsed.response_truncated,
            closed_event_type=pg_safe(parsed.closed_event_type[:40]),
            timeout_seconds=in_range(parsed.timeout_seconds, INT_MAX, 1),
            error=pg_safe(redactor.text(parsed.error)[:256]),
            cause=pg_safe(redactor.text(parsed.cause)),
            outcome=parsed.outcome,
            caught=parsed.caught,
            final_attempt=parsed.final_attempt,
            category=classification.category or "",
            subcategory=classification.subcategory[:64],
            evidence=_jsonable(redactor.value(classification.evidence)) or {},
            hint=pg_safe(redactor.text(classification.hint)),
            classifier_version=classification.rules_version,
            problems=pg_safe(list(parsed.problems)),
        )
        if row.is_failure and classification.category:
            row.failure_group = self.group_for(row, classification)
        elif parsed.outcome == Outcome.SUCCEEDED and template:
            self._success_shapes[(parsed.method, template)] = RequestShape.of(parsed)
        return row

    def classify(
        self, parsed: ParsedAttempt, template: str, before: datetime | None = None
    ) -> Classification:
        """Classify with this account's context: connection history and the last success."""
        self._deauthorizations.observe(parsed)
        states = self._connection_states(parsed.connection_arn)
        inferred = self._deauthorizations.changes_for(parsed.connection_arn)
        context = ClassificationContext(
            connection_states=tuple(sorted(states + inferred, key=lambda c: c.at)),
            last_success_shape=(
                self._last_success(parsed.method, template, before)
                if needs_last_success(parsed)
                else None
            ),
            definition_state=self._definition.get(parsed.state_name),
            connection_name=_connection_name(parsed.connection_arn),
        )
        return classify(parsed, context)

    def _response_text(self, body: Any, redactor: Redactor) -> tuple[str, bool]:
        if body is None:
            return "", False
        text = (
            redactor.embedded(body)
            if isinstance(body, str)
            else json.dumps(redactor.value(body), ensure_ascii=False)
        )
        limit = _max_response_chars()
        return (text[:limit], True) if len(text) > limit else (text, False)

    def _endpoint(self, method: str, template: str, seen_at: datetime) -> Endpoint:
        key = (method, template)
        if key not in self._endpoints:
            endpoint, _ = Endpoint.objects.get_or_create(
                account=self.account,
                method=method[:10],
                url_template=template[:2048],
                defaults={"first_seen_at": seen_at, "last_seen_at": seen_at},
            )
            self._endpoints[key] = endpoint
        endpoint = self._endpoints[key]
        # Seen times move in memory and reach the database at the next flush: one UPDATE per
        # endpoint and batch instead of one per attempt.
        first, last = self._endpoint_seen.get(endpoint.pk, (seen_at, seen_at))
        self._endpoint_seen[endpoint.pk] = (min(first, seen_at), max(last, seen_at))
        return endpoint

    def _connection(self, arn: str) -> Connection | None:
        if arn not in self._connections:
            self._connections[arn] = Connection.objects.filter(arn=arn).first() if arn else None
        return self._connections[arn]

    def _connection_states(self, arn: str) -> tuple[StateChangeFact, ...]:
        if arn not in self._states:
            changes = ConnectionStateChange.objects.filter(connection__arn=arn).order_by(
                "changed_at"
            )
            self._states[arn] = tuple(
                StateChangeFact(at=c.changed_at, state=c.state, reason=c.reason) for c in changes
            )
        return self._states[arn]

    def _last_success(
        self, method: str, template: str, before: datetime | None = None
    ) -> RequestShape | None:
        key = (method, template)
        if before is not None or key not in self._success_shapes:
            successes = HttpAttempt.objects.filter(
                account=self.account,
                method=method,
                endpoint__url_template=template,
                outcome=Outcome.SUCCEEDED,
            )
            if before is not None:
                # Reclassifying history: only a success that came before the failure counts.
                successes = successes.filter(occurred_at__lt=before)
            last = (
                successes.order_by("-occurred_at")
                .values("request_headers", "request_query", "request_body")
                .first()
            )
            shape = RequestShape.of(_shape_source(last)) if last else None
            if before is not None:
                return shape
            self._success_shapes[key] = shape
        return self._success_shapes[key]

    def group_for(self, row: HttpAttempt, c: Classification) -> FailureGroup:
        template = row.endpoint.url_template if row.endpoint else ""
        fp = fingerprint(row.connection_arn, row.method, template, c, row.status_code, row.error)
        if fp in self._groups:
            return self._groups[fp]
        # One transaction for the group and its "opened" record (the alerts outbox).
        with transaction.atomic():
            group, created = FailureGroup.objects.get_or_create(
                account=self.account,
                fingerprint=fp,
                defaults={
                    "connection": row.connection,
                    "connection_arn": row.connection_arn,
                    "endpoint": row.endpoint,
                    "method": row.method,
                    "category": c.category or "unknown",
                    "subcategory": c.subcategory[:64],
                    "status_code": row.status_code,
                    "error": row.error,
                    "title": group_title(row, c, template)[:500],
                    "hint": row.hint,
                    "first_seen_at": row.occurred_at,
                    "last_seen_at": row.occurred_at,
                },
            )
            if created:
                record_group_transition([group], GroupTransitionKind.OPENED)
        self._groups[fp] = group
        return group


def account_redactor(account: AwsAccount, base: Redactor) -> Redactor:
    """`base` plus the secret parameter names of every connection of the account."""
    names = Connection.objects.filter(account=account).values_list(
        "invocation_parameter_names", flat=True
    )
    return base.with_secret_names(n for value in names for n in secret_parameter_names(value))


def refresh_groups(group_ids: Iterable[int]) -> None:
    """Exact count, first/last seen and latest hint of groups, from their attempts; a resolved
    group that failed again after it was resolved reopens as a regression."""
    ids = sorted(set(group_ids))
    members = HttpAttempt.objects.filter(failure_group=OuterRef("pk")).order_by()
    newest = members.order_by("-occurred_at", "-id")
    # A group left with no attempt (after reclassifying) keeps its times and counts 0.
    FailureGroup.objects.filter(pk__in=ids).update(
        count=Coalesce(
            Subquery(
                members.values("failure_group").annotate(n=Count("id")).values("n"),
                output_field=IntegerField(),
            ),
            0,
        ),
        first_seen_at=Coalesce(
            Subquery(members.order_by("occurred_at").values("occurred_at")[:1]),
            F("first_seen_at"),
        ),
        last_seen_at=Coalesce(Subquery(newest.values("occurred_at")[:1]), F("last_seen_at")),
        hint=Coalesce(Subquery(newest.values("hint")[:1]), F("hint")),
    )
    with transaction.atomic():
        # Locked, then re-checked by PostgreSQL: of two concurrent refreshes only one reopens a
        # group, so it is recorded (for the alerts outbox) once.
        regressed = list(
            FailureGroup.objects.select_for_update()
            .filter(
                pk__in=ids, status=GroupStatus.RESOLVED, status_changed_at__lt=F("last_seen_at")
            )
            .only("pk", "account_id")
        )
        if regressed:
            FailureGroup.objects.filter(pk__in=[g.pk for g in regressed]).update(
                status=GroupStatus.OPEN, regressed_at=timezone.now()
            )
            record_group_transition(regressed, GroupTransitionKind.REGRESSED)


def _pg_safe_texts(parsed: ParsedAttempt) -> ParsedAttempt:
    """The texts that reach queries as well as columns (endpoint, connection and last-success
    lookups) made PostgreSQL-safe in place: a NUL in a URL must not fail the lookup."""
    for name in ("state_name", "branch_path", "method", "url", "connection_arn", "error", "cause"):
        setattr(parsed, name, pg_safe(getattr(parsed, name)))
    return parsed


def attempt_key(parsed: ParsedAttempt) -> int:
    for candidate in (parsed.scheduled_event_id, parsed.closed_event_id, parsed.entered_event_id):
        key = in_range(candidate, BIGINT_MAX)
        if key is not None:
            return key
    return 0


def group_title(row: HttpAttempt, c: Classification, template: str) -> str:
    what = f"{row.status_code}" if row.status_code else (row.error or c.category or "failure")
    where = f"{row.method} {template}".strip() or row.state_name
    return f"{c.subcategory or c.category}: {what} on {where}"


def _connection_name(arn: str) -> str:
    parts = arn.split("/")
    return parts[-2] if len(parts) >= 3 else arn


def _is_status(code: Any) -> bool:
    return isinstance(code, int) and 100 <= code <= 999


def _shape_source(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "request_headers": row["request_headers"],
        "request_query": row["request_query"],
        "request_body": row["request_body"],
    }


def _jsonable(value: Any) -> Any:
    """JSON columns take only JSON: anything exotic from a parser becomes its text."""
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        value = json.loads(json.dumps(value, default=str))
    return pg_safe(value)


# PostgreSQL refuses NUL in text and jsonb, and lone surrogates anywhere (Python strings and
# JSON escapes allow them, UTF-8 does not); a third-party body may well contain either.
_PG_UNSAFE = re.compile("[\x00\ud800-\udfff]")


def pg_safe(value: Any) -> Any:
    """`value` with what PostgreSQL would refuse replaced: NUL and lone surrogates by U+FFFD,
    NaN and infinities (no JSON number) by their text."""
    if isinstance(value, str):
        return _PG_UNSAFE.sub("\ufffd", value) if _PG_UNSAFE.search(value) else value
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {pg_safe(k): pg_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [pg_safe(v) for v in value]
    return value
