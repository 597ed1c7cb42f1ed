"""Regrouping after a rules change (`manage.py reclassify`) announces nothing: the groups it
creates are kept in their history, already dispatched; a real new group still raises its alert."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from alerts.models import Alert, AlertRule
from alerts.raising import raise_pending
from executions.choices import GroupTransitionKind, Outcome
from executions.models import GroupTransition
from executions.transitions import record_group_transition
from tests.factories import (
    EndpointFactory,
    ExecutionFactory,
    FailureGroupFactory,
    HttpAttemptFactory,
)

pytestmark = pytest.mark.django_db


def test_reclassify_regrouping_raises_no_new_group_alert() -> None:
    AlertRule.objects.create(
        name="team", events=["new_group", "regression"], webhook_url="http://127.0.0.1:9/hook"
    )
    stale = HttpAttemptFactory.create(
        status_code=429,
        error="States.Http.StatusCode.429",
        cause="Too Many Requests",
        category="unknown",
        subcategory="",
        hint="",
        classifier_version="2000.1",
        outcome=Outcome.FAILED,
    )
    stale.endpoint = EndpointFactory.create(account=stale.account, method=stale.method)
    stale.save()
    call_command("reclassify")
    stale.refresh_from_db()
    assert stale.failure_group is not None  # a group the new rules created
    opened = GroupTransition.objects.get(group=stale.failure_group)
    assert opened.kind == GroupTransitionKind.OPENED and opened.dispatched_at is not None
    assert raise_pending() == 0 and not Alert.objects.exists()

    # Ingestion still announces: a group opened by a new failure raises its alert.
    group = FailureGroupFactory.create(account=stale.account)
    HttpAttemptFactory.create(
        account=group.account,
        execution=ExecutionFactory.create(account=group.account),
        failure_group=group,
        outcome=Outcome.FAILED,
    )
    record_group_transition([group], GroupTransitionKind.OPENED)
    assert raise_pending() == 1
