"""One vocabulary per concept: where a concept has two spellings (SQL and Python, the pure
packages and the Django choices), they must say the same thing."""

from __future__ import annotations

import itertools

import pytest

from connections.models import AwsAccount
from executions.choices import (
    TERMINAL_STATUSES,
    Category,
    ExecutionStatus,
    HistorySource,
    Outcome,
)
from executions.classify import CATEGORIES
from executions.history import (
    EXECUTION_TERMINAL,
    OUTCOME_ABORTED,
    OUTCOME_FAILED,
    OUTCOME_IN_PROGRESS,
    OUTCOME_SUCCEEDED,
    OUTCOME_TIMED_OUT,
    is_failing_outcome,
    is_finished_outcome,
)
from executions.models import CUT_OFF, FAILING, FINISHED, HISTORY_UNREAD, Execution, HttpAttempt
from tests.factories import ExecutionFactory, HttpAttemptFactory

# Beyond the choices: what an older row or a bug could hold must be judged alike too.
OUTCOMES = [*Outcome.values, "", "cancelled"]
CATEGORY_VALUES = ["", *Category.values]


@pytest.mark.django_db
def test_failing_in_sql_and_in_python_agree_on_every_outcome_and_category(
    account: AwsAccount,
) -> None:
    execution = ExecutionFactory.create(state_machine__account=account)
    combinations = list(itertools.product(OUTCOMES, CATEGORY_VALUES, (200, 503, None)))
    HttpAttempt.objects.bulk_create(
        HttpAttemptFactory.build(execution=execution, outcome=o, category=c, status_code=s)
        for o, c, s in combinations
    )
    rows = list(HttpAttempt.objects.filter(execution=execution))
    assert len(rows) == len(combinations)
    in_python = {a.pk for a in rows if a.is_failure}
    assert in_python == {a.pk for a in rows if is_failing_outcome(a.outcome)}
    assert set(HttpAttempt.objects.failing().values_list("pk", flat=True)) == in_python
    assert set(HttpAttempt.objects.filter(FAILING).values_list("pk", flat=True)) == in_python
    # And it is the meaning the pages have always had: failed and timed out, nothing else known.
    # Aborted (issue 15 item 9) is known and not failing: the call was cut off, not failed.
    assert {a.outcome for a in rows if a.pk in in_python} == {
        Outcome.FAILED,
        Outcome.TIMED_OUT,
        "",
        "cancelled",
    }
    assert not is_failing_outcome(Outcome.ABORTED)


@pytest.mark.django_db
def test_not_inspected_in_sql_and_in_python_agree(account: AwsAccount) -> None:
    # Execution.inspected (a row in hand) and HISTORY_UNREAD (the Q of the pages and counts).
    rows = [
        ExecutionFactory.create(
            state_machine__account=account, source=source, history_complete=complete
        )
        for source, complete in itertools.product([*HistorySource.values, ""], (True, False))
    ]
    unread = set(Execution.objects.filter(HISTORY_UNREAD).values_list("pk", flat=True))
    assert {row.pk for row in rows if not row.inspected} == unread
    assert unread, "at least the listing-only row is not inspected"


@pytest.mark.django_db
def test_finished_in_sql_and_in_python_agree_on_every_outcome(account: AwsAccount) -> None:
    execution = ExecutionFactory.create(state_machine__account=account)
    HttpAttempt.objects.bulk_create(
        HttpAttemptFactory.build(execution=execution, outcome=o) for o in OUTCOMES
    )
    rows = list(HttpAttempt.objects.filter(execution=execution))
    in_python = {a.pk for a in rows if is_finished_outcome(a.outcome)}
    assert set(HttpAttempt.objects.filter(FINISHED).values_list("pk", flat=True)) == in_python
    # A rate's denominator and latency: every call that ended, failing ones included.
    assert {a.outcome for a in rows if a.pk not in in_python} == {
        Outcome.ABORTED,
        Outcome.IN_PROGRESS,
    }
    assert {a.outcome for a in HttpAttempt.objects.filter(CUT_OFF)} == {Outcome.ABORTED}
    assert HttpAttempt.objects.failing().exclude(FINISHED).count() == 0


def test_the_choices_spell_the_pure_packages_values() -> None:
    assert tuple(Outcome.values) == (
        OUTCOME_SUCCEEDED,
        OUTCOME_FAILED,
        OUTCOME_TIMED_OUT,
        OUTCOME_ABORTED,
        OUTCOME_IN_PROGRESS,
    )
    assert tuple(Category.values) == CATEGORIES  # same values, same order (charts, filters)
    assert set(EXECUTION_TERMINAL.values()) == TERMINAL_STATUSES
    assert set(ExecutionStatus.values) > TERMINAL_STATUSES
