"""Exemplars first, against the sandbox over HTTP: in a storm of one failure with a rarer one
beside it, DescribeExecution (its own bucket) tells the new failures apart before any history is
read, its error and cause are stored on the "not yet inspected" rows, and the histories are read
one of each kind first, so a capped sync reads the rarer failure's history at once. A describe
that fails costs only its execution's place; nothing is read or described twice."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse, HTTPHeaders
from django.test import Client
from django.urls import reverse

from connections.aws import AwsApi
from connections.models import AwsAccount, SyncRun
from executions.choices import HistorySource
from executions.models import Execution
from executions.sync import sync_account_by_id
from executions.sync.triage import MISSES_BEFORE_GIVING_UP
from sandbox.server import Sandbox
from tests.aws_sandbox import register
from tests.factories import UserFactory
from tests.sandbox.support import Aws, SuiteAws, http_task, unique

pytestmark = pytest.mark.django_db(transaction=True)
# Its own region: no other suite lists these machines.
REGION = "eu-north-1"
COMMON = "States.Http.StatusCode.500"
RARE = "States.Http.StatusCode.404"


@pytest.fixture
def aws(sync_sandbox: Sandbox) -> Iterator[SuiteAws]:
    made = SuiteAws(sync_sandbox.endpoint_url, REGION)
    yield made
    made.delete_made()


def _storm(sandbox: Sandbox, aws: Aws, common: int) -> tuple[str, list[str], list[str]]:
    """One machine: a 404 when the input says {"rare": true}, else a 500. The rare failure is
    started first, so the listing (newest first) names it last."""
    partner = sandbox.partner_url
    rare_call = http_task({"ApiEndpoint": f"{partner}/status/404", "Method": "GET"})
    arn = aws.state_machine(
        {
            "StartAt": "Route",
            "States": {
                "Route": {
                    "Type": "Choice",
                    "Choices": [{"Variable": "$.rare", "BooleanEquals": True, "Next": "Rare"}],
                    "Default": "Call",
                },
                "Call": http_task({"ApiEndpoint": f"{partner}/status/500", "Method": "GET"}),
                "Rare": rare_call,
            },
        }
    )
    rare = aws.start(arn, {"rare": True})
    aws.wait(rare)
    many = [aws.start(arn) for _ in range(common)]
    for execution in many:
        aws.wait(execution)
    return arn, [rare], many


def _last_run() -> SyncRun:
    return SyncRun.objects.order_by("-pk").first()  # type: ignore[return-value]


def test_a_rarer_failure_is_read_in_the_first_sync_of_a_storm(
    sync_sandbox: Sandbox,
    aws: Aws,
    settings: Any,
    history_reads: Counter[str],
    describes: Counter[str],
    client: Client,
) -> None:
    account = register(sync_sandbox, name=unique("exemplars"), region=REGION)
    _, rare, many = _storm(sync_sandbox, aws, common=6)
    # The cause (here the status text) is redacted before it is stored, as a history's is.
    secret = "Internal Server"
    settings.STEPSCOPE = {
        **settings.STEPSCOPE, "HISTORIES_PER_SYNC": 2, "REDACT_VALUE_PATTERNS": [secret],
    }  # fmt: skip

    sync_account_by_id(account.pk, trigger="test")

    run = _last_run()
    assert run.status == "ok", run.errors
    # Listing order alone would read the two newest 500s; one of each kind is read instead.
    assert history_reads[rare[0]] == 1
    assert sum(history_reads[arn] for arn in many) == 1
    assert history_reads[many[-1]] == 1  # the newest of its kind is its exemplar
    # Every new failure described once, from DescribeExecution's own bucket.
    assert describes == Counter(rare + many)
    assert run.api_calls["DescribeExecution"] == len(rare + many)
    rows = {e.arn: e for e in Execution.objects.filter(account=account)}
    assert rows[rare[0]].error == RARE and rows[rare[0]].source == HistorySource.HISTORY
    waiting = [arn for arn in many if not history_reads[arn]]
    for arn in waiting:  # not inspected yet, but its failure is named already
        row = rows[arn]
        assert (row.source, row.history_complete, row.error) == (
            HistorySource.LISTING, False, COMMON,
        )  # fmt: skip
        assert row.cause and secret not in row.cause
    client.force_login(UserFactory.create(is_superuser=True))
    page = client.get(reverse("executions:list"), {"view": "executions", "region": REGION})
    html = page.content.decode()
    assert html.count("data-uninspected") == len(waiting)
    assert f"<code>{COMMON}</code>" in html

    settings.STEPSCOPE = {**settings.STEPSCOPE, "HISTORIES_PER_SYNC": 0}
    sync_account_by_id(account.pk, trigger="test")

    # The rest read, each once; the stored errors spared their describes.
    assert all(history_reads[arn] == 1 for arn in rare + many), history_reads
    assert describes == Counter(rare + many)
    assert _last_run().api_calls.get("DescribeExecution", 0) == 0
    assert not Execution.objects.awaiting_history().filter(account=account).exists()


@pytest.mark.parametrize(("triage_above", "described"), [(200, False), (3, True)])
def test_failures_read_within_the_burst_are_not_described(
    sync_sandbox: Sandbox,
    aws: Aws,
    settings: Any,
    history_reads: Counter[str],
    describes: Counter[str],
    triage_above: int,
    described: bool,
) -> None:
    """Uncapped, a handful of failures are all read within our share of GetExecutionHistory's
    burst, in seconds, whatever their order: a describe each would only cost a call. More than
    TRIAGE_ABOVE waiting, they are described and read by kind."""
    account = register(sync_sandbox, name=unique("exemplars"), region=REGION)
    _, rare, many = _storm(sync_sandbox, aws, common=4)
    settings.STEPSCOPE = {
        **settings.STEPSCOPE, "HISTORIES_PER_SYNC": 0, "TRIAGE_ABOVE": triage_above,
    }  # fmt: skip

    sync_account_by_id(account.pk, trigger="test")

    assert all(history_reads[arn] == 1 for arn in rare + many), history_reads
    assert describes == (Counter(rare + many) if described else Counter())
    assert ("DescribeExecution" in _last_run().api_calls) is described


def _answering(account: AwsAccount, arn: str, code: str) -> Any:
    """DescribeExecution of `arn` answered with the AWS error `code` (the sandbox still
    answers every other call), on the client the sync will use."""
    client = AwsApi(account, REGION).client("stepfunctions")

    def refuse(params: dict[str, Any], **_: Any) -> Any:
        if json.loads(params["body"] or b"{}").get("executionArn") != arn:
            return None
        raw = AWSResponse("https://sandbox", 400, HTTPHeaders(), None)
        return raw, {"Error": {"Code": code, "Message": code}, "ResponseMetadata": {}}

    client.meta.events.register("before-call.sfn.DescribeExecution", refuse)
    return lambda: client.meta.events.unregister("before-call.sfn.DescribeExecution", refuse)


@pytest.mark.parametrize(
    ("code", "rare_read"),
    # Refused: only that execution is unknown, the others are described and ordered by kind
    # (the unknown one is a kind of its own, so the cap still reaches it). Throttled through
    # every retry: the describes stop, all keep the listing's order (the newest two are read).
    [("ExecutionDoesNotExist", True), ("ThrottlingException", False)],
)
def test_a_failing_describe_costs_only_its_place(
    sync_sandbox: Sandbox,
    aws: Aws,
    settings: Any,
    history_reads: Counter[str],
    describes: Counter[str],
    monkeypatch: pytest.MonkeyPatch,
    code: str,
    rare_read: bool,
) -> None:
    monkeypatch.setattr("connections.aws.api.OUTER_BACKOFF_SECONDS", 0.001)
    account = register(sync_sandbox, name=unique("exemplars"), region=REGION)
    _, rare, many = _storm(sync_sandbox, aws, common=4)
    settings.STEPSCOPE = {**settings.STEPSCOPE, "HISTORIES_PER_SYNC": 2}
    refused = rare[0] if rare_read else many[-1]  # the throttled one is described first
    stop = _answering(account, refused, code)
    try:
        sync_account_by_id(account.pk, trigger="test")
    finally:
        stop()

    run = _last_run()
    assert run.status == "ok", run.errors  # never fails the sync
    assert bool(history_reads[rare[0]]) is rare_read
    assert sum(history_reads.values()) == 2
    unread = Execution.objects.filter(arn__in=[a for a in many if not history_reads[a]])
    if rare_read:
        assert set(describes) == set(rare + many)
        assert set(unread.values_list("error", flat=True)) == {COMMON}
    else:
        assert set(describes) == {refused}
        assert history_reads[many[-1]] == history_reads[many[-2]] == 1
        assert set(unread.values_list("error", flat=True)) == {""}  # never described


def test_describes_stop_when_metadata_only_leaves_the_error_out(
    sync_sandbox: Sandbox,
    aws: Aws,
    settings: Any,
    history_reads: Counter[str],
    describes: Counter[str],
) -> None:
    # As AWS may answer METADATA_ONLY: status and times, no error or cause.
    account = register(sync_sandbox, name=unique("exemplars"), region=REGION)
    _, rare, many = _storm(sync_sandbox, aws, common=7)
    settings.STEPSCOPE = {**settings.STEPSCOPE, "HISTORIES_PER_SYNC": 2}
    client = AwsApi(account, REGION).client("stepfunctions")

    def without_error(params: dict[str, Any], **_: Any) -> Any:
        arn = json.loads(params["body"])["executionArn"]
        answer = {"executionArn": arn, "status": "FAILED", "startDate": datetime.now(UTC)}
        return AWSResponse("https://sandbox", 200, HTTPHeaders(), None), answer

    client.meta.events.register("before-call.sfn.DescribeExecution", without_error)
    try:
        sync_account_by_id(account.pk, trigger="test")
    finally:
        client.meta.events.unregister("before-call.sfn.DescribeExecution", without_error)

    assert _last_run().status == "ok"
    assert sum(describes.values()) == MISSES_BEFORE_GIVING_UP  # then the bucket is spared
    assert history_reads[many[-1]] == history_reads[many[-2]] == 1  # the listing's order
    assert not history_reads[rare[0]]
