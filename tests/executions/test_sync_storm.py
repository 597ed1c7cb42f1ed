"""A failure storm, against the sandbox over HTTP: the listing counts every failed execution at
once, histories are read failures first, a capped sync leaves the rest as a backlog the Sync page
shows with an ETA, and the next sync reads that backlog without reading anything twice."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from django.db.models import Sum
from django.test import Client
from django.urls import reverse

from executions.choices import HistorySource
from executions.models import Execution, FailureGroup, HttpAttempt
from executions.sync import sync_account_by_id
from sandbox.server import Sandbox
from tests.aws_sandbox import register
from tests.factories import UserFactory
from tests.sandbox.support import Aws, http_task, unique

pytestmark = pytest.mark.django_db(transaction=True)
# Its own region: no other suite's machines are listed with these.
REGION = "ap-southeast-2"
CAP = 2


def _machine(aws: Aws, url: str) -> str:
    """An HTTP call that fails, unless the input says {"ok": true}."""
    call = http_task({"ApiEndpoint": url, "Method": "GET"})
    return aws.state_machine(
        {
            "StartAt": "Route",
            "States": {
                "Route": {
                    "Type": "Choice",
                    "Choices": [{"Variable": "$.ok", "BooleanEquals": True, "Next": "Done"}],
                    "Default": "Call",
                },
                "Call": call,
                "Done": {"Type": "Succeed"},
            },
        }
    )


def test_a_storm_is_counted_at_once_and_its_histories_read_failures_first(
    sync_sandbox: Sandbox, settings: Any, history_reads: Counter[str], client: Client
) -> None:
    aws = Aws(sync_sandbox.endpoint_url, REGION)
    account = register(sync_sandbox, name=unique("storm"), region=REGION)
    url = f"{sync_sandbox.partner_url}/status/500"
    first, second = _machine(aws, url), _machine(aws, url)
    failed = [aws.start(first) for _ in range(5)] + [aws.start(second) for _ in range(4)]
    # Started last, so listed first (newest first): read only after the failures all the same.
    succeeded = [aws.start(second, {"ok": True}) for _ in range(3)]
    for arn in failed + succeeded:
        aws.wait(arn)
    settings.STEPSCOPE = {**settings.STEPSCOPE, "HISTORIES_PER_SYNC": CAP}

    sync_account_by_id(account.pk, trigger="test")

    stored = {e.arn: e for e in Execution.objects.filter(account=account)}
    assert set(failed) <= set(stored)  # every failure counted, read or not
    assert not set(succeeded) & set(history_reads)  # failures first: no success read yet
    read = [arn for arn in failed if history_reads[arn]]
    assert len(read) == 2 * CAP  # the cap, per machine
    waiting = [arn for arn in failed if arn not in read]
    for arn in waiting:
        row = stored[arn]
        assert (row.source, row.history_complete, row.status) == (
            HistorySource.LISTING, False, "FAILED",
        )  # fmt: skip
    assert set(Execution.objects.awaiting_history().values_list("arn", flat=True)) == set(waiting)
    for arn in read:
        assert stored[arn].source == HistorySource.HISTORY and stored[arn].history_complete

    client.force_login(UserFactory.create(is_superuser=True))
    page = client.get(reverse("dashboard:sync_status"), {"account": account.pk}).content.decode()
    assert f'data-backlog-region="{REGION}"' in page
    assert f"<span data-waiting>{len(waiting)}</span>" in page
    assert "<span data-eta>" in page and "GetExecutionHistory calls/s" in page
    listed = client.get(reverse("executions:list"), {"view": "executions", "region": REGION})
    rows = listed.content.decode()
    for arn in failed:  # every failure on the failing-executions page, read or not
        assert f'data-execution="{stored[arn].pk}"' in rows
    assert rows.count("data-uninspected") == len(waiting)
    assert 'Call <span class="small">(HTTP state)</span>' in rows  # from its definition
    api = client.get(reverse("api:executions"), {"account": account.pk}).json()["results"]
    assert {r["arn"] for r in api if not r["inspected"]} == set(waiting)
    overview = client.get(reverse("dashboard:overview")).content.decode()
    assert f"Plus <strong>{len(waiting)}</strong> failed executions" in overview

    settings.STEPSCOPE = {**settings.STEPSCOPE, "HISTORIES_PER_SYNC": 0}
    sync_account_by_id(account.pk, trigger="test")

    # The rest read, each once: nothing read in the first sync was asked for again.
    assert all(history_reads[arn] == 1 for arn in failed + succeeded), history_reads
    assert not Execution.objects.awaiting_history().filter(account=account).exists()
    for arn in waiting:  # upgraded in place: the same row, now whole, with its attempt
        row = Execution.objects.get(arn=arn)
        assert row.pk == stored[arn].pk
        assert row.source == HistorySource.HISTORY and row.history_complete
        assert row.has_failed_attempt and row.error
    attempts = HttpAttempt.objects.filter(execution__account=account).failing()
    assert attempts.count() == len(failed)
    groups = FailureGroup.objects.filter(account=account)
    assert groups.aggregate(n=Sum("count"))["n"] == len(failed)
    page = client.get(reverse("dashboard:sync_status"), {"account": account.pk}).content.decode()
    assert "data-backlog" not in page
