"""Storing Map Runs and linking children stored before their run (executions/sync/map_runs.py),
on the real database: a child is linked by the ARN that names its run, and only to the run of
that label that was open when it started."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from executions import history
from executions.models import Execution, MapRun
from executions.redaction import default_redactor
from executions.sync.map_runs import child_prefix, links_for, record_map_runs, stored_starts
from tests.factories import ExecutionFactory, StateMachineFactory

pytestmark = pytest.mark.django_db

RUN = "arn:aws:states:us-east-1:123456789012:mapRun:orders/fan:0f6c"


def test_child_prefix_is_the_runs_execution_arn_without_its_id() -> None:
    assert child_prefix(RUN) == "arn:aws:states:us-east-1:123456789012:execution:orders/fan:"


def test_a_child_stored_first_is_linked_when_its_parent_records_the_run() -> None:
    machine = StateMachineFactory.create(
        arn="arn:aws:states:us-east-1:123456789012:stateMachine:orders"
    )
    now = timezone.now()
    parent = ExecutionFactory.create(state_machine=machine, start_date=now - timedelta(minutes=1))
    inside = ExecutionFactory.create(
        state_machine=machine, arn=f"{child_prefix(RUN)}c1", start_date=now - timedelta(seconds=30)
    )
    # The same label, started long after the run ended: another parent's child.
    later = ExecutionFactory.create(
        state_machine=machine, arn=f"{child_prefix(RUN)}c2", start_date=now + timedelta(hours=1)
    )
    run = history.MapRun(
        RUN, parent.arn, "FanOut", status="FAILED", error="States.ExceedToleratedFailureThreshold",
        started_at=now - timedelta(seconds=50), ended_at=now - timedelta(seconds=10),
    )  # fmt: skip

    [row] = record_map_runs(parent, [run], default_redactor())

    assert (row.label, row.map_state, row.status) == ("fan", "FanOut", "FAILED")
    assert Execution.objects.get(pk=inside.pk).map_run_id == row.pk
    assert Execution.objects.get(pk=inside.pk).parent_execution_id == parent.pk
    assert Execution.objects.get(pk=later.pk).map_run_id is None


def test_recording_again_updates_the_run_instead_of_adding_one() -> None:
    parent = ExecutionFactory.create()
    run = history.MapRun(RUN, parent.arn, "FanOut", started_at=timezone.now())
    record_map_runs(parent, [run], default_redactor())
    run.status = "SUCCEEDED"
    record_map_runs(parent, [run], default_redactor())
    assert list(MapRun.objects.values_list("status", flat=True)) == ["SUCCEEDED"]


def test_a_plain_execution_gets_no_links() -> None:
    parent = ExecutionFactory.create()
    record_map_runs(
        parent,
        [history.MapRun(RUN, parent.arn, "F", started_at=timezone.now())],
        default_redactor(),
    )
    plain = "arn:aws:states:us-east-1:123456789012:execution:orders:plain-run"
    assert links_for(parent.account_id, plain, timezone.now(), {}) == {}
    child = f"{child_prefix(RUN)}c9"
    assert (
        links_for(parent.account_id, child, timezone.now(), {})["parent_execution_id"] == parent.pk
    )


def test_a_read_on_after_a_redrive_updates_the_redriven_run_and_keeps_the_others() -> None:
    parent = ExecutionFactory.create()
    other = RUN.replace(":0f6c", ":9a9a")
    now = timezone.now()
    first = [
        history.MapRun(
            arn, parent.arn, "FanOut", status="FAILED", started_at=now, ended_at=now,
            error="States.ExceedToleratedFailureThreshold",
        )
        for arn in (RUN, other)
    ]  # fmt: skip
    record_map_runs(parent, first, default_redactor())

    # What a read-on reads: only the events after the stored id (no MapRunStarted).
    new_events = [
        {"id": 20, "type": "ExecutionRedriven", "executionRedrivenEventDetails": {"redriveCount": 1}},
        {"id": 21, "type": "MapRunRedriven", "previousEventId": 20,
         "mapRunRedrivenEventDetails": {"mapRunArn": RUN, "redriveCount": 1}},
        {"id": 22, "type": "MapRunSucceeded", "previousEventId": 21},
    ]  # fmt: skip
    runs = history.map_runs_in([*stored_starts(parent), *new_events], parent.arn)
    record_map_runs(parent, runs, default_redactor())

    redriven, untouched = MapRun.objects.get(arn=RUN), MapRun.objects.get(arn=other)
    assert (redriven.status, redriven.redrive_count, redriven.error) == ("SUCCEEDED", 1, "")
    assert redriven.map_state == "FanOut"
    assert (untouched.status, untouched.error) == (
        "FAILED",
        "States.ExceedToleratedFailureThreshold",
    )
    assert MapRun.objects.count() == 2
