"""One sync per account: the run holding the claim, its heartbeat, and the takeover of a run
that went silent (its worker killed, its queued steps lost with the broker).

In-process against the sandbox; tests/reliability/test_worker_faults.py shows the same with a
real worker whose broker is restarted under it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from connections.models import AwsAccount, SyncRun, sync_stale_after
from executions.models import Execution, StateMachine
from executions.sync import (
    ALREADY_RUNNING,
    begin_sync,
    discover_region,
    due_account_ids,
    finish_sync,
    sync_account_by_id,
    sync_machine,
)
from sandbox.server import Sandbox
from tests.aws_sandbox import register
from tests.reliability.conftest import assert_converged, busiest_standard_machine

pytestmark = [pytest.mark.django_db]


def _silence(account: AwsAccount, for_: timedelta) -> None:
    """Move the holder's last heartbeat `for_` into the past, as if it had stopped beating."""
    AwsAccount.objects.filter(pk=account.pk).update(sync_heartbeat_at=timezone.now() - for_)


def _holder(account: AwsAccount) -> int | None:
    return AwsAccount.objects.values_list("sync_run", flat=True).get(pk=account.pk)


def _standard_machine_ids(run: SyncRun, sandbox: Sandbox) -> list[int]:
    ids = discover_region(run.pk, sandbox.region)
    return list(
        StateMachine.objects.filter(pk__in=ids, type="STANDARD").values_list("pk", flat=True)
    )


def test_a_live_run_holds_the_account_against_every_other_trigger(
    reliability_sandbox: Sandbox,
) -> None:
    account = register(reliability_sandbox)
    live = begin_sync(account, "test")
    assert live is not None and _holder(account) == live.pk

    _silence(account, sync_stale_after() - timedelta(seconds=30))  # quiet, but not for long enough
    assert begin_sync(account, "test") is None
    assert sync_account_by_id(account.pk)["skipped"] == ALREADY_RUNNING
    assert account.pk not in due_account_ids(), "the beat would only queue a no-op"
    assert SyncRun.objects.filter(account=account).count() == 1, "a refused trigger leaves no run"


def test_a_silent_run_is_closed_with_the_reason_and_the_next_trigger_takes_over(
    reliability_sandbox: Sandbox,
) -> None:
    account = register(reliability_sandbox)
    silent = begin_sync(account, "test")
    assert silent is not None
    _silence(account, sync_stale_after() + timedelta(seconds=1))
    assert account.pk in due_account_ids(), "the beat is the watchdog: a silent run is due"

    current = begin_sync(account, "test")

    assert current is not None and _holder(account) == current.pk
    silent.refresh_from_db()
    assert silent.finished_at is not None and silent.status == "failed"
    assert silent.progress == "abandoned"
    assert "no progress for 5 min" in silent.errors[0], silent.errors


def test_late_steps_and_callbacks_of_a_taken_over_run_change_nothing(
    reliability_sandbox: Sandbox,
) -> None:
    account = register(reliability_sandbox)
    silent = begin_sync(account, "test")
    assert silent is not None
    machines = _standard_machine_ids(silent, reliability_sandbox)
    assert machines
    _silence(account, sync_stale_after() + timedelta(seconds=1))
    current = begin_sync(account, "test")
    assert current is not None

    # What a step redelivered an hour after its worker was SIGKILLed does, and its chord callback.
    for machine_id in machines:
        sync_machine(silent.pk, machine_id)
    late = finish_sync(silent.pk)

    assert not Execution.objects.filter(account=account).exists(), "a closed run wrote on"
    silent.refresh_from_db()
    assert (silent.status, silent.progress, late["status"]) == ("failed", "abandoned", "failed")
    assert _holder(account) == current.pk, "the late callback released the live run's claim"

    # The run that took over does the whole sync and then lets go.
    for machine_id in discover_region(current.pk, reliability_sandbox.region):
        sync_machine(current.pk, machine_id)
    assert finish_sync(current.pk)["status"] == "ok"
    assert _holder(account) is None
    assert_converged(reliability_sandbox)


def test_steps_renew_the_claim_while_they_work(reliability_sandbox: Sandbox) -> None:
    account = register(reliability_sandbox)
    run = begin_sync(account, "test")
    assert run is not None
    _silence(account, sync_stale_after() - timedelta(seconds=5))
    before = timezone.now()

    discover_region(run.pk, reliability_sandbox.region)

    beat = AwsAccount.objects.values_list("sync_heartbeat_at", flat=True).get(pk=account.pk)
    assert beat is not None and beat >= before


def test_a_step_whose_run_is_taken_over_mid_work_stops_writing(
    reliability_sandbox: Sandbox, settings: Any
) -> None:
    # Every heartbeat goes to the database (a tenth of no time), so the step notices at once.
    settings.STEPSCOPE = {**settings.STEPSCOPE, "SYNC_STALE_AFTER_SECONDS": 0}
    account = register(reliability_sandbox)
    first = begin_sync(account, "test")
    assert first is not None
    machines = StateMachine.objects.filter(pk__in=_standard_machine_ids(first, reliability_sandbox))
    machine_id = machines.get(arn=busiest_standard_machine(reliability_sandbox)).pk
    taken_over: list[SyncRun | None] = []

    # The takeover lands after the step's first heartbeat, before it lists anything.
    sync_machine(
        first.pk, machine_id, progress=lambda _msg: taken_over.append(begin_sync(account, "test"))
    )

    assert taken_over and taken_over[0] is not None
    assert not Execution.objects.filter(state_machine_id=machine_id).exists()
    machine = StateMachine.objects.get(pk=machine_id)
    assert machine.newest_start_seen is None, "the cursor moved past what nobody stored"
    first.refresh_from_db()
    assert first.status == "failed" and first.progress == "abandoned"
