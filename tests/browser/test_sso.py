"""Single sign-on in Chromium: the login page's button, the provider and back (`-m browser`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import User

from dashboard import sso
from tests.factories import AwsAccountFactory, GroupFactory
from tests.oidc_provider import OidcProvider

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def idp(settings: Any) -> Iterator[OidcProvider]:
    with OidcProvider("stepscope", "browser-secret") as provider:
        settings.OIDC_ISSUER = provider.issuer
        settings.OIDC_RP_CLIENT_ID = "stepscope"
        settings.OIDC_RP_CLIENT_SECRET = "browser-secret"
        settings.OIDC_GROUP_MAP = [("idp-payments", "payments")]
        settings.AUTHENTICATION_BACKENDS = [
            *settings.AUTHENTICATION_BACKENDS,
            "dashboard.sso.SsoBackend",
        ]
        sso._metadata.clear()
        yield provider


def test_sign_in_with_sso_lands_on_the_mapped_accounts(page: Any, idp: OidcProvider) -> None:
    AwsAccountFactory.create(name="payments-prod", groups=[GroupFactory.create(name="payments")])
    AwsAccountFactory.create(name="ops-prod", groups=[GroupFactory.create(name="ops")])
    idp.user = {"sub": "b-1", "preferred_username": "bob", "groups": ["idp-payments"]}
    page.goto("/executions/")
    page.get_by_role("link", name="Sign in with SSO").click()
    page.wait_for_url("**/executions/")
    assert page.get_by_text("Log out bob").is_visible()
    page.goto("/")
    assert page.get_by_role("link", name="payments-prod").is_visible()
    assert page.get_by_text("ops-prod").count() == 0
    assert {g.name for g in User.objects.get(username="bob").groups.all()} == {"payments"}
    assert not page.errors
