"""`manage.py reclassify` re-runs stored attempts through the current rules and regroups them."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from connections.models import AwsAccount
from executions.classify import RULES_VERSION
from executions.models import Execution, FailureGroup, HttpAttempt
from executions.sync import begin_sync, finish_sync
from tests.factories import (
    EndpointFactory,
    ExecutionFactory,
    FailureGroupFactory,
    HttpAttemptFactory,
    StateMachineFactory,
)

pytestmark = pytest.mark.django_db


def test_outdated_attempts_are_reclassified_and_grouped() -> None:
    stale = HttpAttemptFactory.create(
        status_code=429,
        error="States.Http.StatusCode.429",
        cause="Too Many Requests",
        category="unknown",
        subcategory="",
        hint="",
        classifier_version="2000.1",
    )
    stale.endpoint = EndpointFactory.create(account=stale.account, method=stale.method)
    stale.save()
    call_command("reclassify")
    stale.refresh_from_db()
    assert stale.category == "rate_limited"
    assert stale.classifier_version == RULES_VERSION
    assert stale.hint
    assert stale.failure_group is not None and stale.failure_group.count == 1


def test_current_attempts_are_left_alone_unless_all_is_given() -> None:
    current = HttpAttemptFactory.create(
        classifier_version=RULES_VERSION, category="unknown", hint="kept"
    )
    call_command("reclassify")
    current.refresh_from_db()
    assert (current.category, current.hint) == ("unknown", "kept")
    call_command("reclassify", "--all")
    current.refresh_from_db()
    assert current.category == "server_error"


def test_group_counts_follow_the_new_grouping() -> None:
    first = HttpAttemptFactory.create(classifier_version="old")
    HttpAttemptFactory.create(execution=first.execution, classifier_version="old", key_event_id=900)
    call_command("reclassify")
    groups = FailureGroup.objects.filter(attempts__isnull=False).distinct()
    assert sum(g.count for g in groups) == HttpAttempt.objects.count() == 2


def test_rules_of_this_version_bring_stored_attempts_up_to_date() -> None:
    # Stored by 2026.11.1, which made every JSONata cause missing_parameter and left the
    # sandbox's string-RequestBody failure unknown (issue 15 items 1 and 8).
    jsonata = HttpAttemptFactory.create(
        status_code=None,
        error="States.QueryEvaluationError",
        cause="An error occurred while executing the state 'Lookup' (entered at the event id "
        "#2). The JSONata expression '$f()' specified for the field 'Arguments/ApiEndpoint' "
        "threw an error during evaluation. T1006: Attempted to invoke a non-function",
        category="missing_parameter",
        classifier_version="2026.11.1",
    )
    body = HttpAttemptFactory.create(
        execution=jsonata.execution,
        key_event_id=901,
        status_code=None,
        error="States.Runtime",
        cause="A string RequestBody cannot be combined with the connection's body parameters.",
        category="unknown",
        classifier_version="2026.11.1",
    )
    call_command("reclassify")
    jsonata.refresh_from_db()
    body.refresh_from_db()
    assert (jsonata.category, jsonata.subcategory) == ("invalid_request", "expression_error")
    assert jsonata.evidence["jsonata_error"] == "T1006"
    assert (body.category, body.subcategory) == (
        "invalid_request",
        "string_body_with_connection_body",
    )
    assert {jsonata.classifier_version, body.classifier_version} == {RULES_VERSION}


def test_reclassify_gives_hints_the_states_retry_and_catch_from_its_definition() -> None:
    definition = {
        "StartAt": "CallPartner",
        "States": {
            "CallPartner": {
                "Type": "Task",
                "Resource": "arn:aws:states:::http:invoke",
                "Parameters": {
                    "ApiEndpoint": "https://api.example.com/v1/orders",
                    "Method": "POST",
                },
                "Retry": [{"ErrorEquals": ["States.Http.StatusCode.503"], "MaxAttempts": 2}],
                "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "NotifyFailure"}],
                "End": True,
            },
            "NotifyFailure": {"Type": "Pass", "End": True},
        },
    }
    machine = StateMachineFactory.create(definition=json.dumps(definition))
    stale = HttpAttemptFactory.create(
        execution=ExecutionFactory.create(state_machine=machine),
        attempt_number=3,
        caught=True,
        final_attempt=True,
        classifier_version="2026.11.1",
    )
    call_command("reclassify")
    stale.refresh_from_db()
    assert "add a Retry" not in stale.hint
    assert "retried 2 times (Retry[0]: MaxAttempts 2, BackoffRate 2)" in stale.hint
    assert "caught by Catch[0] → NotifyFailure" in stale.hint


def test_calls_cut_off_by_an_abort_become_aborted_and_leave_the_failures() -> None:
    # Stored by 2026.12.3, which kept them as failed (unknown/aborted) in failure groups and
    # their executions among the failing ones (issue 15 item 9).
    old = {
        "status_code": None,
        "error": "",
        "cause": "",
        "category": "unknown",
        "subcategory": "aborted",
        "classifier_version": "2026.12.3",
    }
    stopped = HttpAttemptFactory.create(
        execution=ExecutionFactory.create(has_failed_attempt=True, status="ABORTED"),
        closed_event_type="ExecutionAborted",
        **{**old, "error": "Ops.Cancelled", "cause": "by ops"},
    )
    sibling = HttpAttemptFactory.create(
        execution=ExecutionFactory.create(has_failed_attempt=True, status="FAILED"),
        closed_event_type="ExecutionFailed",
        **{**old, "subcategory": "no_error_recorded"},
    )
    real = HttpAttemptFactory.create(
        execution=sibling.execution, key_event_id=902, closed_event_type="TaskFailed"
    )
    before_request = HttpAttemptFactory.create(  # failed before any call: a real failure
        execution=ExecutionFactory.create(has_failed_attempt=True),
        closed_event_type="ExecutionFailed",
        scheduled_event_id=None,
        **{**old, "error": "States.Runtime", "cause": "The JSONPath '$.id' could not be found"},
    )
    call_command("reclassify")
    for row in (stopped, sibling, real, before_request):
        row.refresh_from_db()
    assert (stopped.outcome, stopped.category, stopped.subcategory) == ("aborted", "", "aborted")
    assert "'Ops.Cancelled'" in stopped.hint and stopped.failure_group is None
    assert (sibling.outcome, sibling.evidence["aborted_by"]) == (
        "aborted",
        "execution failed elsewhere",
    )
    assert (real.outcome, real.category) == ("failed", "server_error")
    assert real.failure_group is not None and real.failure_group.count == 1
    assert before_request.outcome == "failed" and before_request.failure_group is not None
    stopped.execution.refresh_from_db()
    sibling.execution.refresh_from_db()
    assert stopped.execution.has_failed_attempt is False  # its only failure was the abort
    assert sibling.execution.has_failed_attempt is True  # the 503 is still a failure
    assert HttpAttempt.objects.failing().count() == 2


def test_the_runs_final_pass_clears_the_failing_flag_of_an_execution_whose_failure_was_an_abort(
    account: AwsAccount,
) -> None:
    # Stored before `aborted` existed: a call cut off by a sibling, kept as a failed 409 in a
    # group beside a real 409 of the same kind, its execution among the failing ones. The
    # run's final pass reclassifies it (a success to its endpoint came before it).
    endpoint = EndpointFactory.create(account=account, method="POST")
    machine = StateMachineFactory.create(account=account)
    now = timezone.now()
    real_at, success_at, cut_at = (now - timedelta(minutes=m) for m in (30, 20, 10))
    conflict = {
        "endpoint": endpoint,
        "status_code": 409,
        "error": "States.Http.StatusCode.409",
        "category": "client_error",
        "classifier_version": "2026.12.3",
    }
    real = HttpAttemptFactory.create(
        execution=ExecutionFactory.create(state_machine=machine, has_failed_attempt=True),
        occurred_at=real_at,
        **conflict,
    )
    group = FailureGroupFactory.create(account=account, count=2, last_seen_at=cut_at)
    cut = HttpAttemptFactory.create(
        execution=ExecutionFactory.create(state_machine=machine, has_failed_attempt=True),
        occurred_at=cut_at,
        closed_event_type="TaskStateAborted",
        failure_group=group,
        **conflict,
    )
    HttpAttempt.objects.filter(pk=real.pk).update(failure_group=group)
    lone = FailureGroupFactory.create(account=account, count=1, last_seen_at=cut_at)
    HttpAttemptFactory.create(  # a group whose only member was an abort
        execution=cut.execution,
        occurred_at=cut_at,
        closed_event_type="TaskStateAborted",
        failure_group=lone,
        **conflict,
    )
    run = begin_sync(account, "test")
    assert run is not None
    HttpAttemptFactory.create(  # written by the run
        execution=real.execution, endpoint=endpoint, occurred_at=success_at, succeeded=True
    )
    assert finish_sync(run.pk)["status"] == "ok"
    cut.refresh_from_db()
    assert (cut.outcome, cut.failure_group) == ("aborted", None)
    cut.execution.refresh_from_db()
    assert cut.execution.has_failed_attempt is False  # its only failure was the abort
    real.execution.refresh_from_db()
    assert real.execution.has_failed_attempt is True
    group.refresh_from_db()
    assert (group.count, group.last_seen_at) == (1, real_at)  # the real 409, and only it
    # Emptied and open, the lone group goes (grouping.drop_empty_open).
    assert not FailureGroup.objects.filter(pk=lone.pk).exists()
    assert Execution.objects.failing().filter(pk=cut.execution_id).exists() is False
