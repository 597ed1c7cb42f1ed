"""A machine's CloudWatch log that cannot be read (its group deleted, FilterLogEvents denied on
it) costs that log only, through a real sandbox sync: the run goes on with every other machine,
names the log with what to do, and a Standard machine's executions are read from their
histories instead. Before, FilterLogEvents was not a one-resource call: an Express machine's
missing group failed the whole run, and a Standard machine's went to the process log only."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from connections.models import SyncRun
from connections.unreadable import LOG
from executions.choices import HistorySource
from executions.models import Execution
from executions.sync import sync_account_by_id
from sandbox.server import Sandbox
from tests.aws_sandbox import register
from tests.sandbox.support import Aws, SuiteAws, http_task, single_state, unique

pytestmark = pytest.mark.django_db(transaction=True)
# Its own region: no other suite lists these machines.
REGION = "eu-south-2"


@pytest.fixture
def aws(sync_sandbox: Sandbox) -> Iterator[SuiteAws]:
    made = SuiteAws(sync_sandbox.endpoint_url, REGION)
    yield made
    made.delete_made()


def _machine(aws: Aws, url: str, group: str, *, express: bool = False) -> str:
    logging = {
        "level": "ALL",
        "includeExecutionData": True,
        "destinations": [
            {
                "cloudWatchLogsLogGroup": {
                    "logGroupArn": f"arn:aws:logs:{REGION}:123456789012:log-group:{group}:*"
                }
            }
        ],
    }
    task = http_task({"ApiEndpoint": url, "Method": "GET"})
    arn = aws.state_machine(single_state(task), express=express, logging=logging)
    return arn


def _run() -> SyncRun:
    return SyncRun.objects.order_by("-pk").first()  # type: ignore[return-value]


def _logs_named(run: SyncRun) -> list[dict[str, Any]]:
    return [p for p in run.unreadable if p.get("kind") == LOG]


def test_an_express_machine_whose_log_group_is_gone_costs_only_itself(
    sync_sandbox: Sandbox, aws: Aws
) -> None:
    account = register(sync_sandbox, name=unique("nolog"), region=REGION)
    gone = f"/aws/vendedlogs/states/{unique('gone')}"  # never created
    express = _machine(aws, f"{sync_sandbox.partner_url}/status/500", gone, express=True)
    standard_group, _ = aws.log_group()
    standard = _machine(aws, f"{sync_sandbox.partner_url}/status/500", standard_group)
    failed = aws.start(standard)
    aws.wait(failed)

    summary = sync_account_by_id(account.pk, trigger="test")

    run = _run()
    # Partial, as for any resource named unreadable; before, failed: nothing else was read.
    assert summary["status"] == run.status == "partial" and not run.errors, run.errors
    [problem] = _logs_named(run)
    assert problem["arn"].endswith(f"{gone}:*") and problem["name"] == express.rsplit(":", 1)[1]
    assert (problem["operation"], problem["code"]) == (
        "FilterLogEvents",
        "ResourceNotFoundException",
    )
    assert "recorded only in its log" in problem["missing"]
    assert "does not exist" in problem["hint"]
    # The rest of the region was read.
    assert Execution.objects.get(arn=failed).has_failed_attempt


def test_a_standard_machine_whose_log_is_denied_is_read_from_its_histories(
    sync_sandbox: Sandbox, aws: Aws, history_reads: Counter[str]
) -> None:
    account = register(sync_sandbox, name=unique("denied"), region=REGION)
    group, _ = aws.log_group()
    machine = _machine(aws, f"{sync_sandbox.partner_url}/status/500", group)
    failed = [aws.start(machine) for _ in range(2)]
    for arn in failed:
        aws.wait(arn)
    faults = f"{sync_sandbox.endpoint_url}/_sandbox/faults"
    requests.post(faults, json={"resources": {group: "access_denied"}}, timeout=5)
    try:
        summary = sync_account_by_id(account.pk, trigger="test")
    finally:
        requests.delete(faults, timeout=5)

    run = _run()
    assert summary["status"] == "partial" and not run.errors, run.errors
    [problem] = _logs_named(run)
    assert problem["code"] == "AccessDeniedException"
    assert "logs:FilterLogEvents" in problem["hint"]
    assert "history is read instead" in problem["missing"]
    for arn in failed:
        row = Execution.objects.get(arn=arn)
        assert history_reads[arn] == 1
        assert (row.source, row.history_complete, row.has_failed_attempt) == (
            HistorySource.HISTORY,
            True,
            True,
        )
