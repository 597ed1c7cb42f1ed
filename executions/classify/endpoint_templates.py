"""Normalise called URLs to endpoint templates, so failures group per endpoint, not per id.

Pure (stdlib only): the parser, the classifier's fingerprint and the ingestion all share it.
`https://API.x.com/v1/customers/12345?a=1` → `https://api.x.com/v1/customers/{id}`.
"""

from __future__ import annotations

import re
from functools import lru_cache
from urllib.parse import SplitResult, unquote, urlsplit

ID_PLACEHOLDER = "{id}"

_UUID = re.compile(
    r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"
)
_LONG_HEX = re.compile(r"[0-9a-fA-F]{16,}")
# Crockford base32, as in ULIDs (no I, L, O, U); the first character is at most 7.
_ULID = re.compile(r"[0-7][0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{25}")
_EMAIL = re.compile(r"[^@\s/]+@[^@\s/]+\.[^@\s/]+")
_ID_CHARS = re.compile(r"[A-Za-z0-9_\-.~:]+")
# A word, a separator and a number (sku-42, order_7, INV-2024-0001): a numbered id whose word
# names its kind. Versions (v1, v2-beta, oauth2) have no separator before their digits.
_NUMBERED_ID = re.compile(r"[A-Za-z]{1,16}(?:[-_.][0-9]+)+")
_MIXED_ID_MIN_LENGTH = 8
_DEFAULT_PORTS = {"https": 443, "http": 80}


def endpoint_template(url: str) -> str:
    """Scheme and host lower-cased, query/fragment/credentials dropped, id-like segments → {id}.

    Never raises: whatever the input, a string comes back (empty for empty input).
    """
    if not isinstance(url, str):
        return ""
    return _template(url)


# The same few hundred endpoints are templated again and again (parse, classify, group).
@lru_cache(maxsize=8192)
def _template(url: str) -> str:
    raw = url.strip()
    if not raw:
        return ""
    try:
        parts = urlsplit(raw)
        scheme, host, port = parts.scheme.lower(), _host(parts.hostname), _port(parts)
        path = parts.path
    except ValueError:
        host = ""  # e.g. an unbalanced IPv6 bracket
    if not host:
        # Not a URL (a bare path, or garbage): keep the text, still template what looks like ids.
        return _template_path(raw.split("?", 1)[0].split("#", 1)[0])
    authority = host if port is None or _DEFAULT_PORTS.get(scheme) == port else f"{host}:{port}"
    prefix = f"{scheme}://{authority}" if scheme else f"//{authority}"
    return prefix + (_template_path(path) or "/")


def is_id_segment(segment: str) -> bool:
    """True when a path segment looks like an identifier rather than a resource name."""
    text = (unquote(segment) if "%" in segment else segment).strip()
    if text.isdigit():
        return True
    if "@" in text and _EMAIL.fullmatch(text):
        return True
    if text[-1:].isdigit() and _NUMBERED_ID.fullmatch(text):
        return True
    # Every other id shape (UUID, hex, ULID, mixed) has at least 8 characters; most path
    # segments are shorter words, so this check keeps templating cheap.
    if len(text) < _MIXED_ID_MIN_LENGTH:
        return False
    if not any(c.isdigit() for c in text):
        return _LONG_HEX.fullmatch(text) is not None  # e.g. deadbeefcafebabe
    return bool(_UUID.fullmatch(text) or _ULID.fullmatch(text) or _is_mixed_id(text))


def _is_mixed_id(text: str) -> bool:
    # Letters and digits together in a long token (cus_9aZ81kq2, ord-2024x17) are ids; short
    # ones (v1, s3, oauth2) are versions or names and must stay, or endpoints would merge.
    return _ID_CHARS.fullmatch(text) is not None and any(c.isalpha() for c in text)


def _template_path(path: str) -> str:
    segments = (ID_PLACEHOLDER if is_id_segment(seg) else seg for seg in path.split("/"))
    return "/".join(segments).strip()


def _host(hostname: str | None) -> str:
    if not hostname:
        return ""
    host = hostname.lower().rstrip(".")
    # urlsplit strips IPv6 brackets; they must come back or "host:port" becomes ambiguous.
    return f"[{host}]" if ":" in host else host


def _port(parts: SplitResult) -> int | None:
    try:
        return parts.port
    except ValueError:
        # A non-numeric or out-of-range port: not part of a usable template.
        return None
