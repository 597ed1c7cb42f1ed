"""Parsed attempts → stored rows: redacted, linked to endpoint and connection, classified, grouped.

Idempotent by construction: an attempt's key is (execution, key event id); only attempts not yet
stored are inserted, and only those count towards their failure group. Re-running a sync over
the same events therefore changes nothing.

`AttemptWriter` only sequences the parts, each in its own module: `rows` (the columns),
`columns` (PostgreSQL-safe values), `resolution` (endpoint, connection, redactor),
`classification` + `stored_context` (the class in context, and reclassifying what a batch gives
new context), `grouping` (failure groups), `counts` (seen times and group counts, flushed).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from django.db import transaction

from connections.models import AwsAccount, Connection
from executions.choices import Outcome
from executions.classification import Classifier
from executions.columns import pg_safe_texts
from executions.copy_rows import insert_ignoring_conflicts
from executions.counts import PendingCounts
from executions.grouping import FailureGroups
from executions.history import Assignment, HttpStateInfo, ParsedAttempt
from executions.history.variables import MAX_ASSIGNMENTS
from executions.models import Execution, HttpAttempt, VariableAssignment
from executions.redaction import Redactor, default_redactor
from executions.resolution import Resolver
from executions.rows import assignment_row, attempt_key, attempt_row, occurred_at

# Endpoints and failure groups are brought up to date every this many executions written
# (and at the end of each sync step), so the dashboard sees a long sync progress.
FLUSH_EVERY_WRITES = 50


@dataclass
class AttemptWriter:
    """Writes attempts of one account; its parts cache endpoints, connections, groups and
    context for the length of a sync."""

    account: AwsAccount
    redactor: Redactor = field(default_factory=default_redactor)
    added: int = 0
    resolver: Resolver = field(init=False)
    groups: FailureGroups = field(init=False)
    classifier: Classifier = field(init=False)
    counts: PendingCounts = field(default_factory=PendingCounts, init=False)
    _definition: Mapping[str, HttpStateInfo] = field(default_factory=dict, init=False)
    _writes: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self.resolver = Resolver(self.account, self.redactor)
        self.groups = FailureGroups(self.account)
        self.classifier = Classifier(self.resolver, self.groups)

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
        closed = [(execution, _closed(attempts)) for execution, attempts in batch]
        for execution, attempts in closed:
            self.classifier.use_definitions(execution.state_machine_id, self._definition)
            # The batch is context for itself: a success later in the list but earlier in
            # time is the last success of the failures around it.
            self.classifier.context.pending.observe_all(attempts)
        # The stored successes the batch's failures need, per endpoint in a few queries: a long
        # Map history's failures to one endpoint lie between many successes, and one lookup at
        # a time cost two round trips per gap (thousands per 25,000-event history).
        self.classifier.context.prime(
            (parsed, occurred_at(parsed, execution))
            for execution, attempts in closed
            for parsed in attempts
        )
        rows: list[HttpAttempt] = []
        newly_failed: list[Execution] = []
        for execution, attempts in closed:
            fresh = self._new_rows(execution, attempts, stored_none=fresh_executions)
            rows.extend(fresh)
            if not execution.has_failed_attempt and any(r.is_failure for r in fresh):
                newly_failed.append(execution)
        # Inside the caller's transaction when there is one: a savepoint would cost two
        # more round trips per write and buy nothing (the caller rolls back as a whole).
        with transaction.atomic(savepoint=False):
            if rows:
                insert_ignoring_conflicts(HttpAttempt, rows)  # COPY for a batch that pays
                self.counts.touch_groups(r.failure_group_id for r in rows)
                if newly_failed:
                    Execution.objects.filter(pk__in=[e.pk for e in newly_failed]).update(
                        has_failed_attempt=True
                    )
            self.counts.touch_groups(self.classifier.reclassify_affected(rows))
        for execution in newly_failed:
            execution.has_failed_attempt = True
        self.added += len(rows)
        before, self._writes = self._writes, self._writes + len(batch)
        if self._writes // FLUSH_EVERY_WRITES > before // FLUSH_EVERY_WRITES:
            self.flush()
        return len(rows)

    def _new_rows(
        self, execution: Execution, attempts: list[ParsedAttempt], *, stored_none: bool
    ) -> list[HttpAttempt]:
        """Rows for the closed attempts of one execution that are not stored yet."""
        if not attempts:
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
        for parsed in attempts:
            key = attempt_key(parsed)
            if key in fresh:
                # Two attempts identified by one event (ids missing or mangled): one is kept.
                fresh[key].problems.append(f"another attempt identified by event {key} was dropped")
            elif key not in known:
                fresh[key] = self._row(execution, parsed, key)
        return list(fresh.values())

    def _row(self, execution: Execution, parsed: ParsedAttempt, key: int) -> HttpAttempt:
        template = self.resolver.template_of(parsed.url)
        occurred = occurred_at(parsed, execution)
        endpoint = self.resolver.endpoint(parsed.method, template, occurred) if template else None
        if endpoint is not None:
            self.counts.saw_endpoint(endpoint.pk, occurred)
        classification = self.classifier.classify(parsed, occurred, self._definition)
        connection = self.resolver.connection(parsed.connection_arn)
        row = attempt_row(
            self.account,
            execution,
            parsed,
            key=key,
            endpoint=endpoint,
            connection=connection,
            redactor=self.resolver.redactor_for(connection),
            classification=classification,
            state_classification=self.classifier.classify_state(parsed, self._definition),
        )
        if row.is_failure and classification.category:
            row.failure_group = self.groups.group_for(row, classification)
        return row

    def write_assignments(self, execution: Execution, assignments: Sequence[Assignment]) -> int:
        """Store what the execution's states assigned, at most MAX_ASSIGNMENTS per execution.

        Redacted with the secret names of every connection of the account: a variable belongs
        to no single connection, and may hold any of their tokens.
        """
        if not assignments:
            return 0
        room = MAX_ASSIGNMENTS - VariableAssignment.objects.filter(execution=execution).count()
        redactor = self.account_redactor()
        rows = [
            row
            for row in (assignment_row(execution, a, redactor) for a in assignments[: max(room, 0)])
            if row is not None
        ]
        # The unique (execution, event id) makes a page read twice store nothing twice.
        VariableAssignment.objects.bulk_create(rows, ignore_conflicts=True)
        return len(rows)

    def flush(self) -> None:
        """Bring touched endpoints and failure groups up to date, a few statements for all."""
        self.counts.flush()

    def forget_uncommitted(self) -> None:
        """After a rolled-back write: a cached endpoint, group or last success may have been
        created in that transaction and be gone, so they are looked up again."""
        self.resolver.forget()
        self.classifier.forget()

    def redactor_for(self, connection: Connection | None) -> Redactor:
        return self.resolver.redactor_for(connection)

    def account_redactor(self) -> Redactor:
        return self.resolver.account_redactor()


def _closed(attempts: Iterable[ParsedAttempt]) -> list[ParsedAttempt]:
    """The closed attempts (in-flight ones are stored once they close), PostgreSQL-safe."""
    return [pg_safe_texts(a) for a in attempts if a.outcome != Outcome.IN_PROGRESS]
