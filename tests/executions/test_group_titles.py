"""Failure groups a human reads: titles in words, distinct; sorting; assignee and notes; CSV."""

from __future__ import annotations

import csv
import io
import itertools
from datetime import timedelta
from typing import Any

import pytest
from django.apps import apps
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from connections.models import AwsAccount
from executions.classify import RULES, classify, fingerprint, group_title
from executions.classify.engine import Classification
from executions.history import ParsedAttempt
from executions.ingest import AttemptWriter
from executions.models import FailureGroup
from tests.factories import (
    EndpointFactory,
    ExecutionFactory,
    FailureGroupFactory,
    HttpAttemptFactory,
    StateMachineFactory,
    UserFactory,
)

ARN = "arn:aws:events:eu-west-1:123456789012:connection/orders-api/0b1c2d3e-4f50-6172-8394"
GROUPS = reverse("executions:groups")


def _title(**overrides: Any) -> str:
    fields: dict[str, Any] = {
        "method": "POST",
        "template": "https://api.example.com/v1/orders",
        "status_code": 400,
        "error": "States.Http.StatusCode.400",
        "category": "missing_header",
        "subcategory": "absent_vs_last_success",
        "evidence": {"shape_diff": {"headers": ["X-Request-Id"]}},
        "connection_arn": ARN,
    }
    return group_title(**{**fields, **overrides})


def test_a_title_says_in_words_what_failed_where() -> None:
    assert _title() == (
        "POST api.example.com/v1/orders → 400: header X-Request-Id missing (vs last success)"
        " · via orders-api (123456789012, eu-west-1)"
    )
    assert _title(
        category="missing_parameter",
        evidence={"shape_diff": {"query": ["page"], "body": ["customer.id"]}},
    ).startswith(
        "POST api.example.com/v1/orders → 400: query parameter page and field customer.id"
        " missing (vs last success)"
    )
    timeout = _title(
        status_code=None,
        error="States.Timeout",
        category="timeout",
        subcategory="task_timeout",
        connection_arn="",
        account_name="prod",
    )
    assert timeout == (
        "POST api.example.com/v1/orders → States.Timeout: the task timed out (TimeoutSeconds)"
        " · in prod"
    )


def test_no_rule_yields_a_title_with_a_rule_or_subcategory_id() -> None:
    ids = {rule.id for rule in RULES} | {rule.subcategory for rule in RULES}
    for rule in RULES:
        if rule.category is None:
            continue
        status = rule.statuses[0] if rule.statuses else None
        subcategory = rule.subcategory.replace("{status}", str(status))
        title = _title(category=rule.category, subcategory=subcategory, status_code=status)
        words = title.split(": ", 1)[1]
        assert not any(i in words for i in ids if "_" in i or "." in i), (rule.id, title)
        assert "_" not in words.split(" · via")[0], (rule.id, title)


def test_different_groups_never_share_a_title() -> None:
    """Every fingerprint part shows in the title: distinct fingerprints, distinct titles."""
    other_region = ARN.replace("eu-west-1", "us-east-1")
    other_account = ARN.replace("123456789012", "210987654321")
    classes = {
        (r.category, r.subcategory.replace("{status}", str(r.statuses[0] if r.statuses else 0)))
        for r in RULES
        if r.category
    }
    titles: dict[str, str] = {}
    for arn, method, template, (category, sub), status in itertools.product(
        (ARN, other_region, other_account, ""),
        ("GET", "POST"),
        ("https://a.example/v1/orders", "http://a.example/v1/orders", "https://b.example/x"),
        sorted(classes),
        (None, 400, 503),
    ):
        c = Classification(category, sub, {}, "", "v", "r")
        fp = fingerprint(arn, method, template, c, status, "States.Http.Socket")
        title = _title(
            connection_arn=arn,
            method=method,
            template=template,
            category=category,
            subcategory=sub,
            status_code=status,
            error="States.Http.Socket",
            evidence={},
        )
        assert titles.setdefault(title, fp) == fp, title


