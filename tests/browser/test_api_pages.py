"""The API's two pages in Chromium: the Swagger docs (from drf-spectacular-sidecar, under our
CSP, nothing fetched from another origin) and the tokens page (a new token is shown once)."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from api.models import ApiToken

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_api_docs_render_from_our_origin_only(viewer_page: Any, live_server: Any) -> None:
    page = viewer_page
    foreign: list[str] = []
    page.on(
        "request",
        lambda r: foreign.append(r.url) if not r.url.startswith(live_server.url) else None,
    )
    page.goto(reverse("api:docs"))
    page.get_by_text("/api/v1/attempts/", exact=True).first.wait_for()
    assert page.get_by_text("Stepscope API").first.is_visible()
    assert foreign == []
    assert page.errors == []


def test_a_token_made_on_the_page_is_shown_once(viewer_page: Any, viewer: User) -> None:
    page = viewer_page
    page.goto(reverse("tokens:list"))
    page.get_by_label("Name").fill("laptop")
    page.get_by_role("button", name="Create token").click()
    shown = page.locator("#new-token").inner_text()
    assert shown.startswith("sts_")
    assert ApiToken.objects.get(user=viewer).name == "laptop"
    page.goto(reverse("tokens:list"))
    assert page.locator("#new-token").count() == 0
    assert page.get_by_role("cell", name="laptop").is_visible()
    page.get_by_role("button", name="Revoke").click()
    assert page.get_by_text("revoked").first.is_visible()
    assert page.errors == []
