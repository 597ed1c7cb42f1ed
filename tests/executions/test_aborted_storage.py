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


def _write(
    account: AwsAccount, index: int, status: str, fixture: str = "aborted_mid_call.json"
) -> list[HttpAttempt]:
    document = json.loads((FIXTURES / fixture).read_text())[index]
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


@pytest.mark.parametrize(
    ("index", "status", "failure"),
    [
        (0, "SUCCEEDED", "GetOrder failed (States.Http.StatusCode.503) in EachOrder[0]"),
        (1, "FAILED", "NotifyBilling failed (States.Http.StatusCode.500) in Fanout#0"),
    ],
)
def test_every_sibling_call_a_failure_cut_off_is_stored_aborted_naming_that_failure(
    account: AwsAccount, index: int, status: str, failure: str
) -> None:
    # A Map caught by its Catch (the execution succeeds) and a Parallel that fails the
    # execution: each of the two sibling calls in flight gets its own TaskStateAborted.
    failed, *cut = _write(account, index, status, "siblings_cut_off.json")
    assert failed.outcome == "failed" and failed.failure_group is not None
    assert failed.failure_group.count == 1
    assert len(cut) == 2
    for row in cut:
        assert (row.outcome, row.closed_event_type, row.failure_group) == (
            "aborted",
            "TaskStateAborted",
            None,
        )
        assert row.evidence["aborted_by"] == f"state aborted: {failure}"
        assert row.aborted_by == failure
        assert f"failed ({failure})" in row.hint
    assert list(HttpAttempt.objects.failing()) == [failed]
