"""Failing-attempts list (filters, keyset pages, CSV), execution detail, failure groups."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from connections.models import AwsAccount
from executions.choices import Category, GroupStatus, Outcome, StateMachineType
from executions.execution_list import EXACT_COUNT_LIMIT
from executions.forms import Cursor
from executions.models import FailureGroup, HttpAttempt
from executions.redaction import Redactor
from tests.factories import (
    ConnectionFactory,
    EndpointFactory,
    ExecutionFactory,
    FailureGroupFactory,
    HttpAttemptFactory,
    StateMachineFactory,
)

pytestmark = pytest.mark.django_db
LIST = reverse("executions:list")
# The attempt view; executions are the default (tests/executions/test_execution_list.py).
ATTEMPTS: Any = {"view": "attempts"}
EXPORT = reverse("executions:export")
XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def rows(response: Any) -> list[int]:
    """Attempt ids in the order the list shows them."""
    return [r.pk for r in response.context["page"].rows]


def streamed(response: Any) -> str:
    return b"".join(response.streaming_content).decode()


def failures(account: AwsAccount, n: int, **kwargs: Any) -> list[HttpAttempt]:
    machine = kwargs.pop("state_machine", None) or StateMachineFactory.create(account=account)
    now = timezone.now()
    fixed_time = kwargs.pop("occurred_at", None)
    made = []
    for i in range(n):
        execution = ExecutionFactory.create(state_machine=machine)
        when = fixed_time or now - timedelta(minutes=i + 1)
        made.append(HttpAttemptFactory.create(execution=execution, occurred_at=when, **kwargs))
    return made


# --- List: scope and filters ------------------------------------------------------------------


def test_list_shows_only_failures_in_visible_accounts(
    viewer_client: Client, account: AwsAccount, other_account: AwsAccount
) -> None:
    mine = failures(account, 2)
    failures(other_account, 2)
    HttpAttemptFactory.create(
        execution=ExecutionFactory.create(
            account=account, state_machine=mine[0].execution.state_machine
        ),
        succeeded=True,
    )
    response = viewer_client.get(LIST, ATTEMPTS)
    assert response.status_code == 200
    assert rows(response) == [a.pk for a in mine]


def test_filter_by_connection_arn_is_an_exact_match(
    viewer_client: Client, account: AwsAccount
) -> None:
    conn = ConnectionFactory.create(account=account, name="stripe")
    other = ConnectionFactory.create(account=account, name="stripe-2")
    wanted = failures(account, 3, connection=conn)
    failures(account, 2, connection=other)
    response = viewer_client.get(LIST, {**ATTEMPTS, "connection": conn.arn})
    assert rows(response) == [a.pk for a in wanted]
    prefix = conn.arn[:-4]
    assert rows(viewer_client.get(LIST, {**ATTEMPTS, "connection": prefix})) == []


def test_connection_picker_lists_known_arns(viewer_client: Client, account: AwsAccount) -> None:
    conn = ConnectionFactory.create(account=account)
    html = viewer_client.get(LIST, ATTEMPTS).content.decode()
    assert 'list="connection-arns"' in html
    assert f'<option value="{conn.arn}">' in html


@pytest.mark.parametrize(
    ("status", "expected"),
    [("503", {503}), ("4xx", {400, 429}), ("5xx", {503, 500}), ("none", {None})],
)
def test_filter_by_status_code_or_class(
    viewer_client: Client, account: AwsAccount, status: str, expected: set[int | None]
) -> None:
    for code in (400, 429, 500, 503, None):
        failures(account, 1, status_code=code)
    response = viewer_client.get(LIST, {**ATTEMPTS, "status": status})
    assert {r.status_code for r in response.context["page"].rows} == expected


def test_filter_by_category_endpoint_machine_region_and_account(
    viewer_client: Client, account: AwsAccount
) -> None:
    endpoint = EndpointFactory.create(account=account)
    machine = StateMachineFactory.create(account=account, region="us-east-1")
    target = failures(account, 1, category=Category.AUTH, endpoint=endpoint, state_machine=machine)
    failures(account, 2, category=Category.TIMEOUT)
    ids = [a.pk for a in target]
    assert rows(viewer_client.get(LIST, {**ATTEMPTS, "category": "auth"})) == ids
    assert rows(viewer_client.get(LIST, {**ATTEMPTS, "endpoint": endpoint.pk})) == ids
    assert rows(viewer_client.get(LIST, {**ATTEMPTS, "state_machine": machine.pk})) == ids
    assert rows(viewer_client.get(LIST, {**ATTEMPTS, "region": "us-east-1"})) == ids
    assert len(rows(viewer_client.get(LIST, {**ATTEMPTS, "account": account.pk}))) == 3


def test_filter_by_time_range_and_text(viewer_client: Client, account: AwsAccount) -> None:
    now = timezone.now()
    old = failures(account, 1, occurred_at=now - timedelta(days=3), cause="upstream reset by peer")
    new = failures(account, 1, occurred_at=now - timedelta(hours=1), error="States.Http.Socket")
    since = (now - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    assert rows(viewer_client.get(LIST, {**ATTEMPTS, "since": since})) == [new[0].pk]
    assert rows(viewer_client.get(LIST, {**ATTEMPTS, "until": since})) == [old[0].pk]
    assert rows(viewer_client.get(LIST, {**ATTEMPTS, "q": "RESET BY"})) == [old[0].pk]
    assert rows(viewer_client.get(LIST, {**ATTEMPTS, "q": "http.socket"})) == [new[0].pk]


def test_a_hidden_accounts_ids_in_filters_match_nothing(
    viewer_client: Client, account: AwsAccount, other_account: AwsAccount
) -> None:
    hidden = failures(other_account, 1, endpoint=EndpointFactory.create(account=other_account))
    response = viewer_client.get(LIST, {**ATTEMPTS, "endpoint": str(hidden[0].endpoint_id)})
    assert response.status_code == 200
    assert rows(response) == []
    assert rows(viewer_client.get(LIST, {**ATTEMPTS, "account": other_account.pk})) == []


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({"connection": "stripe"}, "connection", "Not an EventBridge connection ARN"),
        ({"status": "6xx"}, "status", "Use a status code"),
        ({"status": "50"}, "status", "Use a status code"),
        ({"category": "nope"}, "category", "Select a valid choice"),
        ({"endpoint": "abc"}, "endpoint", "Enter a whole number"),
        ({"state_machine": "-1"}, "state_machine", "greater than or equal to 1"),
        ({"region": "moon-1"}, "region", "Not an AWS region name"),
        ({"since": "yesterday"}, "since", "Enter a valid date/time"),
        ({"since": "2025-01-02T00:00", "until": "2025-01-01T00:00"}, "until", "must be after"),
        ({"sort": "password"}, "sort", "Select a valid choice"),
        ({"after": "1;DROP TABLE"}, "after", "Malformed page cursor"),
        ({"q": "x" * 201}, "q", "at most 200 characters"),
    ],
)
def test_invalid_filters_answer_400_saying_what_is_wrong(
    viewer_client: Client, params: dict[str, str], field: str, message: str
) -> None:
    response = viewer_client.get(LIST, {**ATTEMPTS, **params})
    assert response.status_code == 400
    html = response.content.decode()
    assert f"<code>{field}</code>" in html
    assert message in html


def test_invalid_filter_over_htmx_returns_the_error_fragment(viewer_client: Client) -> None:
    response = viewer_client.get(LIST, {**ATTEMPTS, "status": "abc"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 400
    html = response.content.decode()
    assert 'id="results"' in html
    assert "<html" not in html


def test_htmx_request_gets_only_the_results_fragment(
    viewer_client: Client, account: AwsAccount
) -> None:
    failures(account, 1)
    response = viewer_client.get(LIST, ATTEMPTS, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="results">')
    assert "HX-Request" in response["Vary"]


def test_htmx_filtering_pushes_a_short_shareable_url(viewer_client: Client) -> None:
    response = viewer_client.get(
        LIST, {"category": "auth", "status": "", "connection": "", "q": ""}, HTTP_HX_REQUEST="true"
    )
    assert response["HX-Push-Url"] == f"{LIST}?category=auth"
    empty = viewer_client.get(LIST, {"status": ""}, HTTP_HX_REQUEST="true")
    assert empty["HX-Push-Url"] == LIST
    attempts = viewer_client.get(LIST, {**ATTEMPTS, "status": ""}, HTTP_HX_REQUEST="true")
    assert attempts["HX-Push-Url"] == f"{LIST}?view=attempts"


# --- List: keyset pagination and sorting ------------------------------------------------------


def test_keyset_pages_cover_every_row_once(viewer_client: Client, account: AwsAccount) -> None:
    made = failures(account, 120)
    seen: list[int] = []
    query: dict[str, str] = {}
    for _ in range(5):
        response = viewer_client.get(LIST, {**ATTEMPTS, **query})
        page = response.context["page"]
        seen += [r.pk for r in page.rows]
        if not page.next_query:
            break
        query = dict(part.split("=", 1) for part in page.next_query.split("&"))
    assert seen == [a.pk for a in made]  # newest first, no gap, no repeat


def test_later_pages_use_no_offset_and_no_count(viewer_client: Client, account: AwsAccount) -> None:
    failures(account, 60)
    page = viewer_client.get(LIST, ATTEMPTS).context["page"]
    with CaptureQueriesContext(connection) as queries:
        viewer_client.get(f"{LIST}?{page.next_query}")
    sql = " ".join(q["sql"] for q in queries.captured_queries).upper()
    assert "OFFSET" not in sql
    # The one count (the total) reads at most EXACT_COUNT_LIMIT + 1 rows, never the table.
    counts = [q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"].upper()]
    assert len(counts) == 1 and counts[0].endswith(f"LIMIT {EXACT_COUNT_LIMIT + 1}) subquery")


def test_rows_with_the_same_timestamp_are_split_by_id(
    viewer_client: Client, account: AwsAccount
) -> None:
    moment = timezone.now() - timedelta(minutes=5)
    made = failures(account, 60, occurred_at=moment)
    first = viewer_client.get(LIST, ATTEMPTS).context["page"]
    cursor = Cursor.decode(first.next_query.split("after=")[1])
    assert cursor is not None and cursor.id == first.rows[-1].pk
    second = viewer_client.get(LIST, {**ATTEMPTS, "after": cursor.encode()}).context["page"]
    assert [r.pk for r in first.rows + second.rows] == sorted((a.pk for a in made), reverse=True)


@pytest.mark.parametrize("sort", ["occurred_at", "-duration", "duration"])
def test_other_sorts_page_consistently(
    viewer_client: Client, account: AwsAccount, sort: str
) -> None:
    for i, attempt in enumerate(failures(account, 70)):
        attempt.duration_ms = None if i % 10 == 0 else (i * 37) % 500
        attempt.save()
    first = viewer_client.get(LIST, {**ATTEMPTS, "sort": sort}).context["page"]
    params = dict(part.split("=", 1) for part in first.next_query.split("&"))
    second = viewer_client.get(LIST, {**ATTEMPTS, **params}).context["page"]
    got = first.rows + second.rows
    assert len({r.pk for r in got}) == 70
    if sort == "occurred_at":
        assert [r.occurred_at for r in got] == sorted(r.occurred_at for r in got)
    else:
        values = [r.duration_ms if r.duration_ms is not None else -1 for r in got]
        assert values == sorted(values, reverse=sort.startswith("-"))


@pytest.mark.parametrize("n", [3, 60])
def test_list_runs_a_fixed_number_of_queries(
    viewer_client: Client, account: AwsAccount, django_assert_num_queries: Any, n: int
) -> None:
    conn = ConnectionFactory.create(account=account)
    failures(account, n, connection=conn, endpoint=EndpointFactory.create(account=account))
    # session, user, accounts, state machines, endpoints, connections, page ids, page rows,
    # the planner's estimate and the (capped) exact total, and the user's own and group
    # permissions (whether to offer "Redrive these…")
    with django_assert_num_queries(12):
        viewer_client.get(LIST, {**ATTEMPTS, "connection": conn.arn, "category": "server_error"})


@pytest.mark.parametrize("n", [3, 60])
def test_list_over_several_accounts_runs_the_same_queries(
    viewer_client: Client,
    account: AwsAccount,
    viewers: Any,
    django_assert_num_queries: Any,
    n: int,
) -> None:
    from tests.factories import AwsAccountFactory

    second = AwsAccountFactory.create(groups=[viewers])
    failures(account, n)
    failures(second, n)
    with django_assert_num_queries(12):  # as above: 8, the estimate, the total, permissions
        response = viewer_client.get(LIST, ATTEMPTS)
    assert len(rows(response)) == min(2 * n, 50)


def test_list_over_several_accounts_merges_them_in_time_order(
    viewer_client: Client, account: AwsAccount, viewers: Any
) -> None:
    from tests.factories import AwsAccountFactory

    second = AwsAccountFactory.create(groups=[viewers])
    now = timezone.now()
    made = []
    for i in range(70):
        owner = account if i % 3 else second
        made += failures(owner, 1, occurred_at=now - timedelta(seconds=i))
    first = viewer_client.get(LIST, ATTEMPTS).context["page"]
    params = dict(part.split("=", 1) for part in first.next_query.split("&"))
    rest = viewer_client.get(LIST, {**ATTEMPTS, **params}).context["page"]
    assert [r.pk for r in first.rows + rest.rows] == [a.pk for a in made]


# --- CSV export -------------------------------------------------------------------------------


def test_csv_export_streams_the_filtered_rows(viewer_client: Client, account: AwsAccount) -> None:
    conn = ConnectionFactory.create(account=account)
    wanted = failures(account, 3, connection=conn)
    failures(account, 2)
    response = viewer_client.get(EXPORT, {"connection": conn.arn})
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "text/csv"
    assert "attachment" in response["Content-Disposition"]
    table = list(csv.reader(io.StringIO(streamed(response))))
    assert table[0][0] == "occurred_at"
    assert len(table) == 1 + len(wanted)
    arn = table[0].index("connection_arn")
    assert {row[arn] for row in table[1:]} == {conn.arn}
    assert table[1][-1].endswith(f"/executions/{wanted[0].execution_id}/")


def test_csv_cells_cannot_become_spreadsheet_formulas(
    viewer_client: Client, account: AwsAccount
) -> None:
    failures(account, 1, cause='=HYPERLINK("http://evil.example","x")', error="@SUM(1)")
    response = viewer_client.get(EXPORT)
    row = list(csv.reader(io.StringIO(streamed(response))))[1]
    assert row[14] == "'@SUM(1)"
    assert row[15].startswith("'=HYPERLINK")


def test_csv_export_rejects_invalid_filters(viewer_client: Client) -> None:
    assert viewer_client.get(EXPORT, {"status": "teapot"}).status_code == 400


# --- Execution detail -------------------------------------------------------------------------


def test_detail_shows_attempts_with_category_hint_and_evidence(
    viewer_client: Client, account: AwsAccount
) -> None:
    attempt = failures(account, 1, category=Category.AUTH, hint="Rotate the API key.")[0]
    response = viewer_client.get(reverse("executions:detail", args=[attempt.execution_id]))
    html = response.content.decode()
    assert response.status_code == 200
    assert 'data-category="auth"' in html
    assert "Authentication" in html
    assert "Rotate the API key." in html
    assert "status-5xx" in html  # evidence
    assert f'id="attempt-{attempt.pk}"' in html


def test_detail_shows_an_aborted_call_as_aborted_with_its_hint_not_as_a_failure(
    viewer_client: Client, account: AwsAccount
) -> None:
    (attempt,) = failures(
        account,
        1,
        outcome=Outcome.ABORTED,
        status_code=None,
        error="Ops.Cancelled",
        cause="by ops",
        category="",
        subcategory="aborted",
        closed_event_type="ExecutionAborted",
        evidence={"aborted_by": "StopExecution"},
        hint="the execution was stopped (StopExecution with error 'Ops.Cancelled')",
    )
    html = viewer_client.get(
        reverse("executions:detail", args=[attempt.execution_id])
    ).content.decode()
    assert '<span class="outcome aborted">Aborted</span>' in html
    assert "data-category=" not in html  # no failure category badge
    assert "StopExecution with error" in html and "Evidence for “Aborted”" in html
    assert 'class="attempt card failed"' not in html


def test_detail_pretty_prints_json_and_collapses_long_bodies(
    viewer_client: Client, account: AwsAccount
) -> None:
    long_body = '{"items": [' + ",".join(f'{{"n": {i}}}' for i in range(200)) + "]}"
    attempt = failures(account, 1, response_body=long_body, request_body={"a": {"b": 1}})[0]
    html = viewer_client.get(
        reverse("executions:detail", args=[attempt.execution_id])
    ).content.decode()
    assert "&quot;a&quot;: {\n    &quot;b&quot;: 1\n  }" in html
    assert "<details><summary>Body (" in html


def test_detail_diffs_against_the_last_success_to_the_same_endpoint(
    viewer_client: Client, account: AwsAccount
) -> None:
    endpoint = EndpointFactory.create(account=account)
    now = timezone.now()
    machine = StateMachineFactory.create(account=account)
    HttpAttemptFactory.create(
        execution=ExecutionFactory.create(state_machine=machine),
        succeeded=True,
        endpoint=endpoint,
        occurred_at=now - timedelta(hours=2),
        request_headers={"content-type": "application/json", "Idempotency-Key": "k1"},
        request_query="page=1&limit=5",
        request_body={"order": {"id": 1, "currency": "EUR"}},
    )
    failed = HttpAttemptFactory.create(
        execution=ExecutionFactory.create(state_machine=machine),
        endpoint=endpoint,
        occurred_at=now - timedelta(hours=1),
        request_headers={"content-type": "text/plain"},
        request_query={"limit": "10"},
        request_body={"order": {"id": "1"}, "debug": True},
    )
    response = viewer_client.get(reverse("executions:detail", args=[failed.execution_id]))
    diff = {(d.part, d.key, d.change) for d in response.context["attempts"][0].diff}
    assert ("Header", "idempotency-key", "missing") in diff
    assert ("Header", "content-type", "changed") in diff
    assert ("Query", "page", "missing") in diff
    assert ("Query", "limit", "changed") in diff
    assert ("Body", "order.currency", "missing") in diff
    assert ("Body", "order.id", "changed") in diff  # int vs str
    assert ("Body", "debug", "added") in diff
    assert "missing here" in response.content.decode()


def test_detail_says_when_there_is_no_earlier_success(
    viewer_client: Client, account: AwsAccount
) -> None:
    attempt = failures(account, 1, endpoint=EndpointFactory.create(account=account))[0]
    html = viewer_client.get(
        reverse("executions:detail", args=[attempt.execution_id])
    ).content.decode()
    assert "No earlier successful call to this endpoint is stored." in html


def test_detail_links_to_the_aws_console(viewer_client: Client, account: AwsAccount) -> None:
    attempt = failures(account, 1)[0]
    execution = attempt.execution
    html = viewer_client.get(reverse("executions:detail", args=[execution.pk])).content.decode()
    assert (
        f"https://console.aws.amazon.com/states/home?region=eu-west-1#/v2/executions/details/{execution.arn}"
        in html
    )
    assert 'rel="noopener noreferrer"' in html


def test_detail_renders_the_event_timeline_collapsed(
    viewer_client: Client, account: AwsAccount
) -> None:
    attempt = failures(account, 1)[0]
    response = viewer_client.get(reverse("executions:detail", args=[attempt.execution_id]))
    types = [e.type for e in response.context["events"]]
    assert types == [
        "ExecutionStarted",
        "TaskStateEntered",
        "TaskScheduled",
        "TaskFailed",
        "ExecutionFailed",
    ]
    assert '<details class="timeline card" id="timeline">' in response.content.decode()


def test_detail_of_express_execution_links_to_express_console(
    viewer_client: Client, account: AwsAccount
) -> None:
    machine = StateMachineFactory.create(account=account, type=StateMachineType.EXPRESS)
    attempt = failures(account, 1, state_machine=machine)[0]
    html = viewer_client.get(
        reverse("executions:detail", args=[attempt.execution_id])
    ).content.decode()
    assert "#/express-executions/details/" in html
    assert "Express executions cannot be redriven." in html


def test_untrusted_text_is_escaped_everywhere_on_the_detail_page(
    viewer_client: Client, account: AwsAccount
) -> None:
    machine = StateMachineFactory.create(account=account, name="m")
    execution = ExecutionFactory.create(
        state_machine=machine, name="run", cause=XSS, error=XSS[:200]
    )
    HttpAttemptFactory.create(
        execution=execution,
        state_name=XSS[:80],
        url=f"https://x.example/{XSS}",
        request_headers={XSS: XSS},
        response_body=XSS,
        cause=XSS,
        hint=XSS,
        evidence={XSS: XSS},
    )
    html = viewer_client.get(reverse("executions:detail", args=[execution.pk])).content.decode()
    assert "<script>alert" not in html
    assert "<img src=x" not in html
    assert "&lt;script&gt;alert" in html


def test_detail_applies_redaction_patterns_added_after_storage(
    viewer_client: Client, account: AwsAccount, settings: Any
) -> None:
    canary = "PARTNER-CANARY-93c1f0"
    attempt = failures(
        account,
        1,
        url=f"https://api.example.com/v1/x?ref={canary}",
        request_headers={"x-partner-ref": canary},
        request_body={"note": f"ref {canary}"},
        response_body=f'{{"echo": "{canary}"}}',
        cause=f"rejected {canary}",
    )[0]
    url = reverse("executions:detail", args=[attempt.execution_id])
    assert canary in viewer_client.get(url).content.decode()
    settings.STEPSCOPE = {**settings.STEPSCOPE, "REDACT_VALUE_PATTERNS": [r"PARTNER-CANARY-\w+"]}
    html = viewer_client.get(url).content.decode()
    assert canary not in html
    assert "[redacted:" in html


def test_detail_of_another_accounts_execution_is_404(
    viewer_client: Client, other_account: AwsAccount
) -> None:
    attempt = failures(other_account, 1)[0]
    assert (
        viewer_client.get(reverse("executions:detail", args=[attempt.execution_id])).status_code
        == 404
    )


@pytest.mark.parametrize("n", [1, 12])
def test_detail_runs_a_fixed_number_of_queries(
    viewer_client: Client, account: AwsAccount, django_assert_num_queries: Any, n: int
) -> None:
    endpoint = EndpointFactory.create(account=account)
    machine = StateMachineFactory.create(account=account)
    HttpAttemptFactory.create(
        execution=ExecutionFactory.create(state_machine=machine),
        succeeded=True,
        endpoint=endpoint,
        occurred_at=timezone.now() - timedelta(days=1),
    )
    execution = ExecutionFactory.create(state_machine=machine)
    for i in range(n):
        HttpAttemptFactory.create(execution=execution, attempt_number=i + 1, endpoint=endpoint)
    # session, user, execution, attempts (+ baseline ids), baselines, assigned variables, the
    # Map Runs it started (none), and the user's own and group permissions ("Redrive…")
    with django_assert_num_queries(9):
        viewer_client.get(reverse("executions:detail", args=[execution.pk]))


# --- Failure groups ---------------------------------------------------------------------------


def test_group_list_shows_open_groups_with_sparklines(
    viewer_client: Client, account: AwsAccount, other_account: AwsAccount
) -> None:
    group = FailureGroupFactory.create(account=account, title="503 from partner")
    FailureGroupFactory.create(account=account, status=GroupStatus.RESOLVED, title="old one")
    FailureGroupFactory.create(account=other_account, title="not yours")
    failures(account, 3, failure_group=group)
    response = viewer_client.get(reverse("executions:groups"))
    html = response.content.decode()
    assert "503 from partner" in html
    assert "old one" not in html and "not yours" not in html
    assert response.context["rows"][0].spark.total == 3
    assert '<polyline class="spark-line"' in html
    all_html = viewer_client.get(reverse("executions:groups"), {"status": "all"}).content.decode()
    assert "old one" in all_html


def test_group_list_pages_with_a_keyset(viewer_client: Client, account: AwsAccount) -> None:
    now = timezone.now()
    made = [
        FailureGroupFactory.create(account=account, last_seen_at=now - timedelta(minutes=i))
        for i in range(35)
    ]
    first = viewer_client.get(reverse("executions:groups"))
    params = dict(p.split("=", 1) for p in first.context["next_query"].split("&"))
    second = viewer_client.get(reverse("executions:groups"), params)
    got = [r.group.pk for r in first.context["rows"] + second.context["rows"]]
    assert got == [g.pk for g in made]


@pytest.mark.parametrize("n", [2, 25])
def test_group_list_runs_a_fixed_number_of_queries(
    viewer_client: Client, account: AwsAccount, django_assert_num_queries: Any, n: int
) -> None:
    for _ in range(n):
        failures(account, 1, failure_group=FailureGroupFactory.create(account=account))
    # session, user, groups, sparkline counts
    with django_assert_num_queries(4):
        viewer_client.get(reverse("executions:groups"))


def test_group_detail_shows_affected_executions(viewer_client: Client, account: AwsAccount) -> None:
    group = FailureGroupFactory.create(account=account)
    made = failures(account, 4, failure_group=group)
    response = viewer_client.get(reverse("executions:group", args=[group.pk]))
    assert response.status_code == 200
    assert response.context["affected"] == 4
    html = response.content.decode()
    for attempt in made:
        assert reverse("executions:detail", args=[attempt.execution_id]) in html
    assert "Resolve" not in html  # the viewer may not triage


@pytest.mark.parametrize("n", [2, 30])
def test_group_detail_runs_a_fixed_number_of_queries(
    viewer_client: Client, account: AwsAccount, django_assert_num_queries: Any, n: int
) -> None:
    group = FailureGroupFactory.create(
        account=account, connection=ConnectionFactory.create(account=account)
    )
    failures(account, n, failure_group=group, connection=group.connection)
    # session, user, group, recent failures, sparkline, affected count, failures per Map Run,
    # 2 permission lookups
    with django_assert_num_queries(9):
        viewer_client.get(reverse("executions:group", args=[group.pk]))


def test_invalid_connection_state_group_links_to_the_connections_cascade(
    viewer_client: Client, account: AwsAccount, django_assert_num_queries: Any
) -> None:
    conn = ConnectionFactory.create(account=account, name="crm", state="DEAUTHORIZED")
    group = FailureGroupFactory.create(
        account=account,
        connection=conn,
        status_code=None,
        error="Events.ConnectionResource.InvalidConnectionState",
        last_seen_at=timezone.now() - timedelta(days=3),
    )
    # The link costs no query: the group's connection is already loaded.
    with django_assert_num_queries(9):
        response = viewer_client.get(reverse("executions:group", args=[group.pk]))
    html = response.content.decode()
    assert f"{reverse('connections:detail', args=[conn.pk])}?window=7d#cascade" in html
    assert "is de-authorized" in html


def test_other_groups_have_no_cascade_link(viewer_client: Client, account: AwsAccount) -> None:
    conn = ConnectionFactory.create(account=account)
    group = FailureGroupFactory.create(account=account, connection=conn)
    response = viewer_client.get(reverse("executions:group", args=[group.pk]))
    assert response.context["cascade_links"] == []
    assert "#cascade" not in response.content.decode()


def test_group_of_another_account_is_404(viewer_client: Client, other_account: AwsAccount) -> None:
    group = FailureGroupFactory.create(account=other_account)
    assert viewer_client.get(reverse("executions:group", args=[group.pk])).status_code == 404


@pytest.mark.parametrize(
    ("action", "status"),
    [("group_resolve", "resolved"), ("group_ignore", "ignored"), ("group_reopen", "open")],
)
def test_triager_changes_group_status(
    triager_client: Client, account: AwsAccount, action: str, status: str
) -> None:
    group = FailureGroupFactory.create(
        account=account, status=GroupStatus.RESOLVED if status == "open" else GroupStatus.OPEN
    )
    response = triager_client.post(reverse(f"executions:{action}", args=[group.pk]))
    assert response.status_code == 302
    assert response["Location"] == group.get_absolute_url()
    group.refresh_from_db()
    assert group.status == status
    assert group.status_changed_at is not None


def test_group_actions_need_the_permission(viewer_client: Client, account: AwsAccount) -> None:
    group = FailureGroupFactory.create(account=account)
    assert (
        viewer_client.post(reverse("executions:group_resolve", args=[group.pk])).status_code == 403
    )
    assert FailureGroup.objects.get(pk=group.pk).status == GroupStatus.OPEN


def test_group_actions_need_csrf(triager: Any, account: AwsAccount) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(triager)
    group = FailureGroupFactory.create(account=account)
    assert client.post(reverse("executions:group_resolve", args=[group.pk])).status_code == 403
    assert FailureGroup.objects.get(pk=group.pk).status == GroupStatus.OPEN


def test_group_actions_on_hidden_groups_are_404(
    triager_client: Client, other_account: AwsAccount
) -> None:
    group = FailureGroupFactory.create(account=other_account)
    assert (
        triager_client.post(reverse("executions:group_ignore", args=[group.pk])).status_code == 404
    )


def test_group_actions_refuse_get(triager_client: Client, account: AwsAccount) -> None:
    group = FailureGroupFactory.create(account=account)
    assert (
        triager_client.get(reverse("executions:group_resolve", args=[group.pk])).status_code == 405
    )


def test_detail_builds_one_redactor_per_connection_not_per_attempt(
    viewer_client: Client, account: AwsAccount, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = ConnectionFactory.create(account=account, invocation_parameter_names={"secret": ["x-k"]})
    execution = ExecutionFactory.create(state_machine=StateMachineFactory.create(account=account))
    for _ in range(4):
        HttpAttemptFactory.create(
            execution=execution, connection=conn, request_headers={"x-k": "hunter2-9f3"}
        )
    built: list[frozenset[str]] = []
    real = Redactor.with_secret_names

    def counted(self: Redactor, names: Any) -> Redactor:
        built.append(frozenset(names))
        return real(self, names)

    monkeypatch.setattr(Redactor, "with_secret_names", counted)
    html = viewer_client.get(reverse("executions:detail", args=[execution.pk])).content.decode()
    assert "hunter2-9f3" not in html
    assert built == [frozenset({"x-k"})]
