"""Encryption at rest for account secrets (Fernet, with key rotation through MultiFernet)."""

from __future__ import annotations

import base64
import hashlib
from functools import cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.db import models

TOKEN_PREFIX = "fernet:"


class DecryptionError(Exception):
    """A stored secret cannot be decrypted with any configured key."""


def _derived_key() -> bytes:
    # Only for a first look without FIELD_ENCRYPTION_KEYS; the deploy check warns about it.
    digest = hashlib.sha256(f"stepscope-field-key:{settings.SECRET_KEY}".encode()).digest()
    return base64.urlsafe_b64encode(digest)


@cache
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    materials = [k.encode() for k in keys] or [_derived_key()]
    return MultiFernet([Fernet(m) for m in materials])


def fernet() -> MultiFernet:
    return _fernet(tuple(settings.FIELD_ENCRYPTION_KEYS))


def encrypt(plaintext: str) -> str:
    return TOKEN_PREFIX + fernet().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    if not token.startswith(TOKEN_PREFIX):
        raise DecryptionError("stored value is not an encrypted token")
    try:
        return fernet().decrypt(token.removeprefix(TOKEN_PREFIX).encode()).decode()
    except InvalidToken as exc:
        raise DecryptionError("no configured FIELD_ENCRYPTION_KEYS key decrypts it") from exc


def rotate(token: str) -> str:
    """Re-encrypt a token under the newest key (MultiFernet.rotate keeps the timestamp)."""
    return TOKEN_PREFIX + fernet().rotate(token.removeprefix(TOKEN_PREFIX).encode()).decode()


class EncryptedTextField(models.TextField):  # type: ignore[type-arg]
    """Stores ciphertext; Python code sees plaintext. Empty stays empty (no secret set).

    The database (and so pg_dump and backups) never holds the plaintext.
    """

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> str:
        if not value:
            return ""
        return decrypt(value)

    def get_prep_value(self, value: Any) -> str:
        if value is None or value == "":
            return ""
        return encrypt(str(value))
