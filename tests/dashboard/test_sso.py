"""OpenID Connect login against a real provider over HTTP (tests/oidc_provider.py).

The whole code flow runs: Django's test client asks /sso/login/, follows the redirect to the
provider's authorize endpoint with requests, and brings the code back to /sso/callback/, where
the app exchanges it at the provider's token endpoint, fetches the JWKS and userinfo, and checks
the RS256 ID token. Nothing of the client side is mocked.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from django.contrib.auth.models import Group, User
from django.test import Client
from django.urls import reverse

from dashboard import sso
from executions.web import visible_accounts
from tests.factories import AwsAccountFactory, GroupFactory, UserFactory
from tests.oidc_provider import OidcProvider

CLIENT_ID = "stepscope"
CLIENT_SECRET = "client-secret-canary-9f3a"


@pytest.fixture(scope="module")
def idp() -> Iterator[OidcProvider]:
    with OidcProvider(CLIENT_ID, CLIENT_SECRET) as provider:
        yield provider


@pytest.fixture
def oidc(settings: Any, idp: OidcProvider, db: None) -> OidcProvider:
    settings.OIDC_ISSUER = idp.issuer
    settings.OIDC_RP_CLIENT_ID = CLIENT_ID
    settings.OIDC_RP_CLIENT_SECRET = CLIENT_SECRET
    settings.OIDC_GROUP_MAP = [("idp-payments", "payments"), ("idp-ops", "ops")]
    settings.AUTHENTICATION_BACKENDS = [
        *settings.AUTHENTICATION_BACKENDS,
        "dashboard.sso.SsoBackend",
    ]
    sso._metadata.clear()
    idp.tamper = {}
    idp.user = {"sub": "u-123", "preferred_username": "alice", "email": "alice@example.com"}
    return idp


def run_flow(client: Client, idp: OidcProvider) -> Any:
    """Start at Stepscope, pass through the provider, land on the callback; its response."""
    start = client.get(reverse("sso_login"))
    assert start.status_code == 302, start.content
    assert start["Location"].startswith(f"{idp.issuer}/authorize?")
    at_idp = requests.get(start["Location"], allow_redirects=False, timeout=5)
    assert at_idp.status_code == 302
    back = urlsplit(at_idp.headers["Location"])
    assert back.path == reverse("sso_callback")
    return client.get(f"{back.path}?{back.query}")


def test_sso_login_maps_idp_groups_to_accounts_and_resyncs_them_each_login(
    oidc: OidcProvider, caplog: pytest.LogCaptureFixture
) -> None:
    payments, ops = GroupFactory.create(name="payments"), GroupFactory.create(name="ops")
    AwsAccountFactory.create(name="payments-prod", groups=[payments])
    AwsAccountFactory.create(name="ops-prod", groups=[ops])
    AwsAccountFactory.create(name="nobody-s", groups=[GroupFactory.create(name="other")])
    client = Client()
    assert b"Sign in with SSO" in client.get(reverse("login")).content

    oidc.user["groups"] = ["idp-payments", "idp-unmapped"]
    caplog.set_level(logging.DEBUG)
    response = run_flow(client, oidc)
    assert response.status_code == 302
    assert response["Location"] == reverse("dashboard:overview")
    alice = User.objects.get(username="alice")
    assert alice.email == "alice@example.com"
    assert not alice.has_usable_password() and not alice.is_staff and not alice.is_superuser
    assert {g.name for g in alice.groups.all()} == {"payments"}
    assert {a.name for a in visible_accounts(alice)} == {"payments-prod"}
    page = client.get(reverse("dashboard:overview")).content.decode()
    assert "payments-prod" in page and "ops-prod" not in page and "nobody-s" not in page

    # Moved from payments to ops at the IdP: the next login takes payments away.
    client.post(reverse("logout"))
    oidc.user["groups"] = ["idp-ops"]
    assert run_flow(client, oidc).status_code == 302
    assert {g.name for g in alice.groups.all()} == {"ops"}
    assert {a.name for a in visible_accounts(alice)} == {"ops-prod"}
    assert User.objects.filter(username="alice").count() == 1

    # Tokens, codes and the client secret are secrets: none reached a log record.
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert len(oidc.issued) == 4
    for secret in [*oidc.issued, CLIENT_SECRET]:
        assert secret not in logged


def _state_mismatch(client: Client, idp: OidcProvider) -> Any:
    start = client.get(reverse("sso_login"))
    at_idp = requests.get(start["Location"], allow_redirects=False, timeout=5)
    back = urlsplit(at_idp.headers["Location"])
    forged = back.query.replace("state=", "state=forged")
    return client.get(f"{back.path}?{forged}")


def _nonce_mismatch(client: Client, idp: OidcProvider) -> Any:
    idp.tamper = {"nonce": "a-nonce-from-another-login"}
    return run_flow(client, idp)


def _unknown_issuer(client: Client, idp: OidcProvider) -> Any:
    idp.tamper = {"iss": "https://idp.evil.example"}
    return run_flow(client, idp)


def _other_audience(client: Client, idp: OidcProvider) -> Any:
    idp.tamper = {"aud": "another-client"}
    return run_flow(client, idp)


def _local_account_clash(client: Client, idp: OidcProvider) -> Any:
    # The first admin is a local account; an IdP user of the same name must not become it.
    UserFactory.create(username="alice", is_superuser=True, is_staff=True)
    return run_flow(client, idp)


@pytest.mark.parametrize(
    ("attack", "reason"),
    [
        (_state_mismatch, "state mismatch"),
        (_nonce_mismatch, "Nonce verification failed"),
        (_unknown_issuer, "unknown issuer"),
        (_other_audience, "failed verification: Audience"),
        (_local_account_clash, "A local account named alice exists"),
    ],
)
def test_sso_refuses_with_a_clear_page(oidc: OidcProvider, attack: Any, reason: str) -> None:
    oidc.user["groups"] = ["idp-ops"]
    client = Client()
    response = attack(client, oidc)
    assert response.status_code == 403
    assert "Single sign-on failed" in response.content.decode()
    assert reason in response.content.decode()
    assert "_auth_user_id" not in client.session
    assert not Group.objects.filter(name="ops", user__username="alice").exists()


def test_sso_unreachable_or_unconfigured(oidc: OidcProvider, settings: Any) -> None:
    client = Client()
    settings.OIDC_ISSUER = "http://127.0.0.1:9"  # discard port: nothing answers
    response = client.get(reverse("sso_login"))
    assert response.status_code == 502
    assert "did not answer its discovery document" in response.content.decode()

    settings.OIDC_ISSUER = ""
    assert client.get(reverse("sso_login")).status_code == 404
    assert client.get(reverse("sso_callback") + "?code=x&state=y").status_code == 404
    assert b"Sign in with SSO" not in client.get(reverse("login")).content


HOSTILE = ["", "\u00e9\u4e2d", "a" * 3000, "state=1&state=2", "<script>"]


@pytest.mark.parametrize("started", [False, True])
def test_no_query_string_makes_the_sso_views_fail(oidc: OidcProvider, started: bool) -> None:
    client = Client()
    if started:
        client.get(reverse("sso_login"))  # a sign-in under way: states in the session
    for value in HOSTILE:
        for query in [
            {"code": value, "state": value},
            {"error": value, "state": value},
            {"code": value},
            {"next": value, "unknown": value},
        ]:
            response = client.get(reverse("sso_callback"), query)
            assert response.status_code in {302, 403}, (query, response.status_code)
        assert client.get(reverse("sso_login"), {"next": value}).status_code == 302
    assert "_auth_user_id" not in client.session


def test_the_group_map_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from dashboard.settings import env_pairs

    monkeypatch.setenv("OIDC_GROUP_MAP", " idp-ops = ops ,idp-ops=viewers,idp-pay=payments")
    assert env_pairs("OIDC_GROUP_MAP") == [
        ("idp-ops", "ops"),
        ("idp-ops", "viewers"),
        ("idp-pay", "payments"),
    ]
    monkeypatch.setenv("OIDC_GROUP_MAP", "idp-ops=ops,idp-pay")
    with pytest.raises(ValueError, match="idp-pay"):
        env_pairs("OIDC_GROUP_MAP")
