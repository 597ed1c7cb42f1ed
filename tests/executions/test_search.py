"""Free-text search (executions/search.py): what it finds, on the page and the API alike, that it
stays inside the visible accounts, and that PostgreSQL can answer it from the trigram indexes."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.urls import reverse

from connections.models import AwsAccount
from executions.models import Execution, HttpAttempt
from executions.search import attempt_text_q, search_attempts, search_executions
from tests.factories import ExecutionFactory, HttpAttemptFactory, StateMachineFactory
from tests.test_access_matrix import api_client

pytestmark = pytest.mark.django_db
LIST = reverse("executions:list")


def attempt_ids(response: Any) -> list[int]:
    return sorted(r.pk for r in response.context["page"].rows)


def execution_ids(response: Any) -> list[int]:
    return sorted(r.execution.pk for r in response.context["page"].rows)


@pytest.fixture
def target(account: AwsAccount) -> HttpAttempt:
    machine = StateMachineFactory.create(account=account, name="orders")
    execution = ExecutionFactory.create(state_machine=machine, name="nightly-close-7f3a")
    return HttpAttemptFactory.create(
        execution=execution,
        error="States.Http.StatusCode.418",
        cause="teapot refused the brew",
        url="https://partner.example/v2/kettles/boil",
        response_body='{"reason": "quota-exhausted-kx9"}',
    )


@pytest.fixture
def noise(account: AwsAccount) -> list[HttpAttempt]:
    return [HttpAttemptFactory.create(execution__state_machine__account=account) for _ in range(3)]


@pytest.mark.parametrize(
    "text",
    [
        "StatusCode.418",  # error
        "TEAPOT REFUSED",  # cause, any case
        "/v2/kettles/",  # URL
        "quota-exhausted",  # response text
        "nightly-close",  # execution name
        ":execution:orders:nightly",  # execution ARN
    ],
)
def test_search_finds_the_attempt_by_any_of_its_texts(
    viewer_client: Client, target: HttpAttempt, noise: list[HttpAttempt], text: str
) -> None:
    response = viewer_client.get(LIST, {"view": "attempts", "q": text})
    assert response.status_code == 200
    assert attempt_ids(response) == [target.pk]


def test_search_by_an_execution_name_finds_the_execution(
    viewer_client: Client, target: HttpAttempt, noise: list[HttpAttempt]
) -> None:
    response = viewer_client.get(LIST, {"q": "nightly-close-7f3a"})
    assert execution_ids(response) == [target.execution_id]
    assert response.context["total"].value == 1
    assert "nightly-close-7f3a" in response.content.decode()


def test_search_by_response_text_lists_its_execution(
    viewer_client: Client, target: HttpAttempt, noise: list[HttpAttempt]
) -> None:
    assert execution_ids(viewer_client.get(LIST, {"q": "exhausted-kx9"})) == [target.execution_id]


def test_like_wildcards_in_the_text_are_taken_literally(
    viewer_client: Client, target: HttpAttempt, noise: list[HttpAttempt]
) -> None:
    assert attempt_ids(viewer_client.get(LIST, {"view": "attempts", "q": "%%%"})) == []
    assert attempt_ids(viewer_client.get(LIST, {"view": "attempts", "q": "___"})) == []


def test_a_hidden_accounts_execution_is_not_found_by_name(
    viewer_client: Client, other_account: AwsAccount
) -> None:
    hidden = ExecutionFactory.create(
        state_machine__account=other_account, name="secret-migration-run"
    )
    HttpAttemptFactory.create(execution=hidden, cause="secret-migration-run failed")
    assert execution_ids(viewer_client.get(LIST, {"q": "secret-migration"})) == []
    assert attempt_ids(viewer_client.get(LIST, {"view": "attempts", "q": "secret-migr"})) == []


@pytest.mark.parametrize("text", ["ab", "x" * 201])
def test_a_search_too_short_or_too_long_is_a_400(viewer_client: Client, text: str) -> None:
    response = viewer_client.get(LIST, {"q": text})
    assert response.status_code == 400


def test_the_api_searches_as_the_page_does(
    viewer: User, target: HttpAttempt, noise: list[HttpAttempt]
) -> None:
    api = api_client(viewer)
    for text in ("nightly-close", "kettles/boil", "teapot"):
        executions = api.get(reverse("api:executions"), {"q": text}).json()["results"]
        attempts = api.get(reverse("api:attempts"), {"q": text}).json()["results"]
        assert [e["id"] for e in executions] == [target.execution_id], text
        assert [a["id"] for a in attempts] == [target.pk], text
    assert api.get(reverse("api:executions"), {"q": "ab"}).status_code == 400


def _copies(attempt: HttpAttempt, n: int) -> None:
    """`n` more failing attempts (of another execution, with other texts), then ANALYZE: enough
    rows that the planner weighs the indexes as it would on a real table."""
    other = ExecutionFactory.create(state_machine=attempt.execution.state_machine)
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO executions_httpattempt SELECT (jsonb_populate_record(a, to_jsonb(a)"
            " || jsonb_build_object('id', a.id + 1000000 + g, 'key_event_id', g,"
            " 'execution_id', %s, 'url', 'https://other.example/' || md5(g::text),"
            " 'cause', md5((g * 7)::text), 'response_body', md5((g * 3)::text)))).*"
            " FROM executions_httpattempt a, generate_series(1, %s) g WHERE a.id = %s",
            [other.pk, n, attempt.pk],
        )
        cursor.execute("ANALYZE executions_httpattempt")
        # VACUUM would move the new rows from the GIN pending list into the index proper; it
        # cannot run in the test's transaction, this can.
        cursor.execute("SELECT gin_clean_pending_list('att_fail_text')")


def _plan(qs: Any) -> str:
    with connection.cursor() as cursor:
        # Whether an index *can* answer the query: with UPPER(col) LIKE, as icontains gives,
        # none can, and the plan keeps a scan of every failing attempt.
        cursor.execute("SET LOCAL enable_seqscan = off")
        return str(qs.explain())


def test_the_attempt_text_search_is_answered_from_the_trigram_index(
    account: AwsAccount, target: HttpAttempt
) -> None:
    _copies(target, 2000)
    qs = HttpAttempt.objects.failing().filter(attempt_text_q("kettles"))
    plan = _plan(qs)
    assert "Bitmap Index Scan on att_fail_text" in plan, plan
    assert list(qs.values_list("pk", flat=True)) == [target.pk]


def test_the_searches_compile_to_indexable_sql(account: AwsAccount) -> None:
    # ILIKE on the bare column (the trigram indexes' operator) and = ANY(ARRAY(subquery)),
    # which PostgreSQL can OR with them; `IN (subquery)` inside an OR cannot be.
    attempts = str(search_attempts(HttpAttempt.objects.all(), "kettles", [account.pk]).query)
    executions = str(
        search_executions(Execution.objects.all(), "kettles", HttpAttempt.objects.all()).query
    )
    for sql in (attempts, executions):
        assert "UPPER(" not in sql and "ILIKE" in sql and "= ANY(ARRAY(SELECT" in sql, sql


def test_a_search_counts_exactly_only_up_to_its_own_limit(
    viewer_client: Client, account: AwsAccount, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("executions.views.SEARCH_EXACT_COUNT_LIMIT", 2)
    for _ in range(4):
        HttpAttemptFactory.create(execution__state_machine__account=account, cause="Bad Gateway")
    searched = viewer_client.get(LIST, {"view": "attempts", "q": "gateway"}).context["total"]
    plain = viewer_client.get(LIST, {"view": "attempts"}).context["total"]
    assert searched.estimated and searched.value >= 3
    assert not plain.estimated and plain.value == 4
