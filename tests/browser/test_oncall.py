"""The on-call pages at a laptop's size (1366×768) in Debian's Chromium: nothing hides behind
a horizontal scroll, the executions page states its total, group titles are words, and j / k /
Enter move through a list from the keyboard (our static/keys.js, under the CSP)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.urls import reverse

from executions.classify import RULES
from tests.conftest import log_in
from tests.factories import UserFactory, build_demo_data

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Rule and subcategory ids (absent_vs_last_success, missing_header.diff…): never in a title.
RULE_IDS = {r.id for r in RULES if "." in r.id or "_" in r.id} | {
    r.subcategory for r in RULES if "_" in r.subcategory
}
OVERFLOW = """() => {
  const root = document.documentElement;
  const wraps = [...document.querySelectorAll('.table-wrap')]
    .filter(w => w.scrollWidth > w.clientWidth)
    .map(w => (w.querySelector('table') || w).className + ' ' + w.scrollWidth + '>' + w.clientWidth);
  return {page: root.scrollWidth - root.clientWidth, wraps};
}"""


def test_on_call_pages_at_1366_by_768(browser: Any, live_server: Any) -> None:
    demo = build_demo_data()
    member = UserFactory.create(username="oncall", groups=[demo.viewers])
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1366, "height": 768})
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    log_in(page, live_server, member)

    urls = {
        "overview": reverse("dashboard:overview"),  # with "what changed" beside the counts
        "executions": reverse("executions:list"),
        "attempts": reverse("executions:list") + "?view=attempts",
        "groups": reverse("executions:groups"),
        "connection": reverse("connections:detail", args=[demo.connection.pk]),
        "endpoint": reverse("connections:endpoint", args=[demo.endpoints[0].pk]),
    }
    for name, url in urls.items():
        assert page.goto(url).status == 200, name
        overflow = page.evaluate(OVERFLOW)
        assert overflow == {"page": 0, "wraps": []}, (name, overflow)

    page.goto(urls["executions"])
    total = page.locator("[data-total]").inner_text()
    failing = len(demo.executions)
    assert re.match(rf"^{failing} failing executions match\.", total), total

    page.goto(urls["groups"])
    titles = page.locator("tbody tr[data-group] td:first-child a").all_inner_texts()
    assert len(titles) == len(demo.groups) and len(set(titles)) == len(titles)
    for title in titles:
        assert "→" in title and not any(i in title for i in RULE_IDS), title

    # j / k / Enter: the second row of the executions list opens its execution.
    page.goto(urls["executions"])
    page.keyboard.press("j")
    page.keyboard.press("j")
    page.keyboard.press("k")
    page.keyboard.press("j")
    selected = page.locator("tbody tr.kbd-current")
    assert selected.count() == 1
    expected = selected.locator("a[data-open]").get_attribute("href")
    assert expected == page.locator("table.executions tbody tr").nth(1).locator(
        "a[data-open]"
    ).get_attribute("href")
    page.keyboard.press("Enter")
    page.wait_for_url(f"**{expected}")
    assert (
        page.get_by_role("link", name=re.compile("Open in the AWS console"))
        .get_attribute("href")
        .startswith("https://")
    )
    assert errors == []  # keys.js ran under the CSP without a violation
    context.close()
