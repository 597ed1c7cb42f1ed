"""A redriven execution read again from its stored event id, against the sandbox: one small
newest-first GetExecutionHistory call for the events after the stored ones, not the whole
history again, and the attempts stored are exactly those of the whole history (no duplicate)."""

from __future__ import annotations

from typing import Any

import pytest

from connections.aws import READ_ON_PAGE, AwsApi
from executions.history import parse_history
from executions.models import Execution, HttpAttempt
from executions.rows import attempt_key
from executions.sync import sync_account_by_id, sync_one_execution
from sandbox.server import Sandbox
from tests.aws_sandbox import register
from tests.sandbox.support import Aws, http_task, unique

pytestmark = pytest.mark.django_db(transaction=True)
# Pass states ahead of the call: more stored events than one read-on page holds.
PASSES = 60


@pytest.fixture
def history_calls(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Each GetExecutionHistory call the sync makes: its parameters and the event ids answered
    (observed on the way through; the call itself goes to the sandbox)."""
    calls: list[dict[str, Any]] = []
    real = AwsApi._call

    def observed(self: AwsApi, operation: str, method: Any, /, *args: Any, **kwargs: Any) -> Any:
        answer = real(self, operation, method, *args, **kwargs)
        if operation == "GetExecutionHistory":
            calls.append({**kwargs, "ids": [e["id"] for e in answer.get("events", [])]})
        return answer

    monkeypatch.setattr(AwsApi, "_call", observed)
    return calls


def _machine(call: dict[str, Any], then_wait: int = 0) -> dict[str, Any]:
    states: dict[str, Any] = {
        f"P{i}": {"Type": "Pass", "Next": f"P{i + 1}" if i + 1 < PASSES else "Call"}
        for i in range(PASSES)
    }
    states["Call"] = http_task(call)
    if then_wait:
        del states["Call"]["End"]
        states["Call"]["Next"] = "Pause"
        states["Pause"] = {"Type": "Wait", "Seconds": then_wait, "End": True}
    return {"StartAt": "P0", "States": states}


def _stored_keys(execution: Execution) -> list[int]:
    return sorted(
        HttpAttempt.objects.filter(execution=execution).values_list("key_event_id", flat=True)
    )


def test_a_redriven_execution_is_read_on_from_its_stored_event_id(
    sync_sandbox: Sandbox, history_calls: list[dict[str, Any]]
) -> None:
    aws = Aws(sync_sandbox.endpoint_url, sync_sandbox.region)
    account = register(sync_sandbox, name=unique("readon"))
    url = f"{sync_sandbox.partner_url}/sequence?key={unique('k')}&statuses=500,500,200"
    definition = _machine({"ApiEndpoint": url, "Method": "GET"})
    arn = aws.start(aws.state_machine(definition))
    assert aws.wait(arn).status == "FAILED"
    sync_account_by_id(account.pk, trigger="test")
    execution = Execution.objects.get(arn=arn)
    stored_id = execution.last_event_id
    assert stored_id > READ_ON_PAGE and execution.history_complete
    assert len(_stored_keys(execution)) == 1 and execution.error

    aws.sfn.redrive_execution(executionArn=arn)
    first = aws.wait(arn)
    assert first.status == "FAILED"  # the second call fails too: read on once more
    history_calls.clear()
    sync_one_execution(execution.pk)
    execution.refresh_from_db()
    assert execution.redrive_count == 1 and execution.last_event_id > stored_id
    assert len(history_calls) == 1
    call = history_calls[0]
    assert call["reverseOrder"] is True and call["maxResults"] == READ_ON_PAGE
    # The page stopped the read: nothing older was asked for.
    assert "nextToken" not in call and min(call["ids"]) > 1
    assert len(_stored_keys(execution)) == 2

    second_stored = execution.last_event_id
    aws.sfn.redrive_execution(executionArn=arn)
    assert aws.wait(arn).status == "SUCCEEDED"
    history_calls.clear()
    sync_one_execution(execution.pk)
    execution.refresh_from_db()
    assert execution.status == "SUCCEEDED" and execution.redrive_count == 2
    assert len(history_calls) == 1 and "nextToken" not in history_calls[0]
    new_events = [i for i in history_calls[0]["ids"] if i > second_stored]
    assert new_events and len(new_events) < len(history_calls[0]["ids"])
    # The error of the failed run is gone with the redrive that succeeded.
    assert execution.error == "" and execution.parse_problems == []

    # Exactly the attempts a parse of the whole history finds: none twice, none missing.
    truth = sorted(attempt_key(a) for a in parse_history(aws.history(arn), definition))
    assert _stored_keys(execution) == truth and len(truth) == 3
    outcomes = list(
        HttpAttempt.objects.filter(execution=execution)
        .order_by("key_event_id")
        .values_list("status_code", flat=True)
    )
    assert outcomes == [500, 500, 200]

    # Read again with nothing new: one call, nothing written twice.
    history_calls.clear()
    sync_one_execution(execution.pk)
    assert len(history_calls) == 1 and _stored_keys(execution) == truth


def test_a_redriven_execution_still_running_keeps_its_read_on_point(
    sync_sandbox: Sandbox, history_calls: list[dict[str, Any]]
) -> None:
    aws = Aws(sync_sandbox.endpoint_url, sync_sandbox.region)
    account = register(sync_sandbox, name=unique("running"))
    url = f"{sync_sandbox.partner_url}/sequence?key={unique('k')}&statuses=500,200"
    definition = _machine({"ApiEndpoint": url, "Method": "GET"}, then_wait=3)
    arn = aws.start(aws.state_machine(definition))
    assert aws.wait(arn).status == "FAILED"
    sync_account_by_id(account.pk, trigger="test")
    execution = Execution.objects.get(arn=arn)
    stored_id = execution.last_event_id

    aws.sfn.redrive_execution(executionArn=arn)
    history_calls.clear()
    # As the resync right after RedriveExecution finds it (the Wait state still runs): its
    # status only, no history call, and the read-on point stays where nothing was open.
    sync_one_execution(execution.pk)
    execution.refresh_from_db()
    assert execution.status == "RUNNING" and execution.redrive_count == 1
    assert execution.last_event_id == stored_id and history_calls == []

    assert aws.wait(arn).status == "SUCCEEDED"
    sync_account_by_id(account.pk, trigger="test")  # the scheduled sync, as the beat runs it
    execution.refresh_from_db()
    assert execution.status == "SUCCEEDED" and execution.last_event_id > stored_id
    reads = [c for c in history_calls if c["executionArn"] == arn]
    assert len(reads) == 1 and reads[0]["reverseOrder"] is True
    truth = sorted(attempt_key(a) for a in parse_history(aws.history(arn), definition))
    assert _stored_keys(execution) == truth and len(truth) == 2
