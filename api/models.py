"""Per-user API tokens: shown once, stored as a SHA-256 digest, revocable.

Why SHA-256 and not a slow password hash: a token is 256 random bits, so guessing one from its
digest is hopeless with any hash, and a fast digest can be looked up by index on every request
(a slow hash would need the user's name first and cost ~100 ms a call). Passwords are slow-hashed
because people choose guessable ones; machines choosing tokens do not.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import ClassVar

from django.conf import settings
from django.contrib.auth.models import User
from django.db import models
from django.db.models import Q
from django.utils import timezone

PREFIX = "sts_"
# last_used_at is written at most this often per token, so a busy script costs one UPDATE a
# minute, not one per request.
LAST_USED_GRANULARITY = timedelta(minutes=1)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


class ApiTokenQuerySet(models.QuerySet["ApiToken"]):
    def active(self) -> ApiTokenQuerySet:
        return self.filter(revoked_at__isnull=True, user__is_active=True)


class ApiToken(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100)
    key_digest = models.CharField(max_length=64, unique=True)
    # The first characters of the token, to tell tokens apart in the list (not a secret).
    key_prefix = models.CharField(max_length=12)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects: ClassVar[ApiTokenQuerySet] = ApiTokenQuerySet.as_manager()  # type: ignore[assignment]

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.key_prefix}…)"

    @classmethod
    def issue(cls, user: User, name: str) -> tuple[ApiToken, str]:
        """A new token for `user`; the plain token is returned here and never again."""
        plain = PREFIX + secrets.token_urlsafe(32)
        token = cls.objects.create(
            user=user, name=name, key_digest=digest(plain), key_prefix=plain[: len(PREFIX) + 4]
        )
        return token, plain

    def touch(self) -> None:
        """Record use with a conditional UPDATE: no write while the last one is recent."""
        now = timezone.now()
        recent = Q(last_used_at__gte=now - LAST_USED_GRANULARITY)
        ApiToken.objects.filter(pk=self.pk).exclude(recent).update(last_used_at=now)

    def revoke(self) -> None:
        ApiToken.objects.filter(pk=self.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