pytestmark_db = pytest.mark.django_db


@pytestmark_db
def test_ingest_titles_a_new_group_in_words() -> None:
    machine = StateMachineFactory.create()
    execution = ExecutionFactory.create(state_machine=machine)
    failed = ParsedAttempt(
        state_name="CallOrders",
        attempt_number=1,
        scheduled_event_id=5,
        closed_event_id=7,
        scheduled_at=execution.start_date,
        method="POST",
        url="https://api.example.com/v1/orders",
        connection_arn=ARN,
        status_code=400,
        error="States.Http.StatusCode.400",
        cause='{"message": "Missing required header: X-Request-Id"}',
        outcome="failed",
    )
    assert classify(failed).subcategory == "named_in_response"
    writer = AttemptWriter(machine.account)
    writer.write(execution, [failed])
    writer.flush()
    group = FailureGroup.objects.get()
    assert group.title.startswith(
        "POST api.example.com/v1/orders → 400: header X-Request-Id missing (named in response)"
    ), group.title


@pytestmark_db
def test_the_migration_rewrites_old_titles_from_the_evidence() -> None:
    from importlib import import_module

    migration = import_module("executions.migrations.0005_group_assignee_notes_titles")
    group = FailureGroupFactory.create(
        title="absent_vs_last_success: 400 on POST https://api.example.com/v1/orders",
        connection_arn=ARN,
        endpoint=EndpointFactory.create(url_template="https://api.example.com/v1/orders"),
        category="missing_header",
        subcategory="absent_vs_last_success",
        status_code=400,
    )
    HttpAttemptFactory.create(
        failure_group=group,
        execution__state_machine__account=group.account,
        evidence={"shape_diff": {"headers": ["X-Request-Id"]}},
    )
    migration.retitle_groups(apps, None)
    group.refresh_from_db()
    assert group.title == _title()


# --- The list: sorting, no rule ids -----------------------------------------------------------


def _failing(group: FailureGroup, hours_ago: list[float]) -> None:
    machine = StateMachineFactory.create(account=group.account)
    now = timezone.now()
    for h in hours_ago:
        HttpAttemptFactory.create(
            execution=ExecutionFactory.create(state_machine=machine),
            failure_group=group,
            occurred_at=now - timedelta(hours=h),
        )


@pytestmark_db
def test_groups_sort_by_last_seen_count_or_trend(
    viewer_client: Client, account: AwsAccount
) -> None:
    now = timezone.now()
    old_big = FailureGroupFactory.create(
        account=account, count=50, last_seen_at=now - timedelta(hours=30)
    )
    rising = FailureGroupFactory.create(
        account=account, count=3, last_seen_at=now - timedelta(hours=2)
    )
    newest = FailureGroupFactory.create(account=account, count=1, last_seen_at=now)
    _failing(old_big, [30, 31, 32, 33])  # all in the 24 h before: trend -4
    _failing(rising, [1, 2, 3])  # trend +3
    _failing(newest, [0.1])  # trend +1

    def order(sort: str) -> list[int]:
        response = viewer_client.get(GROUPS, {"sort": sort} if sort else {})
        assert response.status_code == 200
        return [r.group.pk for r in response.context["rows"]]

    assert order("") == [newest.pk, rising.pk, old_big.pk]
    assert order("count") == [old_big.pk, rising.pk, newest.pk]
    assert order("trend") == [rising.pk, newest.pk, old_big.pk]
    html = viewer_client.get(GROUPS, {"sort": "trend"}).content.decode()
    assert "+3" in html
    assert viewer_client.get(GROUPS, {"sort": "nonsense"}).status_code == 400
    assert viewer_client.get(GROUPS, {"sort": "trend", "after": "x_1"}).status_code == 400


