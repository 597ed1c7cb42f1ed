"""Redaction of secrets before anything is stored or logged.

Pure (no Django import at module level, so the parser, the CLI and the log filter share it).
A key is secret when its name says so (authorization, cookie, anything with token/secret/key…);
a value is secret when it looks like one (bearer tokens, JWTs, AWS access keys) whatever its key.
Secret values become a marker that keeps only a length class, so "short key vs long token" is
still visible when debugging while nothing of the value survives.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

# Exact names: headers and keys that carry credentials in real APIs.
SECRET_KEY_NAMES = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
        "x-api-key",
        "api-key",
        "apikey",
        "x-auth",
        "auth",
        "x-csrf-token",
        "client_secret",
        "private",
    }
)
# Fragments: any key containing one of these is treated as secret.
SECRET_KEY_FRAGMENTS = (
    "token",
    "secret",
    "password",
    "passwd",
    "pwd",
    "key",
    "signature",
    "session",
    "credential",
    "auth",
    "cookie",
)
# Keys that contain a fragment above but are plainly not secret; redacting them would hide
# exactly the debugging facts users need (which content type, which idempotency key name…).
NOT_SECRET_KEYS = frozenset(
    {
        "keyword",
        "keywords",
        "monkey",
        "key_name",
        "keyname",
        "apikeyname",
        "sort_key",
        "sortkey",
        "partition_key",
        "primary_key",
        "foreign_key",
        "authorizationtype",
        "author",
        "authors",
        "token_type",
        "expires_in",
    }
)

SECRET_VALUE_PATTERNS = (
    re.compile(r"(?i)\b(bearer|basic|digest|token)\s+[A-Za-z0-9._~+/=-]{8,}"),
    re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"),  # JWT
    re.compile(r"\b(AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}\b"),  # AWS access key id
    re.compile(r"(?i)aws_secret_access_key\s*[=:]\s*\S+"),
    re.compile(r"\b(sk|pk|rk)_(live|test)_[A-Za-z0-9]{10,}"),  # Stripe-style keys
    re.compile(r"\bgh[pousr]_[A-Za-z0-9]{20,}"),  # GitHub tokens
    re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}"),  # Slack tokens
)

MARKER_PREFIX = "[redacted"


def length_class(value: object) -> str:
    """A coarse size bucket: enough to tell an empty key from a long token, no more."""
    n = len(str(value))
    if n == 0:
        return "empty"
    if n <= 8:
        return "short"
    if n <= 32:
        return "medium"
    if n <= 128:
        return "long"
    return "very-long"


def marker(value: object) -> str:
    return f"{MARKER_PREFIX}:{length_class(value)}]"


@dataclass(frozen=True)
class Redactor:
    """Redacts mappings, lists and strings; extra patterns come from settings."""

    extra_key_patterns: tuple[re.Pattern[str], ...] = ()
    extra_value_patterns: tuple[re.Pattern[str], ...] = ()
    _value_patterns: tuple[re.Pattern[str], ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "_value_patterns", SECRET_VALUE_PATTERNS + tuple(self.extra_value_patterns)
        )

    @classmethod
    def from_patterns(cls, keys: Iterable[str] = (), values: Iterable[str] = ()) -> Redactor:
        return cls(
            extra_key_patterns=tuple(re.compile(p, re.IGNORECASE) for p in keys),
            extra_value_patterns=tuple(re.compile(p) for p in values),
        )

    def is_secret_key(self, key: object) -> bool:
        name = str(key).strip().lower()
        if name in SECRET_KEY_NAMES:
            return True
        if name in NOT_SECRET_KEYS:
            return False
        compact = name.replace("-", "").replace("_", "")
        if compact in NOT_SECRET_KEYS:
            return False
        if any(fragment in compact for fragment in SECRET_KEY_FRAGMENTS):
            return True
        return any(p.search(name) for p in self.extra_key_patterns)

    def text(self, value: str) -> str:
        """Replace every secret-looking run inside free text (causes, bodies, log lines)."""
        for pattern in self._value_patterns:
            if pattern.search(value):
                value = pattern.sub(lambda m: marker(m.group(0)), value)
        return value

    def value(self, value: Any) -> Any:
        """Redact a JSON-like value at any depth (dict keys decide, strings are scanned)."""
        if isinstance(value, Mapping):
            return {
                k: (self._secret_value(v) if self.is_secret_key(k) else self.value(v))
                for k, v in value.items()
            }
        if isinstance(value, list | tuple):
            return [self.value(v) for v in value]
        if isinstance(value, str):
            return self.embedded(value)
        return value

    def embedded(self, value: str) -> str:
        """A string that may itself hold JSON or a form body (echoed requests, string bodies):
        redact by key inside it too, not only by value pattern."""
        head = value.lstrip()[:1]
        if head in ("{", "["):
            try:
                parsed = json.loads(value)
            except (ValueError, RecursionError):
                return self.text(value)
            return json.dumps(self.value(parsed), ensure_ascii=False)
        if "=" in value and " " not in value.strip() and "\n" not in value:
            return self.query_string(value)
        return self.text(value)

    def _secret_value(self, value: Any) -> Any:
        # Header values from AWS output arrive as lists of strings: keep the list shape.
        if isinstance(value, list):
            return [marker(v) for v in value]
        if value is None:
            return None
        if isinstance(value, Mapping):
            return {k: self._secret_value(v) for k, v in value.items()}
        return marker(value)

    def query_string(self, query: str) -> str:
        """Redact secret parameters in a raw query string (`a=1&token=x`)."""
        parts = []
        for part in query.split("&"):
            name, sep, val = part.partition("=")
            parts.append(f"{name}={marker(val)}" if sep and self.is_secret_key(name) else part)
        return self.text("&".join(parts))

    def url(self, url: str) -> str:
        """Redact userinfo and secret query parameters of a URL."""
        url = re.sub(r"(?<=://)[^/@\s]+@", lambda m: marker(m.group(0)) + "@", url)
        base, sep, query = url.partition("?")
        return base + sep + self.query_string(query) if sep else self.text(url)


def default_redactor() -> Redactor:
    """The redactor configured by settings.STEPSCOPE (REDACT_KEY_PATTERNS/…_VALUE_PATTERNS)."""
    try:
        from django.conf import settings

        conf = getattr(settings, "STEPSCOPE", {})
        return Redactor.from_patterns(
            conf.get("REDACT_KEY_PATTERNS", ()), conf.get("REDACT_VALUE_PATTERNS", ())
        )
    except Exception:  # settings not configured: the CLI and pure tests still redact
        return Redactor()


class RedactingLogFilter(logging.Filter):
    """Scrubs secret-looking values from every log record before a handler writes it."""

    def __init__(self, name: str = "") -> None:
        super().__init__(name)
        self.redactor = Redactor()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record must not take logging down
            return True
        record.msg = self.redactor.text(message)
        record.args = None
        return True
