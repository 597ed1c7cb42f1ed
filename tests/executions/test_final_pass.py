"""Two steps of one run writing at once cannot see each other's uncommitted rows; the run's
final pass puts right what that race left stale (issue 14 item 3)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

import pytest
from django.db import connection, transaction

from connections.models import AwsAccount
from executions.classification import reclassify_after_run
from executions.history import ParsedAttempt, parse_history
from executions.ingest import AttemptWriter
from executions.models import Execution, HttpAttempt, StateMachine
from executions.sync import begin_sync, finish_sync
from executions.sync import run as run_module
from tests.executions.test_classification_recipe import HISTORIES, ORDERS
from tests.factories import (
    AwsAccountFactory,
    ExecutionFactory,
    HttpAttemptFactory,
    StateMachineFactory,
)

# Real commits: the other step writes on its own database connection, in a thread.
pytestmark = pytest.mark.django_db(transaction=True)

NO_TENANT, OK = HISTORIES[4], HISTORIES[2]  # a 400 without X-Tenant-Id; the success before it


def _work(machine: StateMachine, document: dict[str, Any]) -> tuple[Execution, list[ParsedAttempt]]:
    started = datetime.fromtimestamp(document["events"][0]["timestamp"], UTC)
    execution = ExecutionFactory.create(
        state_machine=machine, arn=document["executionArn"], start_date=started
    )
    return execution, parse_history(document["events"])


def _write(account: AwsAccount, work: tuple[Execution, list[ParsedAttempt]]) -> None:
    writer = AttemptWriter(account)
    writer.write_many([work], {}, fresh_executions=True)
    writer.flush()


def test_a_failure_committed_after_a_concurrent_success_is_right_once_the_run_finishes() -> None:
    account = AwsAccountFactory.create()
    run = begin_sync(account, "test")
    assert run is not None
    # Two sync steps of the run: two state machines calling the same endpoint.
    failing = _work(StateMachineFactory.create(account=account), NO_TENANT)
    succeeding = _work(StateMachineFactory.create(account=account), OK)
    # The endpoint is known from an earlier sync (else the second writer would wait on the
    # first's uncommitted endpoint row rather than race it).
    resolver = AttemptWriter(account).resolver
    resolver.endpoint("POST", resolver.template_of(ORDERS), datetime.now(UTC))

    def other_step() -> None:
        try:
            _write(account, succeeding)
        finally:
            connection.close()

    with transaction.atomic():
        # Written before the success is stored, and not yet committed when it is.
        writer = AttemptWriter(account)
        writer.write_many([failing], {}, fresh_executions=True)
        thread = threading.Thread(target=other_step)
        thread.start()
        thread.join(timeout=60)
        assert not thread.is_alive()
    writer.flush()
    assert HttpAttempt.objects.filter(account=account).count() == 2
    failure = HttpAttempt.objects.select_related("failure_group").get(outcome="failed")
    # The race happened: each batch was blind to the other's row.
    assert failure.category != "missing_header"
    assert "no successful call to this endpoint is known" in failure.hint

    summary = finish_sync(run.pk)

    assert summary["status"] == "ok", summary
    failure.refresh_from_db()
    assert failure.category == "missing_header", failure.hint
    group = failure.failure_group
    assert group is not None and group.category == "missing_header" and group.count == 1
    # The group the race put it in is empty and open: it goes (grouping.drop_empty_open).
    assert list(account.failure_groups.all()) == [group]
    # Idempotent, and cheap when nothing changed: a second pass saves nothing.
    assert reclassify_after_run(account, run.attempts_above) == 0


@pytest.fixture
def final_passes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The runs whose final pass ran (observed on the way through; the pass itself runs)."""
    seen: list[int] = []
    real = run_module.reclassify_after_run  # type: ignore[attr-defined]

    def observed(account: AwsAccount, above_id: int) -> int:
        seen.append(account.pk)
        return real(account, above_id)

    monkeypatch.setattr(run_module, "reclassify_after_run", observed)
    return seen


def test_a_run_whose_steps_ran_one_at_a_time_has_no_final_pass(final_passes: list[int]) -> None:
    """The command's steps run one after the other, each batch seeing all written before it:
    the final pass, which re-reads every failure the run's successes are context for, would
    find nothing to change (the race above needs two steps at once)."""
    account = AwsAccountFactory.create()
    run = begin_sync(account, "test", one_at_a_time=True)
    assert run is not None and run.steps_one_at_a_time

    assert finish_sync(run.pk)["status"] == "ok"
    assert final_passes == []

    fanned_out = begin_sync(account, "test")  # Celery's steps: the pass runs
    assert fanned_out is not None
    finish_sync(fanned_out.pk)
    assert final_passes == [account.pk]


def test_a_run_taking_over_an_unfinished_run_has_its_final_pass(final_passes: list[int]) -> None:
    """An unfinished run never had its pass, and its steps may have raced: the run that takes
    over covers what it wrote, even when its own steps run one at a time."""
    account = AwsAccountFactory.create()
    execution = ExecutionFactory.create(state_machine=StateMachineFactory.create(account=account))
    HttpAttemptFactory.create(execution=execution)  # an earlier run's
    stalled = begin_sync(account, "test")
    assert stalled is not None
    written = HttpAttemptFactory.create(execution=execution)  # by the stalled run
    AwsAccount.objects.filter(pk=account.pk).update(
        sync_heartbeat_at=datetime(2020, 1, 1, tzinfo=UTC)
    )

    run = begin_sync(account, "test", one_at_a_time=True)

    assert run is not None and run.attempts_above < written.pk
    assert not run.steps_one_at_a_time
    finish_sync(run.pk)
    assert final_passes == [account.pk]
