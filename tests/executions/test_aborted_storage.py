"""Issue 15 item 9, stored: a call an abort cut off is stored as aborted — explained, but no
failure of its endpoint (no group, no failing execution, not in the failure rate)."""

from __future__ import annotations

import json

import pytest

from connections.models import AwsAccount
from executions.history import parse_history
from executions.ingest import AttemptWriter
from executions.models import FailureGroup, HttpAttempt
from tests.executions.test_classify import FIXTURES
from tests.factories import ExecutionFactory

pytestmark = pytest.mark.django_db


def _write(account: AwsAccount, index: int, status: str) -> list[HttpAttempt]:
    document = json.loads((FIXTURES / "aborted_mid_call.json").read_text())[index]
    attempts = parse_history(document["events"], document.get("definition"))
    execution = ExecutionFactory.create(
        state_machine__account=account, status=status, has_failed_attempt=False
    )
    writer = AttemptWriter(account)
    writer.write(execution, attempts)
    writer.flush()
    return list(HttpAttempt.objects.filter(execution=execution).order_by("key_event_id"))


def test_a_stopped_call_is_stored_aborted_outside_groups_and_failing_lists(
    account: AwsAccount,
) -> None:
    (stopped,) = _write(account, 0, "ABORTED")
    assert (stopped.outcome, stopped.category, stopped.subcategory) == ("aborted", "", "aborted")
    assert stopped.failure_group is None and not stopped.is_failure
    assert "Ops.DeployRollback" in stopped.hint and "nothing to fix" in stopped.hint
    assert stopped.evidence["aborted_by"] == "StopExecution"
    stopped.execution.refresh_from_db()
    assert stopped.execution.has_failed_attempt is False
    assert not HttpAttempt.objects.failing().exists() and not FailureGroup.objects.exists()


def test_the_sibling_failure_is_counted_once_and_the_cut_off_call_not_at_all(
    account: AwsAccount,
) -> None:
    failed, cut = _write(account, 1, "FAILED")
    assert (failed.outcome, failed.category) == ("failed", "server_error")
    assert failed.failure_group is not None and failed.failure_group.count == 1
    assert (cut.outcome, cut.closed_event_type, cut.failure_group) == (
        "aborted",
        "TaskStateAborted",
        None,
    )
    assert list(HttpAttempt.objects.failing()) == [failed]
    failed.execution.refresh_from_db()
    assert failed.execution.has_failed_attempt is True
