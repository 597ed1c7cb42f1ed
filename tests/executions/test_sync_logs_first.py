"""Logs first for Standard state machines, against the sandbox over HTTP: what the CloudWatch
log holds whole is stored from it without a GetExecutionHistory call; what it does not cover (a
listed execution absent from the log, one still running, an id gap) is read from its history;
a failure the log only outlines (level ERROR, no execution data) is counted at once and its
history read upgrades the same row, with exactly the attempts a history-only read stores."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from django.db.models import Sum

from connections.models import AwsAccount, SyncRun
from executions.choices import HistorySource, StateMachineType
from executions.models import Execution, FailureGroup, HttpAttempt
from executions.sync import sync_account_by_id
from executions.sync.logged import covered
from sandbox.server import Sandbox
from tests.aws_sandbox import register
from tests.factories import ExecutionFactory
from tests.sandbox.support import Aws, SuiteAws, http_task, unique

pytestmark = pytest.mark.django_db(transaction=True)
# Its own region: no other suite lists these machines.
REGION = "eu-west-3"


@pytest.fixture
def aws(sync_sandbox: Sandbox) -> Iterator[SuiteAws]:
    made = SuiteAws(sync_sandbox.endpoint_url, REGION)
    yield made
    made.delete_made()


def _machine(
    aws: Aws, url: str, logging: dict[str, Any] | None, *, wait: int = 0, retry: bool = False
) -> str:
    """Fails its HTTP call unless the input says {"ok": true}; `wait` seconds first."""
    ok_call = http_task({"ApiEndpoint": url.rsplit("/", 1)[0] + "/200", "Method": "GET"})
    del ok_call["End"]
    ok_call["Next"] = "Done"
    call = http_task({"ApiEndpoint": url, "Method": "GET"})
    if retry:
        call["Retry"] = [{"ErrorEquals": ["States.ALL"], "MaxAttempts": 1, "IntervalSeconds": 1}]
    states: dict[str, Any] = {
        "Route": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.ok", "BooleanEquals": True, "Next": "CallOk"}],
            "Default": "Call",
        },
        "Call": call,
        "CallOk": ok_call,
        "Done": {"Type": "Succeed"},
    }
    if wait:
        states["Pause"] = {"Type": "Wait", "Seconds": wait, "Next": "Route"}
    arn = aws.state_machine(
        {"StartAt": "Pause" if wait else "Route", "States": states}, logging=logging
    )
    return arn


def _logging(group_arn: str, level: str = "ALL", data: bool = True) -> dict[str, Any]:
    return {
        "level": level,
        "includeExecutionData": data,
        "destinations": [{"cloudWatchLogsLogGroup": {"logGroupArn": group_arn}}],
    }


def _logged(aws: Aws, group: str, arns: list[str]) -> None:
    """Until each execution's terminal event is in the log (written as the execution ends)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        ended = {
            r["execution_arn"]
            for r in aws.log_records(group)
            if r["type"].startswith("Execution") and r["type"] != "ExecutionStarted"
        }
        if set(arns) <= ended:
            return
        time.sleep(0.05)
    raise AssertionError("the sandbox did not log every execution's end")


def _last_run() -> SyncRun:
    return SyncRun.objects.order_by("-pk").first()  # type: ignore[return-value]


def test_the_ids_tell_whether_the_log_holds_the_whole_history() -> None:
    def events(*spec: tuple[int, str]) -> list[dict[str, Any]]:
        return [{"id": i, "type": t} for i, t in spec]

    whole = events((1, "ExecutionStarted"), (2, "TaskStateEntered"), (3, "ExecutionFailed"))
    assert covered(whole)
    assert not covered([whole[0], whole[2]])  # a gap in the ids
    assert not covered(whole[1:])  # begins after id 1
    assert not covered(whole[:2])  # still running
    assert not covered(
        events((1, "ExecutionStarted"), (2, "MapRunStarted"), (3, "ExecutionFailed"))
    )


