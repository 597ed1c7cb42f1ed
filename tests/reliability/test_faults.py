"""Faults at the AWS boundary and in the database, in-process: every sync still converges.

The sandbox answers AWS's protocol over HTTP; its fault rules (sandbox/faults.py) refuse
pagination tokens as expired and shrink pages so that its small listings span several pages.
Throttling and 500s across all operations are covered by tests/executions/test_sync.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from django.db import connection

from executions.models import Execution
from executions.sync import readers, sync_account_by_id
from sandbox.faults import FaultInjector
from sandbox.server import Sandbox
from tests.aws_sandbox import register
from tests.reliability.conftest import (
    DropConnection,
    RedisServer,
    assert_converged,
    busiest_standard_machine,
    faults,
    injected,
    standard_execution_count,
    stored_standard_count,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

# Page sizes that give every kind of listing several pages while staying inside the shared
# rate limiter's bursts (FilterLogEvents allows 2.5 calls a second).
SMALL_PAGES = {
    "ListStateMachines": 2,
    "ListExecutions": 4,
    "GetExecutionHistory": 8,
    "FilterLogEvents": 20,
}


@pytest.fixture
def private_rate_limits(settings: Any, redis_server: RedisServer) -> None:
    """The rate limiter's buckets in our own Redis, shared with no other suite."""
    settings.REDIS_URL = redis_server.url


def _sfn(sandbox: Sandbox) -> Any:
    return boto3.client(
        "stepfunctions",
        endpoint_url=sandbox.endpoint_url,
        region_name=sandbox.region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"max_attempts": 1}),
    )


def test_the_sandbox_refuses_a_token_as_expired_once_and_caps_page_sizes(
    reliability_sandbox: Sandbox,
) -> None:
    sfn = _sfn(reliability_sandbox)
    machine = busiest_standard_machine(reliability_sandbox)
    rules = {"ListExecutions": {"invalid_token": 1.0, "page_size": 2}}
    with faults(reliability_sandbox, rules) as url:
        first = sfn.list_executions(stateMachineArn=machine, maxResults=1000)
        assert len(first["executions"]) == 2 and first["nextToken"]
        with pytest.raises(ClientError) as refused:
            sfn.list_executions(
                stateMachineArn=machine, maxResults=1000, nextToken=first["nextToken"]
            )
        # A listing started again would get a fresh token on AWS: the same one now works.
        second = sfn.list_executions(
            stateMachineArn=machine, maxResults=1000, nextToken=first["nextToken"]
        )
        assert injected(url) == {"ListExecutions": {"invalid_token": 1}}
    assert refused.value.response["Error"]["Code"] == "InvalidToken"
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert second["executions"][0] != first["executions"][0]


def test_expired_tokens_restart_each_listing_and_the_sync_ingests_everything(
    reliability_sandbox: Sandbox, private_rate_limits: None
) -> None:
    account = register(reliability_sandbox)
    # Every token is refused once: each listing of several pages restarts at every page.
    rules = {op: {"invalid_token": 1.0, "page_size": size} for op, size in SMALL_PAGES.items()}
    with faults(reliability_sandbox, rules) as url:
        summary = sync_account_by_id(account.pk)
        refused = injected(url)
    assert summary["status"] == "ok", summary["errors"]
    assert {op for op, kinds in refused.items() if kinds.get("invalid_token")} == set(SMALL_PAGES)
    assert_converged(reliability_sandbox)
    again = sync_account_by_id(account.pk)
    assert again["executions_added"] == again["attempts_added"] == 0
    assert again["api_calls"].get("GetExecutionHistory", 0) == 0


@pytest.fixture
def refuse_late_attempts() -> Iterator[None]:
    """A PostgreSQL trigger that fails inserts of attempts past event 12: histories are cut
    short after their first streamed batches, by the database itself."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            CREATE FUNCTION reliability_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION 'injected failure for event %', NEW.key_event_id; END $$;
            CREATE TRIGGER reliability_refuse BEFORE INSERT ON executions_httpattempt
            FOR EACH ROW WHEN (NEW.key_event_id > 12) EXECUTE FUNCTION reliability_refuse();
            """
        )
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(
                "DROP TRIGGER IF EXISTS reliability_refuse ON executions_httpattempt;"
                "DROP FUNCTION IF EXISTS reliability_refuse();"
            )


