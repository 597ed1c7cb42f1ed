"""The dashboard in a real browser: Debian's Chromium driven by Playwright (`-m browser`).

These prove what only a browser can: that the login flow, HTMX filtering and the SVG charts
work under the Content-Security-Policy (no inline script or style), and that hostile text
from AWS or partners stays text.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.urls import reverse
from django.utils import timezone

from connections.choices import SyncStatus
from executions.models import HttpAttempt
from tests.conftest import log_in
from tests.factories import (
    PASSWORD,
    ConnectionFactory,
    DemoData,
    ExecutionFactory,
    HttpAttemptFactory,
    StateMachineFactory,
    SyncRunFactory,
    UserFactory,
    build_demo_data,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def demo() -> DemoData:
    return build_demo_data()


@pytest.fixture
def member(demo: DemoData) -> User:
    return UserFactory.create(username="member", groups=[demo.viewers])


@pytest.fixture
def member_page(page: Any, live_server: Any, member: User) -> Any:
    log_in(page, live_server, member)
    return page


def test_anonymous_visitors_are_sent_to_the_login_page(page: Any, demo: DemoData) -> None:
    page.goto(reverse("executions:list"))
    assert re.search(r"/login/\?next=/executions/$", page.url)
    assert page.get_by_role("heading", name="Log in to Stepscope").is_visible()


def test_log_in_through_the_form(page: Any, member: User) -> None:
    page.goto("/")
    page.get_by_label("Username").fill("member")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/$"))
    assert page.get_by_role("heading", name="Overview").is_visible()
    assert page.errors == []


def test_filter_by_connection_arn_narrows_the_list(member_page: Any, demo: DemoData) -> None:
    page = member_page
    page.goto(reverse("executions:list") + "?view=attempts")
    all_rows = page.locator("table.attempts tbody tr").count()
    arn = demo.deauthorized.arn
    expected = HttpAttempt.objects.failing().filter(connection_arn=arn).count()
    assert 0 < expected < all_rows
    page.get_by_label("Connection ARN").fill(arn)
    page.get_by_role("button", name="Apply filters").click()
    # HTMX swaps the results in place and pushes the shareable URL.
    page.wait_for_url(re.compile(r"connection=arn"))
    rows = page.locator("table.attempts tbody tr")
    rows.first.wait_for()
    assert rows.count() == expected
    connections = set(page.locator("table.attempts tbody tr td:last-child").all_inner_texts())
    region, account_id = demo.deauthorized.region, demo.account.account_id
    assert connections == {f"{demo.deauthorized.name} ({account_id}, {region})"}
    # The pushed URL is a real page too: reloading shows the same rows.
    page.reload()
    assert page.locator("table.attempts tbody tr").count() == expected
    assert page.errors == []


def test_search_by_an_execution_name_finds_it_and_saves_the_view(
    member_page: Any, demo: DemoData
) -> None:
    page = member_page
    target = demo.failing_execution
    assert target is not None
    page.goto(reverse("executions:list"))
    assert page.locator("table.executions tbody tr").count() > 1
    page.get_by_label("Search").fill(target.name)
    page.get_by_role("button", name="Apply filters").click()
    page.wait_for_url(re.compile(r"q="))
    rows = page.locator("table.executions tbody tr")
    rows.first.wait_for()
    assert rows.count() == 1 and target.name in rows.first.inner_text()
    # The save form carries the search the HTMX swap just applied.
    page.get_by_label("Save this view as").fill("that one run")
    page.get_by_role("button", name="Save", exact=True).click()
    page.wait_for_url(re.compile(r"/executions/views/$"))
    page.get_by_role("link", name="that one run").click()
    page.locator("table.executions tbody tr").first.wait_for()
    assert page.locator("table.executions tbody tr").count() == 1
    assert page.errors == []


def test_invalid_filter_shows_what_is_wrong(member_page: Any, demo: DemoData) -> None:
    page = member_page
    page.goto(reverse("executions:list"))
    page.get_by_label("HTTP status").fill("6xx")
    page.get_by_role("button", name="Apply filters").click()
    alert = page.get_by_role("alert")
    alert.wait_for()
    assert "Use a status code" in alert.inner_text()


def test_open_a_failing_execution_and_see_category_and_hint(
    member_page: Any, demo: DemoData
) -> None:
    page = member_page
    page.goto(reverse("executions:list") + "?view=attempts&category=auth")
    page.locator("table.attempts tbody tr").first.locator("td").nth(1).get_by_role("link").click()
    page.wait_for_url(re.compile(r"/executions/\d+/#attempt-\d+$"))
    attempt = page.locator("article.attempt").first
    assert attempt.locator(".badge.cat").first.inner_text().strip() == "Authentication"
    assert "EventBridge de-authorizes" in attempt.locator(".hint").inner_text()
    # The event timeline is collapsed until asked for.
    timeline = page.locator("details.timeline")
    assert not timeline.locator("table").is_visible()
    timeline.locator("summary").click()
    assert timeline.locator("table").is_visible()
    assert page.errors == []


def test_connection_timeline_draws_bars_for_seeded_failures(
    member_page: Any, demo: DemoData
) -> None:
    page = member_page
    page.goto(reverse("connections:detail", args=[demo.deauthorized.pk]))
    bars = page.locator("svg.bars g.bar")
    assert bars.count() > 0
    drawn = sum(int(t) for t in bars.evaluate_all("gs => gs.map(g => g.dataset.total)"))
    assert (
        drawn == HttpAttempt.objects.failing().filter(connection_arn=demo.deauthorized.arn).count()
    )
    # Segments are painted with the category pattern, and actually have a size on screen.
    box = bars.first.locator("rect").first.bounding_box()
    assert box["height"] > 1 and box["width"] > 1
    assert bars.first.locator("rect").first.get_attribute("fill") == "url(#pat-auth)"
    assert page.locator("svg.bars rect.band").count() == 1  # the de-authorized stretch
    assert "failure" in bars.first.locator("title").text_content()
    assert page.errors == []


def test_sync_page_polls_only_while_a_sync_runs(member_page: Any, demo: DemoData) -> None:
    page = member_page
    run = SyncRunFactory.create(account=demo.account, running=True)
    page.goto(reverse("dashboard:sync_status"))
    assert page.locator("#sync-runs[data-polling]").count() == 1
    with page.expect_request(lambda r: r.headers.get("hx-request") == "true", timeout=5000):
        pass
    run.finished_at = timezone.now()
    run.status = SyncStatus.OK
    run.save()
    page.locator("#sync-runs:not([data-polling])").wait_for(timeout=6000)
    with (
        pytest.raises(Exception, match="Timeout"),
        page.expect_request(lambda r: r.headers.get("hx-request") == "true", timeout=3000),
    ):
        pass
    assert page.errors == []


XSS = '"><img src=x onerror="window.__xss=1;alert(1)"><script>window.__xss=1;alert(2)</script>'


def test_hostile_text_from_aws_and_partners_stays_inert(member_page: Any, demo: DemoData) -> None:
    page = member_page
    conn = ConnectionFactory.create(account=demo.account, name=f"conn{XSS}"[:128], state_reason=XSS)
    machine = StateMachineFactory.create(account=demo.account, name=f"sm{XSS}"[:80])
    execution = ExecutionFactory.create(
        state_machine=machine, name=f"run{XSS}", error=XSS[:250], cause=XSS
    )
    HttpAttemptFactory.create(
        execution=execution,
        state_name=XSS[:80],
        url=f"https://evil.example/{XSS}",
        connection=conn,
        request_headers={XSS: XSS},
        request_body={XSS: XSS},
        response_headers={"x-evil": [XSS]},
        response_body=XSS,
        cause=XSS,
        error=XSS[:250],
        hint=XSS,
        evidence={XSS: XSS},
        occurred_at=timezone.now(),
    )
    for url in (
        reverse("executions:detail", args=[execution.pk]),
        reverse("executions:list"),
        reverse("connections:detail", args=[conn.pk]),
        reverse("connections:list"),
        reverse("dashboard:overview"),
    ):
        page.goto(url)
        assert page.evaluate("window.__xss") is None, url
    assert page.errors == []  # no dialog, no script error, no CSP violation
    page.goto(reverse("executions:detail", args=[execution.pk]))
    assert XSS in page.locator("article.attempt .hint").inner_text()  # shown, as text


def test_every_page_loads_without_console_errors(member_page: Any, demo: DemoData) -> None:
    """CSP violations (inline script/style) are console errors, so this pins the CSP promise."""
    page = member_page
    urls = [
        reverse("dashboard:overview"),
        reverse("dashboard:sync_status"),
        reverse("executions:list"),
        reverse("executions:detail", args=[demo.executions[0].pk]),
        reverse("executions:groups"),
        reverse("executions:group", args=[demo.groups[0].pk]),
        reverse("connections:list"),
        reverse("connections:detail", args=[demo.connection.pk]),
        reverse("connections:endpoint", args=[demo.endpoints[0].pk]),
    ]
    for url in urls:
        response = page.goto(url)
        assert response.status == 200, url
        assert "script-src 'self'" in response.headers["content-security-policy"]
    assert page.errors == []