def test_a_machine_logging_all_with_data_is_read_from_its_log_without_history_calls(
    sync_sandbox: Sandbox, aws: Aws, history_reads: Counter[str]
) -> None:
    account = register(sync_sandbox, name=unique("logs"), region=REGION)
    group, group_arn = f"/aws/vendedlogs/states/{unique('late')}", ""
    group_arn = f"arn:aws:logs:{REGION}:123456789012:log-group:{group}:*"
    machine = _machine(aws, f"{sync_sandbox.partner_url}/status/500", _logging(group_arn))
    # Started before its log group exists: AWS loses its log, the listing still names it.
    unlogged = aws.start(machine)
    aws.wait(unlogged)
    aws.logs.create_log_group(logGroupName=group)
    failed = [aws.start(machine) for _ in range(3)]
    succeeded = [aws.start(machine, {"ok": True}) for _ in range(2)]
    for arn in failed + succeeded:
        aws.wait(arn)
    _logged(aws, group, failed + succeeded)

    sync_account_by_id(account.pk, trigger="test")

    run = _last_run()
    stored = {e.arn: e for e in Execution.objects.filter(account=account)}
    for arn in failed + succeeded:  # stored once, from the log, whole: no history asked
        assert (stored[arn].source, stored[arn].history_complete) == (HistorySource.LOGS, True)
        assert history_reads[arn] == 0
    assert history_reads[unlogged] == 1 and stored[unlogged].source == HistorySource.HISTORY
    assert run.api_calls["GetExecutionHistory"] == 1
    assert run.api_calls["FilterLogEvents"] >= 1
    # The log's attempts are the history's: one failing call per failed execution, grouped.
    failing = HttpAttempt.objects.filter(execution__account=account).failing()
    assert Counter(failing.values_list("execution__arn", flat=True)) == Counter([*failed, unlogged])
    assert FailureGroup.objects.filter(account=account).aggregate(n=Sum("count"))["n"] == 4
    for arn in succeeded:
        row = stored[arn]
        assert row.status == "SUCCEEDED" and not row.has_failed_attempt
        assert row.attempts.count() == 1

    sync_account_by_id(account.pk, trigger="test")  # the log's overlap read again

    assert _last_run().api_calls.get("GetExecutionHistory", 0) == 0
    assert Execution.objects.filter(account=account).count() == len(stored)
    assert failing.count() == 4


def test_a_running_execution_is_left_to_its_history(
    sync_sandbox: Sandbox, aws: Aws, history_reads: Counter[str]
) -> None:
    account = register(sync_sandbox, name=unique("logs"), region=REGION)
    group, group_arn = aws.log_group()
    machine = _machine(aws, f"{sync_sandbox.partner_url}/status/500", _logging(group_arn), wait=2)
    running = aws.start(machine)

    sync_account_by_id(account.pk, trigger="test")

    row = Execution.objects.get(arn=running)
    assert row.status == "RUNNING" and row.source == HistorySource.HISTORY
    assert history_reads[running] == 1
    aws.wait(running)
    _logged(aws, group, [running])

    sync_account_by_id(account.pk, trigger="test")  # revisited, ended: its history again

    row.refresh_from_db()
    assert row.status == "FAILED" and row.history_complete and row.has_failed_attempt


def test_a_log_with_a_gap_in_its_ids_is_not_taken_for_the_history(
    sync_sandbox: Sandbox, aws: Aws, history_reads: Counter[str]
) -> None:
    """End to end, what `covered` checks: an execution whose first events were logged nowhere
    (its group created while it waited) has a log that ends well but starts at a later id; it
    is stored from its history, once, with the same attempts."""
    account = register(sync_sandbox, name=unique("logs"), region=REGION)
    group = f"/aws/vendedlogs/states/{unique('gap')}"
    group_arn = f"arn:aws:logs:{REGION}:123456789012:log-group:{group}:*"
    machine = _machine(aws, f"{sync_sandbox.partner_url}/status/500", _logging(group_arn), wait=2)
    arn = aws.start(machine)
    # Inside the Wait: ExecutionStarted and the Wait's entry are lost (logged to no group).
    deadline = time.monotonic() + 10
    while not any(e["type"] == "WaitStateEntered" for e in aws.history(arn)):
        assert time.monotonic() < deadline, "the execution never reached its Wait"
        time.sleep(0.02)
    aws.logs.create_log_group(logGroupName=group)
    aws.wait(arn)
    _logged(aws, group, [arn])
    ids = sorted(int(r["id"]) for r in aws.log_records(group) if r["execution_arn"] == arn)
    assert ids and ids[0] > 1  # the gap is real

    sync_account_by_id(account.pk, trigger="test")

    row = Execution.objects.get(arn=arn)
    assert history_reads[arn] == 1
    assert (row.source, row.history_complete, row.status) == (HistorySource.HISTORY, True, "FAILED")
    assert HttpAttempt.objects.filter(execution=row).failing().count() == 1

    sync_account_by_id(account.pk, trigger="test")  # nothing is read twice

    assert history_reads[arn] == 1


