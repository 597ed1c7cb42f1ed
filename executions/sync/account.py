"""The steps of one account's sync, and the whole sync in one process.

Celery (executions/tasks.py) runs `begin_sync`, then `discover_region` per region and
`sync_machine` per state machine fanned out, then `finish_sync`; `sync_account_by_id` runs the
same steps one after the other (the command, the benchmark, the tests).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.utils import timezone

from connections.aws import AwsApi
from connections.discovery import sync_connections
from connections.models import AwsAccount
from executions.choices import StateMachineType
from executions.classification import last_state_change_id, reclassify_after_state_changes
from executions.history import http_states_from_definition
from executions.models import Execution, StateMachine
from executions.scrub import rescrub_new_secret_names, secret_names_by_connection
from executions.sync.machines import discover_machines
from executions.sync.readers import ExpressLogReader, StandardReader
from executions.sync.run import ALREADY_RUNNING, Progress, SyncSummary, begin_sync, finish_sync
from executions.sync.step import SyncStep


def sync_account_by_id(
    account_id: int,
    trigger: str = "schedule",
    regions: list[str] | None = None,
    since: datetime | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """The whole sync in this process (the command, tests); Celery runs the same steps fanned out."""
    account = AwsAccount.objects.filter(pk=account_id).first()
    if account is None:
        return {"skipped": "account gone"}
    run = begin_sync(account, trigger, one_at_a_time=True)
    if run is None:
        return SyncSummary(account.name, skipped=ALREADY_RUNNING).as_dict()
    for region in regions or list(account.regions):
        for machine_id in discover_region(run.pk, region, progress):
            sync_machine(run.pk, machine_id, since, progress)
    return finish_sync(run.pk)


def discover_region(run_id: int, region: str, progress: Progress | None = None) -> list[int]:
    """Connections and state machines of one region; returns the machines to sync."""
    step = SyncStep(run_id, progress)
    api = AwsApi(step.account, region)

    def discover() -> list[int]:
        step.say(f"{region}: connections")
        known = secret_names_by_connection(step.account)
        changes_before = last_state_change_id()
        sync_connections(api, step.account, step.note_unreadable, on_skip=step.note_error)
        # A state change just recorded (a de-authorization) is context for failures stored
        # before it was known: they are classified again now, not at the next rules change.
        reclassify_after_state_changes(step.account, changes_before)
        # Rows stored before a connection's secret names were known are redacted again.
        rescrub_new_secret_names(step.account, known, step.writer.redactor)
        step.say(f"{region}: state machines")
        return [m.pk for m in discover_machines(step, api, region)]

    return step.carry_out(api, discover) or []


def sync_machine(
    run_id: int, machine_id: int, since: datetime | None = None, progress: Progress | None = None
) -> None:
    """New executions of one state machine; errors are recorded on the run, never raised."""
    step = SyncStep(run_id, progress)
    machine = StateMachine.objects.filter(pk=machine_id).first()
    if machine is None:
        return
    api = AwsApi(step.account, machine.region)
    step.since = since
    states = http_states_from_definition(machine.definition)

    def read() -> None:
        step.say(f"{machine.region}: {machine.name}")
        # A new reader each time: one cut short holds listed-but-unread executions.
        if machine.type == StateMachineType.EXPRESS:
            if machine.log_group_arn:
                ExpressLogReader(step, api, machine, states).run()
        else:
            StandardReader(step, api, machine, states).run()
        StateMachine.objects.filter(pk=machine.pk).update(last_synced_at=timezone.now())

    step.carry_out(api, read)


def sync_one_execution(execution_id: int, trigger: str = "redrive") -> dict[str, Any]:
    """Read one Standard execution again (after a redrive) as a run of its own, so it claims
    the account like any sync. Left RUNNING, the next scheduled sync revisits it until it ends.
    Another sync holding the account answers ALREADY_RUNNING: the caller tries again later."""
    execution = (
        Execution.objects.select_related("state_machine", "account").filter(pk=execution_id).first()
    )
    if execution is None or execution.state_machine.type == StateMachineType.EXPRESS:
        return {"skipped": "no such Standard execution"}
    run = begin_sync(execution.account, trigger, one_at_a_time=True)
    if run is None:
        return SyncSummary(execution.account.name, skipped=ALREADY_RUNNING).as_dict()
    step = SyncStep(run.pk)
    machine = execution.state_machine
    api = AwsApi(step.account, machine.region)
    reader = StandardReader(step, api, machine, http_states_from_definition(machine.definition))
    step.carry_out(api, lambda: reader.read_one(execution))
    return finish_sync(run.pk)
