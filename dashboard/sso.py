"""Single sign-on: OpenID Connect login through mozilla-django-oidc.

The library runs the authorization-code flow (state, nonce, PKCE, token exchange, JWKS). What it
leaves to its users, and this module adds:

- endpoints from the issuer's discovery document (fetched at the first SSO login, cached), so
  configuration is the issuer alone and no network is touched by a password login;
- the ID token's issuer, audience and expiry are checked (the library checks signature and
  algorithm only), so a token minted by another issuer or for another client is refused;
- users are matched on a configured claim, never on e-mail, and never onto a local account
  (one with a password): an IdP cannot take over the first admin;
- IdP groups are mapped to Stepscope groups (which grant accounts) and set at every login, so
  losing an IdP group loses its accounts at the next login;
- every failure is a clear page (403 refused, 502 provider unreachable), never a 500, and what
  is logged is the reason only: tokens and codes never reach a log.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import jwt
import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth import views as auth_views
from django.contrib.auth.models import AbstractBaseUser, Group
from django.core.exceptions import SuspiciousOperation
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.generic import View
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCAuthenticationRequestView

logger = logging.getLogger(__name__)

SIGN_ALGO = "RS256"
METADATA_TTL_SECONDS = 3600
_metadata: dict[str, tuple[float, dict[str, str]]] = {}


class SsoRefusedError(Exception):
    """The login is refused; the message is shown to the user and logged (no secrets in it)."""


class SsoUnavailableError(Exception):
    """The identity provider could not be reached or answered nonsense."""


def enabled() -> bool:
    return bool(settings.OIDC_ISSUER and settings.OIDC_RP_CLIENT_ID)


def provider() -> dict[str, str]:
    """The issuer's endpoints from its discovery document, cached for an hour per process."""
    issuer: str = settings.OIDC_ISSUER
    cached = _metadata.get(issuer)
    if cached and cached[0] > time.monotonic():
        return cached[1]
    url = issuer.rstrip("/") + "/.well-known/openid-configuration"
    try:
        response = requests.get(url, timeout=settings.OIDC_TIMEOUT)
        response.raise_for_status()
        document = response.json()
    except (requests.RequestException, ValueError) as exc:
        raise SsoUnavailableError(
            f"The identity provider did not answer its discovery document at {url} "
            f"({type(exc).__name__})."
        ) from None
    if not isinstance(document, dict) or document.get("issuer") != issuer:
        raise SsoUnavailableError(
            f"The discovery document at {url} does not name {issuer} as its issuer "
            "(OIDC_ISSUER must be exactly the provider's issuer)."
        )
    keys = ("authorization_endpoint", "token_endpoint", "jwks_uri", "userinfo_endpoint")
    endpoints = {key: document[key] for key in keys if isinstance(document.get(key), str)}
    missing = [key for key in keys[:3] if key not in endpoints]
    if missing:
        raise SsoUnavailableError(f"The discovery document at {url} lacks {', '.join(missing)}.")
    _metadata[issuer] = (time.monotonic() + METADATA_TTL_SECONDS, endpoints)
    return endpoints


def mapped_groups(idp_groups: list[str]) -> set[str]:
    return {target for source, target in settings.OIDC_GROUP_MAP if source in idp_groups}


