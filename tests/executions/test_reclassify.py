"""`manage.py reclassify` re-runs stored attempts through the current rules and regroups them."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from executions.classify import RULES_VERSION
from executions.models import FailureGroup, HttpAttempt
from tests.factories import EndpointFactory, HttpAttemptFactory

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