@pytestmark_db
def test_count_sort_pages_with_a_keyset(viewer_client: Client, account: AwsAccount) -> None:
    made = [FailureGroupFactory.create(account=account, count=100 - i // 2) for i in range(35)]
    expected = sorted(made, key=lambda g: (-g.count, -g.pk))
    first = viewer_client.get(GROUPS, {"sort": "count"})
    params = dict(p.split("=", 1) for p in first.context["next_query"].split("&"))
    assert params["sort"] == "count"
    second = viewer_client.get(GROUPS, params)
    got = [r.group.pk for r in first.context["rows"] + second.context["rows"]]
    assert got == [g.pk for g in expected]


# --- Assignee and notes -----------------------------------------------------------------------


@pytestmark_db
def test_triager_sets_assignee_and_notes_rendered_safely(
    triager_client: Client, triager: User, viewer: User, account: AwsAccount
) -> None:
    group = FailureGroupFactory.create(account=account)
    notes = (
        "Runbook: https://wiki.example/runbooks/orders?x=1&y=2\n"
        '<script>alert(1)</script> javascript:alert(2) <a href="javascript:alert(3)">x</a>'
    )
    url = reverse("executions:group_notes", args=[group.pk])
    response = triager_client.post(url, {"assignee": viewer.pk, "notes": notes})
    assert response.status_code == 302
    group.refresh_from_db()
    assert (group.assignee_id, group.notes) == (viewer.pk, notes)
    html = triager_client.get(group.get_absolute_url()).content.decode()
    assert '<a href="https://wiki.example/runbooks/orders?x=1&amp;y=2" rel="nofollow">' in html
    assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)" in html
    assert 'href="javascript:' not in html
    assert "viewer" in html
    listed = triager_client.get(GROUPS).content.decode()
    assert "assigned to viewer" in listed and "has notes" in listed


@pytestmark_db
def test_assignee_must_see_the_account_and_notes_need_the_permission(
    triager_client: Client, viewer_client: Client, account: AwsAccount, other_account: AwsAccount
) -> None:
    group = FailureGroupFactory.create(account=account)
    stranger = UserFactory.create(username="stranger")
    url = reverse("executions:group_notes", args=[group.pk])
    assert triager_client.post(url, {"assignee": stranger.pk}).status_code == 400
    assert triager_client.post(url, {"notes": "x" * 10_001}).status_code == 400
    assert viewer_client.post(url, {"notes": "hi"}).status_code == 403
    hidden = FailureGroupFactory.create(account=other_account)
    hidden_url = reverse("executions:group_notes", args=[hidden.pk])
    assert triager_client.post(hidden_url, {"notes": "hi"}).status_code == 404
    group.refresh_from_db()
    assert (group.assignee_id, group.notes) == (None, "")


# --- CSV --------------------------------------------------------------------------------------


@pytestmark_db
def test_csv_export_carries_category_evidence_and_hint(
    viewer_client: Client, account: AwsAccount
) -> None:
    HttpAttemptFactory.create(
        execution__state_machine__account=account,
        evidence={"decided_by": ["status_code"], "api_key": "sk_live_abcdefghijklmnop1234"},
        hint="Retry with backoff.",
    )
    response = viewer_client.get(reverse("executions:export"))
    body = b"".join(response.streaming_content).decode()  # type: ignore[attr-defined]
    header, row = list(csv.reader(io.StringIO(body)))
    cells = dict(zip(header, row, strict=True))
    assert cells["category"] == "server_error"
    assert cells["hint"] == "Retry with backoff."
    assert '"decided_by": ["status_code"]' in cells["evidence"]
    assert "sk_live_abcdefghijklmnop1234" not in cells["evidence"]


@pytestmark_db
@pytest.mark.parametrize("n", [2, 25])
def test_sorted_group_lists_run_a_fixed_number_of_queries(
    viewer_client: Client, account: AwsAccount, django_assert_num_queries: Any, n: int
) -> None:
    for _ in range(n):
        _failing(FailureGroupFactory.create(account=account), [1, 30])
    for sort in ("count", "trend"):
        # session, user, the groups (trend and count as subqueries), sparkline counts
        with django_assert_num_queries(4):
            viewer_client.get(GROUPS, {"sort": sort})