@pytest.mark.parametrize(("level", "data"), [("ERROR", True), ("ALL", False)])
def test_a_failure_the_log_outlines_is_counted_early_then_upgraded_in_place(
    sync_sandbox: Sandbox,
    aws: Aws,
    history_reads: Counter[str],
    settings: Any,
    level: str,
    data: bool,
) -> None:
    account = register(sync_sandbox, name=unique("logs"), region=REGION)
    group, group_arn = aws.log_group()
    url = f"{sync_sandbox.partner_url}/status/503"
    logged = _machine(aws, url, _logging(group_arn, level, data), retry=True)
    twin = _machine(aws, url, None, retry=True)  # the same calls, read from history only
    failed = [aws.start(logged) for _ in range(3)]
    twins = [aws.start(twin) for _ in range(3)]
    for arn in failed + twins:
        aws.wait(arn)
    _logged(aws, group, failed)
    # No history read in the first sync: what the logs gave is all there is.
    settings.STEPSCOPE = {**settings.STEPSCOPE, "HISTORIES_PER_SYNC": 1}

    sync_account_by_id(account.pk, trigger="test")

    early = {e.arn: e for e in Execution.objects.filter(arn__in=failed)}
    outlined = [arn for arn in failed if not history_reads[arn]]
    assert outlined  # the cap kept their histories for later
    for arn in outlined:  # counted and classified from the log already
        row = early[arn]
        assert (row.source, row.history_complete, row.status) == (
            HistorySource.LOGS,
            False,
            "FAILED",
        )
        assert row.has_failed_attempt and row.error
        assert row.attempts.failing().exists()
        if level == "ERROR":  # no TaskScheduled in an ERROR log: said, not guessed
            assert any("no TaskScheduled" in p for a in row.attempts.all() for p in a.problems)
    # Their histories are still owed: in the Sync page's backlog and the storm's "classified".
    waiting = Execution.objects.awaiting_history().filter(arn__in=failed)
    assert set(waiting.values_list("arn", flat=True)) == set(outlined)

    settings.STEPSCOPE = {**settings.STEPSCOPE, "HISTORIES_PER_SYNC": 0}
    sync_account_by_id(account.pk, trigger="test")

    assert all(history_reads[arn] == 1 for arn in failed + twins), history_reads
    assert not Execution.objects.awaiting_history().filter(account=account).exists()

    def attempts(arn: str) -> list[tuple[Any, ...]]:
        return sorted(
            HttpAttempt.objects.filter(execution__arn=arn).values_list(
                "key_event_id", "outcome", "status_code", "error", "failure_group_id", "problems"
            )
        )

    expected = attempts(twins[0])
    assert len(expected) == 2  # the call and its retry
    for arn in failed:  # upgraded in place: the same row, now exactly a history read
        row = Execution.objects.get(arn=arn)
        assert row.pk == early[arn].pk
        assert (row.source, row.history_complete) == (HistorySource.HISTORY, True)
        assert attempts(arn) == expected
    groups = FailureGroup.objects.filter(account=account)
    failing = HttpAttempt.objects.filter(execution__account=account).failing().count()
    assert failing == 2 * len(failed + twins)
    assert groups.aggregate(n=Sum("count"))["n"] == failing  # recounted, nothing twice
    # A group only the log's outline made (no URL without execution data) is gone with it.
    assert not groups.filter(count=0).exists()


def test_only_a_standard_machines_outlined_row_awaits_its_history(account: AwsAccount) -> None:
    # An Express execution has no history: its LOGS row is incomplete only while it runs.
    rows = {
        kind: ExecutionFactory.create(
            state_machine__account=account,
            state_machine__type=kind,
            source=HistorySource.LOGS,
            history_complete=False,
        )
        for kind in (StateMachineType.STANDARD, StateMachineType.EXPRESS)
    }
    waiting = set(Execution.objects.awaiting_history().values_list("pk", flat=True))
    assert waiting == {rows[StateMachineType.STANDARD].pk}
