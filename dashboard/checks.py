"""Deploy checks of our own: `manage.py check --deploy` must fail loudly on weak secrets."""

from __future__ import annotations

from typing import Any

from cryptography.fernet import Fernet
from django.conf import settings
from django.core.checks import Error, Tags, Warning, register


@register(Tags.security, deploy=True)
def field_encryption_keys(app_configs: Any, **kwargs: Any) -> list[Warning | Error]:
    keys = list(settings.FIELD_ENCRYPTION_KEYS)
    if not keys:
        return [
            Warning(
                "FIELD_ENCRYPTION_KEYS is not set: account secrets are encrypted with a key "
                "derived from SECRET_KEY, so rotating SECRET_KEY would lose them.",
                hint="Set FIELD_ENCRYPTION_KEYS to a Fernet key (newest first).",
                id="stepscope.W001",
            )
        ]
    problems: list[Warning | Error] = []
    for index, key in enumerate(keys):
        try:
            Fernet(key.encode())
        except ValueError:
            problems.append(
                Error(
                    f"FIELD_ENCRYPTION_KEYS entry {index + 1} is not a valid Fernet key.",
                    id="stepscope.E001",
                )
            )
    return problems
