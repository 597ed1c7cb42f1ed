"""`Authorization: Bearer <token>` for the API (the browser session works too, see settings)."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from api.models import ApiToken, digest


class BearerTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[AbstractBaseUser, ApiToken] | None:
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None  # no token: the session may still authenticate
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Give one token: Authorization: Bearer <token>.")
        try:
            plain = header[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("Invalid token.") from None
        token = ApiToken.objects.active().select_related("user").filter(key_digest=digest(plain))
        found = token.first()
        if found is None:
            # Unknown, revoked or of an inactive user: one answer, so none is confirmed.
            raise exceptions.AuthenticationFailed("Invalid or revoked token.")
        found.touch()
        return found.user, found

    def authenticate_header(self, request: Request) -> str:
        # Makes DRF answer 401 (with this challenge) rather than 403 when no one is logged in.
        return f'{self.keyword} realm="api"'
