"""Two registrations of one AWS account forced into overlap past the form: a sync never moves a
row to another owner; it skips what the other registration owns and says so on its run."""

from __future__ import annotations

import pytest

from connections.models import AwsAccount, Connection, Endpoint
from executions.models import Execution, FailureGroup, HttpAttempt, StateMachine
from executions.sync import sync_account_by_id
from sandbox import scenarios
from sandbox.server import Sandbox
from tests.aws_sandbox import register

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture(scope="module")
def seeded(sync_sandbox: Sandbox) -> Sandbox:
    scenarios.run(sync_sandbox.endpoint_url, region=sync_sandbox.region, executions=12, seed=31)
    return sync_sandbox


def owners() -> dict[str, set[tuple[str, int]]]:
    """Every synced row by its key, with the account that owns it."""
    return {
        "state machines": set(StateMachine.objects.values_list("arn", "account_id")),
        "connections": set(Connection.objects.values_list("arn", "account_id")),
        "executions": set(Execution.objects.values_list("arn", "account_id")),
        "attempts": set(HttpAttempt.objects.values_list("execution__arn", "account_id")),
        "endpoints": set(Endpoint.objects.values_list("url_template", "account_id")),
        "groups": set(FailureGroup.objects.values_list("fingerprint", "account_id")),
    }


def forced_copy(account: AwsAccount, name: str) -> AwsAccount:
    """The same AWS account and regions under another name, written past the form and the
    model's save (as a raw import or an older release could have left it)."""
    (copy,) = AwsAccount.objects.bulk_create(
        [
            AwsAccount(
                name=name,
                account_id=account.account_id,
                regions=list(account.regions),
                auth_mode=account.auth_mode,
                access_key_id=account.access_key_id,
                secret_access_key=account.secret_access_key,
                endpoint_url=account.endpoint_url,
            )
        ]
    )
    return copy


def test_a_forced_overlap_changes_no_owner_and_the_run_says_why(seeded: Sandbox) -> None:
    first = register(seeded, name="first")
    assert sync_account_by_id(first.pk)["status"] == "ok"
    before = owners()
    assert before["state machines"] and before["connections"] and before["executions"]
    second = forced_copy(first, "second")

    summary = sync_account_by_id(second.pk)

    assert owners() == before, "a row changed owner"
    assert summary["status"] == "partial"
    reasons = "\n".join(summary["errors"])
    for kind, key in (("state machine", "state machines"), ("connection", "connections")):
        for arn, _ in before[key]:
            assert (
                f"{arn}: skipped: this {kind} belongs to the registration 'first' of the same AWS "
                "account and region" in reasons
            ), arn
    # The first registration syncs on cleanly: nothing was left half-moved.
    again = sync_account_by_id(first.pk)
    assert again["status"] == "ok", again["errors"]
    assert owners() == before