def test_a_history_cut_short_after_streamed_batches_is_read_again_by_the_next_sync(
    reliability_sandbox: Sandbox,
    private_rate_limits: None,
    monkeypatch: pytest.MonkeyPatch,
    refuse_late_attempts: None,
) -> None:
    account = register(reliability_sandbox)
    monkeypatch.setattr(readers, "STREAM_BATCH", 1)  # write after every page, as big histories do
    with faults(reliability_sandbox, {"GetExecutionHistory": {"page_size": 4}}):
        cut = sync_account_by_id(account.pk)
        incomplete = Execution.objects.filter(
            history_complete=False, status__in=["SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"]
        )
        assert cut["status"] == "partial" and incomplete.exists(), cut
        with connection.cursor() as cursor:
            cursor.execute("DROP TRIGGER reliability_refuse ON executions_httpattempt")
        sync_account_by_id(account.pk)
    assert not incomplete.exists()
    assert_converged(reliability_sandbox)


# Where the connection drops, and what takes it up again on a new one.
DROPPED_ONCE = [
    # Inside the transaction writing a batch: it is written again one execution at a time.
    pytest.param("executions_httpattempt", "INSERT", id="while-a-batch-is-written"),
    # Outside any transaction, a cursor moving: the step runs once more, skipping what is stored.
    pytest.param("executions_statemachine", "UPDATE", id="between-batches"),
    # The group recount a step runs when it ends, its attempts committed: recounted again (the
    # next run would not touch those attempts, so a lost recount would stay short for good).
    pytest.param("executions_failuregroup", "UPDATE", id="while-groups-are-recounted"),
]


@pytest.mark.parametrize(("table", "event"), DROPPED_ONCE)
def test_a_connection_dropped_once_loses_nothing(
    reliability_sandbox: Sandbox,
    private_rate_limits: None,
    drop_connection: DropConnection,
    caplog: pytest.LogCaptureFixture,
    table: str,
    event: str,
) -> None:
    account = register(reliability_sandbox)
    drop_connection(table, event)
    summary = sync_account_by_id(account.pk)
    assert summary["status"] == "ok", summary
    assert "terminating connection" in caplog.text, "the drop never happened: nothing was tested"
    assert_converged(reliability_sandbox)  # every attempt stored, every group counts exactly


def test_a_connection_dropped_twice_costs_the_step_not_the_run(
    reliability_sandbox: Sandbox,
    private_rate_limits: None,
    drop_connection: DropConnection,
) -> None:
    account = register(reliability_sandbox)
    # The step's second pass loses its connection too: it gives up, the other steps go on.
    drop_connection("executions_statemachine", "UPDATE", times=2)
    interrupted = sync_account_by_id(account.pk)
    assert interrupted["status"] == "partial", interrupted
    assert any("terminating connection" in e for e in interrupted["errors"]), interrupted
    assert len(interrupted["errors"]) == 1, interrupted["errors"]  # no cascade after the drop
    stored = stored_standard_count(account)
    assert stored >= standard_execution_count(reliability_sandbox) - 1
    again = sync_account_by_id(account.pk)  # the claim was released: this one runs
    assert again["status"] == "ok", again
    assert_converged(reliability_sandbox)


# GetExecutionHistory (and every other operation at once) is covered by test_sync.py's test.
@pytest.mark.parametrize("operation", ["ListExecutions", "FilterLogEvents"])
def test_throttling_and_server_errors_on_one_operation_still_ingest_everything(
    reliability_sandbox: Sandbox,
    private_rate_limits: None,
    monkeypatch: pytest.MonkeyPatch,
    operation: str,
) -> None:
    # Seeded so that the first call is throttled: a rare operation still meets a fault.
    monkeypatch.setattr(reliability_sandbox, "faults", FaultInjector(seed=1))
    account = register(reliability_sandbox)
    with faults(reliability_sandbox, {operation: {"throttle": 0.3, "error": 0.1}}) as url:
        summary = sync_account_by_id(account.pk)
        hit = injected(url)
    assert summary["status"] == "ok", summary["errors"]
    assert set(hit) == {operation} and hit[operation].get("throttle"), hit
    assert_converged(reliability_sandbox)
