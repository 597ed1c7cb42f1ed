"""A failure group a reclassification leaves with no attempt goes, unless a record names it.

`executions.grouping.drop_empty_open` is the one rule (reclassify passes, retention, a history
replacing a log): an open group that no attempt is in shows nothing, so it leaves the groups
page, the overview and the API; a resolved or ignored one (a triage decision) stays, and so
does one a redrive batch (its audit) or an alert names.
"""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from connections.models import AwsAccount
from executions.choices import GroupStatus
from executions.models import FailureGroup, HttpAttempt
from operations.models import RedriveBatch
from tests.factories import (
    ExecutionFactory,
    FailureGroupFactory,
    HttpAttemptFactory,
    StateMachineFactory,
)

pytestmark = pytest.mark.django_db


def _stored_unknown_429(account: AwsAccount, title: str) -> tuple[HttpAttempt, FailureGroup]:
    """A 429 stored by rules that did not know it (unknown), alone in its group."""
    group = FailureGroupFactory.create(
        account=account,
        category="unknown",
        status_code=429,
        error="States.Http.StatusCode.429",
        title=title,
    )
    machine = StateMachineFactory.create(account=account)
    stale = HttpAttemptFactory.create(
        execution=ExecutionFactory.create(state_machine=machine, has_failed_attempt=True),
        status_code=429,
        error="States.Http.StatusCode.429",
        cause="Too Many Requests",
        category="unknown",
        subcategory="",
        classifier_version="2000.1",
        failure_group=group,
    )
    return stale, group


def _shown(client: Client, title: str, group: FailureGroup) -> tuple[bool, bool, bool]:
    """Whether the groups page, the overview (its open groups) and the API show the group."""
    page = client.get(reverse("executions:groups"), {"status": "all"})
    overview = client.get(reverse("dashboard:overview"))
    api = client.get(reverse("api:groups"), {"status": "all"})
    assert page.status_code == overview.status_code == api.status_code == 200
    in_api = group.pk in {g["id"] for g in api.json()["results"]}
    return title in page.content.decode(), title in overview.content.decode(), in_api


def test_a_group_a_reclassification_empties_leaves_the_groups_page_and_the_api(
    account: AwsAccount, viewer_client: Client
) -> None:
    stale, group = _stored_unknown_429(account, "Stale unknown 429 group")
    assert _shown(viewer_client, "Stale unknown 429 group", group) == (True, True, True)
    call_command("reclassify")
    stale.refresh_from_db()
    assert stale.category == "rate_limited" and stale.failure_group_id != group.pk
    assert not FailureGroup.objects.filter(pk=group.pk).exists()
    assert _shown(viewer_client, "Stale unknown 429 group", group) == (False, False, False)
    assert stale.failure_group is not None and stale.failure_group.count == 1


def test_an_emptied_group_a_redrive_batch_names_stays_for_its_audit(
    account: AwsAccount, viewer_client: Client
) -> None:
    _, group = _stored_unknown_429(account, "Redriven unknown 429 group")
    batch = RedriveBatch.objects.create(account=account, username="ops", group=group)
    call_command("reclassify")
    group.refresh_from_db()
    assert (group.status, group.count) == (GroupStatus.OPEN, 0)
    batch.refresh_from_db()
    assert batch.group_id == group.pk


@pytest.mark.parametrize("status", [GroupStatus.RESOLVED, GroupStatus.IGNORED])
def test_an_emptied_group_someone_triaged_stays(account: AwsAccount, status: str) -> None:
    _, group = _stored_unknown_429(account, "Triaged unknown 429 group")
    FailureGroup.objects.filter(pk=group.pk).update(status=status)
    call_command("reclassify")
    group.refresh_from_db()
    assert (group.status, group.count) == (status, 0)