class SsoBackend(OIDCAuthenticationBackend):  # type: ignore[misc]  # untyped library
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Not the library's __init__: it reads endpoints from settings, ours come from
        # discovery, fetched only when an SSO login actually runs (see authenticate).
        self.UserModel = get_user_model()
        self.OIDC_RP_CLIENT_ID = settings.OIDC_RP_CLIENT_ID
        self.OIDC_RP_CLIENT_SECRET = settings.OIDC_RP_CLIENT_SECRET
        self.OIDC_RP_SIGN_ALGO = SIGN_ALGO
        self.OIDC_RP_IDP_SIGN_KEY = None

    def authenticate(self, request: HttpRequest | None, **kwargs: Any) -> AbstractBaseUser | None:
        # Only the SSO callback passes a nonce; a password login never reaches the provider.
        if request is None or "nonce" not in kwargs or not enabled():
            return None
        endpoints = provider()
        self.OIDC_OP_TOKEN_ENDPOINT = endpoints["token_endpoint"]
        self.OIDC_OP_JWKS_ENDPOINT = endpoints["jwks_uri"]
        self.OIDC_OP_USER_ENDPOINT = endpoints.get("userinfo_endpoint")
        user: AbstractBaseUser | None = super().authenticate(request, **kwargs)
        return user

    def _verify_jws(self, payload: str, key: Any) -> dict[str, Any]:
        if jwt.get_unverified_header(payload).get("alg") != SIGN_ALGO:
            raise SsoRefusedError(f"The ID token is not signed with {SIGN_ALGO}.")
        try:
            claims: dict[str, Any] = jwt.decode(
                payload,
                key,
                algorithms=[SIGN_ALGO],
                audience=self.OIDC_RP_CLIENT_ID,
                issuer=settings.OIDC_ISSUER,
                leeway=30,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
        except jwt.InvalidIssuerError:
            raise SsoRefusedError(
                "The ID token was issued by an unknown issuer, not the configured one."
            ) from None
        except jwt.PyJWTError as exc:
            # PyJWT's messages name the failed check, never the token's contents.
            raise SsoRefusedError(f"The ID token failed verification: {exc}") from None
        return claims

    def get_userinfo(self, access_token: str, id_token: str, payload: dict[str, Any]) -> Any:
        """The ID token's claims, completed by the userinfo endpoint when there is one."""
        claims = dict(payload)
        if self.OIDC_OP_USER_ENDPOINT:
            info = super().get_userinfo(access_token, id_token, payload)
            if not isinstance(info, dict) or info.get("sub") != payload.get("sub"):
                raise SsoRefusedError("The userinfo answer is not about the signed-in subject.")
            claims.update(info)
        return claims

    def verify_claims(self, claims: dict[str, Any]) -> bool:
        username = claims.get(settings.OIDC_USERNAME_CLAIM)
        if not isinstance(username, str) or not username.strip():
            raise SsoRefusedError(
                f"The identity provider sent no {settings.OIDC_USERNAME_CLAIM} claim."
            )
        groups = claims.get(settings.OIDC_GROUPS_CLAIM, [])
        if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
            raise SsoRefusedError(f"The {settings.OIDC_GROUPS_CLAIM} claim is not a list of names.")
        return True

    def get_username(self, claims: dict[str, Any]) -> str:
        return str(claims[settings.OIDC_USERNAME_CLAIM]).strip()[:150]

    def filter_users_by_claims(self, claims: dict[str, Any]) -> Any:
        return self.UserModel.objects.filter(username=self.get_username(claims))

    def create_user(self, claims: dict[str, Any]) -> Any:
        with transaction.atomic():
            user = self.UserModel.objects.create_user(
                self.get_username(claims), email=claims.get("email") or ""
            )  # no password given: unusable, so only SSO signs this user in
            return self.update_user(user, claims)

    def update_user(self, user: Any, claims: dict[str, Any]) -> Any:
        if user.has_usable_password():
            raise SsoRefusedError(
                f"A local account named {user.username} exists; SSO never signs in as a local "
                "account. Sign in with its password, or ask an admin to rename one of them."
            )
        names = mapped_groups(claims.get(settings.OIDC_GROUPS_CLAIM, []))
        with transaction.atomic():
            groups = [Group.objects.get_or_create(name=name)[0] for name in sorted(names)]
            # set(), not add(): the IdP is the source of truth for an SSO user's groups.
            user.groups.set(groups)
            email = claims.get("email")
            if isinstance(email, str) and email != user.email:
                user.email = email
                user.save(update_fields=["email"])
        return user


class _Start(OIDCAuthenticationRequestView):  # type: ignore[misc]  # untyped library
    def __init__(self, **kwargs: Any) -> None:
        View.__init__(self, **kwargs)  # the library's reads the endpoint from settings
        self.OIDC_RP_CLIENT_ID = settings.OIDC_RP_CLIENT_ID

    def get(self, request: HttpRequest) -> HttpResponse:
        self.OIDC_OP_AUTH_ENDPOINT = provider()["authorization_endpoint"]
        response: HttpResponse = super().get(request)
        return response


class _Callback(OIDCAuthenticationCallbackView):  # type: ignore[misc]  # untyped library
    def get(self, request: HttpRequest) -> HttpResponse:
        state = request.GET.get("state")
        if "code" in request.GET and state not in request.session.get("oidc_states", {}):
            raise SsoRefusedError(
                "This answer from the identity provider belongs to no sign-in this browser "
                "started (state mismatch). Start again from the login page."
            )
        response: HttpResponse = super().get(request)
        return response

    def login_failure(self) -> HttpResponse:
        error = self.request.GET.get("error")
        raise SsoRefusedError(
            f"The identity provider refused the sign-in ({error})."
            if error
            else "The identity provider did not sign you in."
        )


_start_view = _Start.as_view()
_callback_view = _Callback.as_view()


def _failed(request: HttpRequest, reason: str, status: int) -> HttpResponse:
    logger.warning("SSO login failed: %s", reason)
    return render(request, "registration/sso_failed.html", {"reason": reason}, status=status)


def sso_login(request: HttpRequest) -> HttpResponse:
    """Send the browser to the identity provider (state, nonce and PKCE kept in the session)."""
    if not enabled():
        raise Http404("Single sign-on is not configured.")
    try:
        return _start_view(request)  # type: ignore[no-any-return]
    except SsoUnavailableError as exc:
        return _failed(request, str(exc), 502)


def sso_callback(request: HttpRequest) -> HttpResponse:
    """The provider's redirect back: exchange the code, verify the ID token, log in."""
    if not enabled():
        raise Http404("Single sign-on is not configured.")
    try:
        return _callback_view(request)  # type: ignore[no-any-return]
    except SsoUnavailableError as exc:
        return _failed(request, str(exc), 502)
    except requests.RequestException as exc:
        # Only the class: an HTTPError's text carries the provider's answer body.
        return _failed(
            request, f"The identity provider did not answer ({type(exc).__name__}).", 502
        )
    except SsoRefusedError as exc:
        return _failed(request, str(exc), 403)
    except SuspiciousOperation as exc:
        # The library's own checks (nonce, missing key); its messages are fixed sentences.
        return _failed(request, f"The identity provider's answer failed verification: {exc}", 403)
    except (jwt.PyJWTError, KeyError, TypeError, ValueError) as exc:
        return _failed(
            request, f"The identity provider sent a malformed answer ({type(exc).__name__}).", 403
        )


class LoginView(auth_views.LoginView):
    """Django's login page, offering "Sign in with SSO" when an issuer is configured."""

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["sso_enabled"] = enabled()
        return context
