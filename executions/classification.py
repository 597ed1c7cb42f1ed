"""Classification of stored attempts: in context, again when the rules or the context change.

Every stored classification comes from `classify_in_context` with a `StoredContext`: at
ingestion (`AttemptWriter`), for `manage.py reclassify` (`reclassify_account`), and for the
attempts a newly written batch gives new context (`reclassify_affected`: a success earlier
than stored 4xx failures to its endpoint, a 401/407 before stored InvalidConnectionState
failures of its connection). So a classification depends on what is stored, not on the
order it arrived in. Two steps of one run write at once, each blind to what the other has not
committed yet, so the run ends with one more pass over what its writes gave new context
(`reclassify_after_run`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from django.db import transaction
from django.db.models import Exists, OuterRef, Q, QuerySet

from connections.deauthorization import TRIGGER_STATUSES
from connections.models import AwsAccount, ConnectionStateChange
from executions.choices import Outcome
from executions.classify import (
    RULES_VERSION,
    Classification,
    ClassificationContext,
    classify_in_context,
    classify_state_error,
)
from executions.classify.sources import INVALID_CONNECTION_STATE, NEEDS_CONNECTION_STATES
from executions.grouping import (
    FailureGroups,
    drop_empty_open,
    refresh_account_groups,
    refresh_groups,
)
from executions.history import (
    ABORT_EVENTS,
    HttpStateInfo,
    ParsedAttempt,
    http_states_from_definition,
)
from executions.models import FAILING, Execution, FailureGroup, HttpAttempt, StateMachine
from executions.redaction import default_redactor
from executions.resolution import Resolver
from executions.rows import CLASSIFICATION_FIELDS, as_parsed, classified
from executions.stored_context import StoredContext

BATCH = 2000
_NEEDS_LAST_SUCCESS = Q(status_code__gte=400, status_code__lt=500)
# What `affected_by` reads of a written row, and no more: a run may write many successes.
_CONTEXT_FIELDS = [
    "outcome",
    "endpoint",
    "occurred_at",
    "status_code",
    "connection_arn",
    "closed_at",
    "scheduled_at",
]


@dataclass
class Classifier:
    """Classifies one account's attempts in their stored context and puts failures in groups."""

    resolver: Resolver
    groups: FailureGroups
    context: StoredContext = field(init=False)
    rewritten: int = 0  # rows `reclassify` saved
    _definitions: dict[int, Mapping[str, HttpStateInfo]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.context = StoredContext(self.resolver.account, self.resolver.template_of)

    def classify(
        self, parsed: ParsedAttempt, at: datetime, states: Mapping[str, HttpStateInfo]
    ) -> Classification:
        return classify_in_context(parsed, self.context, states.get(parsed.state_name), at)

    def classify_state(
        self, parsed: ParsedAttempt, states: Mapping[str, HttpStateInfo]
    ) -> Classification | None:
        """The state's own error after a successful call (None when there is none)."""
        context = ClassificationContext(definition_state=states.get(parsed.state_name))
        return classify_state_error(parsed, context)

    def reclassify(self, rows: Sequence[HttpAttempt], *, only_changed: bool = False) -> set[int]:
        """Classify stored rows again and save them (`only_changed`: only those whose
        classification moved); returns the groups they left or joined."""
        touched: set[int] = set()
        changed: list[HttpAttempt] = []
        moved: set[int] = set()  # executions one of whose stored failures is an abort
        read = [(row, as_parsed(row)) for row in rows]
        # The rows are in id order, not time order: learn their endpoints' successes at once.
        self.context.prime((parsed, row.occurred_at) for row, parsed in read)
        for row, parsed in read:
            group_before = row.failure_group_id or 0
            before = _classification_of(row)
            outcome = stored_outcome(row)
            if outcome != row.outcome:
                moved.add(row.execution_id)
                parsed.outcome = row.outcome = outcome
            states = self._states_of(row.execution.state_machine_id)
            result = self.classify(parsed, row.occurred_at, states)
            state = self.classify_state(parsed, states)
            classified(row, result, self.resolver.redactor_for(row.connection), state)
            row.failure_group = (
                self.groups.group_for(row, result) if row.is_failure and result.category else None
            )
            if not only_changed or _classification_of(row) != before:
                changed.append(row)
                touched.update((group_before, row.failure_group_id or 0))
        if changed:
            HttpAttempt.objects.bulk_update(
                changed, [*CLASSIFICATION_FIELDS, "outcome", "failure_group"]
            )
        # In the same transaction as the rows, whichever pass this is (ingestion's, the run's
        # final one, after state changes, the command): an execution whose only failures were
        # aborts must leave the failing lists with them, not at some later command.
        clear_failed_flags(moved)
        self.rewritten += len(changed)
        touched.discard(0)
        return touched

    def reclassify_affected(self, written: Sequence[HttpAttempt]) -> set[int]:
        """Reclassify the stored attempts whose context the just-written rows changed (the
        rows themselves were classified with it); returns the groups touched."""
        self.context.settle(written)
        condition = affected_by(written)
        if condition is None:
            return set()
        fresh = {(r.execution_id, r.key_event_id) for r in written}
        ids = [
            pk
            for pk, execution_id, key in HttpAttempt.objects.filter(
                condition, account=self.resolver.account
            ).values_list("pk", "execution_id", "key_event_id")
            if (execution_id, key) not in fresh
        ]
        if not ids:
            return set()
        rows = list(_with_relations(HttpAttempt.objects.filter(pk__in=ids)).order_by("id"))
        # Most of them keep their class (a success only moves the failures whose last success
        # it becomes to a different hint): the saved columns are the compared ones, so the
        # rows that did not move are not written again, nor are their groups recounted.
        return self.reclassify(rows, only_changed=True)

    def use_definitions(self, machine_id: int, states: Mapping[str, HttpStateInfo]) -> None:
        self._definitions[machine_id] = states

    def _states_of(self, machine_id: int) -> Mapping[str, HttpStateInfo]:
        if machine_id not in self._definitions:
            machine = StateMachine.objects.filter(pk=machine_id).only("definition").first()
            self._definitions[machine_id] = (
                http_states_from_definition(machine.definition) if machine else {}
            )
        return self._definitions[machine_id]

    def forget(self) -> None:
        self.context.forget()
        self.groups.forget()


def affected_by(written: Iterable[HttpAttempt]) -> Q | None:
    """Which stored attempts the written rows are new context for, as one condition.

    A success at time w to endpoint E is the last success of the 4xx failures to E after w,
    up to the next success to E; a 401/407 on connection C de-authorizes it for the
    InvalidConnectionState failures of C from then on.
    """
    successes: dict[int, tuple[datetime, datetime]] = {}
    answers: dict[str, datetime] = {}
    for row in written:
        if row.outcome == Outcome.SUCCEEDED and row.endpoint_id is not None:
            first, last = successes.get(row.endpoint_id, (row.occurred_at, row.occurred_at))
            successes[row.endpoint_id] = (min(first, row.occurred_at), max(last, row.occurred_at))
        elif row.status_code in TRIGGER_STATUSES and row.connection_arn:
            at = row.closed_at or row.scheduled_at or row.occurred_at
            answers[row.connection_arn] = min(answers.get(row.connection_arn, at), at)
    condition = Q()
    for endpoint_id, (first, last) in successes.items():
        window = Q(endpoint_id=endpoint_id, occurred_at__gt=first) & _NEEDS_LAST_SUCCESS
        following = (
            HttpAttempt.objects.filter(endpoint_id=endpoint_id)
            .successes_after(last)
            .values_list("occurred_at", flat=True)
            .first()
        )
        condition |= window & Q(occurred_at__lte=following) if following else window
    for arn, at in answers.items():
        condition |= Q(connection_arn=arn, error=INVALID_CONNECTION_STATE, occurred_at__gte=at)
    if not condition:
        return None
    return condition & FAILING


def reclassify_account(
    account: AwsAccount, *, include_current: bool, progress: Callable[[str], None]
) -> int:
    """`manage.py reclassify` for one account: stored attempts (only those classified by
    older rules unless `include_current`) through the current rules, in their stored context."""
    resolver = Resolver(account, default_redactor())
    # Groups the new rules create or reopen are the rules' doing, not new failures: kept in
    # the groups' history, announced by no alert.
    classifier = Classifier(resolver, FailureGroups(account, announce=False))
    rows = _with_relations(HttpAttempt.objects.filter(account=account))
    if not include_current:
        rows = rows.exclude(classifier_version=RULES_VERSION)
    done, last_id = 0, 0
    while True:
        # Keyset batches: constant memory and no OFFSET scan at a million rows.
        batch = list(rows.filter(id__gt=last_id).order_by("id")[:BATCH])
        if not batch:
            break
        with transaction.atomic():
            classifier.reclassify(batch)
        last_id = batch[-1].id
        done += len(batch)
        progress(f"… {account.name}: {done}")
    refresh_account_groups(account, announce=False)
    # Emptied groups go, unless a sync is running: its steps may hold them in their caches,
    # and its end drops them (finish_sync).
    if not AwsAccount.objects.filter(pk=account.pk, sync_run__isnull=False).exists():
        drop_empty_open(FailureGroup.objects.filter(account=account, count=0))
    return done


def clear_failed_flags(execution_ids: Iterable[int]) -> None:
    """Executions left with no failing attempt (their only failures were aborts) leave the
    failing-executions list."""
    ids = list(execution_ids)
    if ids:
        failing = HttpAttempt.objects.filter(FAILING, execution=OuterRef("pk"))
        Execution.objects.filter(pk__in=ids, has_failed_attempt=True).exclude(
            Exists(failing)
        ).update(has_failed_attempt=False)


def reclassify_after_run(account: AwsAccount, above_id: int) -> int:
    """The final pass of a sync run over the attempts it wrote (ids above `above_id`).

    Each batch reclassified what it gave new context, in its own transaction, so it could not
    see a failure another step of the run had written but not yet committed: that failure kept
    the class it was given without this batch's success (or 401/407). Now that every step has
    committed, the stored failures the run's successes and 401/407 answers are context for
    (`affected_by`: their endpoints and connections, from the run's earliest such write on)
    are classified again, in keyset batches; only rows whose classification changed are saved,
    so a second pass, or one after a run without races, writes nothing. Returns rows changed.
    """
    written = (
        HttpAttempt.objects.filter(account=account, id__gt=above_id)
        .filter(
            Q(outcome=Outcome.SUCCEEDED, endpoint__isnull=False)
            | Q(status_code__in=TRIGGER_STATUSES)
        )
        .only(*_CONTEXT_FIELDS)
    )
    condition = affected_by(written.iterator(chunk_size=BATCH))
    if condition is None:
        return 0
    classifier = Classifier(Resolver(account, default_redactor()), FailureGroups(account))
    rows = _with_relations(HttpAttempt.objects.filter(condition, account=account))
    touched: set[int] = set()
    last_id = 0
    while batch := list(rows.filter(id__gt=last_id).order_by("id")[:BATCH]):
        with transaction.atomic():
            touched |= classifier.reclassify(batch, only_changed=True)
        last_id = batch[-1].id
    if touched:
        refresh_groups(touched)
    return classifier.rewritten


def reclassify_after_state_changes(account: AwsAccount, since_id: int) -> int:
    """After DescribeConnection recorded state changes (ids above `since_id`): reclassify the
    failures of those connections the states can explain (de-authorized, FAILED_CONNECTIVITY,
    a private connection provisioning) from the earliest change on."""
    changes = ConnectionStateChange.objects.filter(
        pk__gt=since_id, connection__account=account
    ).values_list("connection__arn", "changed_at")
    earliest: dict[str, datetime] = {}
    for arn, at in changes:
        earliest[arn] = min(earliest.get(arn, at), at)
    if not earliest:
        return 0
    condition = Q()
    for arn, at in earliest.items():
        condition |= Q(connection_arn=arn, occurred_at__gte=at)
    rows = list(
        _with_relations(
            HttpAttempt.objects.filter(
                condition, account=account, error__in=NEEDS_CONNECTION_STATES
            )
        ).order_by("id")
    )
    if not rows:
        return 0
    classifier = Classifier(Resolver(account, default_redactor()), FailureGroups(account))
    with transaction.atomic():
        classifier.reclassify(rows)
    refresh_account_groups(account)
    return len(rows)


def last_state_change_id() -> int:
    """The newest recorded connection state change, to tell the ones a sync adds."""
    return ConnectionStateChange.objects.order_by("-pk").values_list("pk", flat=True).first() or 0


def stored_outcome(row: HttpAttempt) -> str:
    """The outcome today's parser gives a stored row: a call an abort cut off was stored as
    failed before `aborted` existed (RULES_VERSION 2026.12.4). The event that closed it says
    so: ExecutionAborted or TaskStateAborted, or ExecutionFailed closing a call that was
    scheduled and never answered (another branch failed the execution; it got no error)."""
    if row.outcome != Outcome.FAILED:
        return row.outcome
    cut_off = (
        row.closed_event_type == "ExecutionFailed"
        and row.scheduled_event_id is not None
        and not row.error
        and row.status_code is None
    )
    return Outcome.ABORTED if cut_off or row.closed_event_type in ABORT_EVENTS else row.outcome


def _classification_of(row: HttpAttempt) -> tuple[object, ...]:
    return (
        *(getattr(row, f) for f in CLASSIFICATION_FIELDS),
        row.outcome,
        row.failure_group_id,
    )


def _with_relations(rows: QuerySet[HttpAttempt]) -> QuerySet[HttpAttempt]:
    return rows.select_related("endpoint", "connection", "execution")
