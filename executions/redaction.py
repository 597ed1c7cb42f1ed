"""Redaction of secrets before anything is stored or logged.

Pure (no Django import at module level, so the parser, the CLI and the log filter share it).
A key is secret when its name says so (authorization, cookie, anything with token/secret/key…);
a value is secret when it looks like one (bearer tokens, JWTs, AWS access keys) whatever its key.
Secret values become a marker that keeps only a length class, so "short key vs long token" is
still visible when debugging while nothing of the value survives.

A connection injects parameters whose names say nothing (`X-Partner-Ref`, `ref`, an API-key
header called `X-Shop`): `with_secret_names` gives a redactor that also treats those names as
secret, wherever they appear. URLs have one recipe (`url`), also applied to URLs inside free
text: user-info, secret query values, and path segments that are tokens (not words or ids).
"""

from __future__ import annotations

import functools
import json
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import unquote

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
    # An auth scheme and its credential. Not a path word ("/basic", "/oauth/token") followed by
    # the next word of a sentence: the credential must hold a digit or a base64/token symbol.
    re.compile(
        r"(?<![/\w.-])(?i:bearer|basic|digest|token)\s+"
        r"(?=[A-Za-z0-9._~+/=-]*[0-9+/=_~])[A-Za-z0-9._~+/=-]{8,}"
    ),
    re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"),  # JWT
    re.compile(r"\b(AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}\b"),  # AWS access key id
    re.compile(r"(?i)aws_secret_access_key\s*[=:]\s*\S+"),
    re.compile(r"\b(sk|pk|rk)_(live|test)_[A-Za-z0-9]{10,}"),  # Stripe-style keys
    re.compile(r"\bgh[pousr]_[A-Za-z0-9]{20,}"),  # GitHub tokens
    re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}"),  # Slack tokens
)

MARKER_PREFIX = "[redacted"
log = logging.getLogger(__name__)

# URLs inside free text (causes, hints, log lines), up to whitespace or a closing quote/bracket.
_URL_IN_TEXT = re.compile(r"""\b[A-Za-z][A-Za-z0-9+.-]{1,15}://[^\s"'<>`]+""")
_URL_START = re.compile(r"[A-Za-z][A-Za-z0-9+.-]{1,15}://")
_USERINFO = re.compile(r"(?<=://)[^/?#@\s]+@")
# A token in a URL path or query value: a long run of letters and digits, mixed, as random
# strings are (hex digests, base62/base64url keys). Words, versions, slugs and ids are shorter
# runs or made of words (orders, v1, sku-42, cus_8f3k2, a UUID's groups, a 24-hex ObjectId).
_TOKEN_RUN = re.compile(r"[A-Za-z0-9]{32,}")
_UUID_HEX = re.compile(r"[0-9a-fA-F]{32}")


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


_MARKER = re.compile(r"\[redacted:(?:empty|short|medium|long|very-long)\]")


def marker(value: object) -> str:
    # Redacting again (at display time, after new names are learned) keeps the length class
    # of the original value instead of measuring the marker.
    if isinstance(value, str) and _MARKER.fullmatch(value):
        return value
    return f"{MARKER_PREFIX}:{length_class(value)}]"


_MAX_VERDICTS = 4096


@dataclass(frozen=True)
class Redactor:
    """Redacts mappings, lists and strings; extra patterns come from settings."""

    extra_key_patterns: tuple[re.Pattern[str], ...] = ()
    extra_value_patterns: tuple[re.Pattern[str], ...] = ()
    # Lower-cased names secret whatever they look like: a connection's injected parameters.
    secret_names: frozenset[str] = frozenset()
    _value_patterns: tuple[re.Pattern[str], ...] = field(init=False, repr=False)
    _named_values: re.Pattern[str] | None = field(init=False, repr=False)
    # Key name → is it secret. The same few header and body keys recur in every attempt of
    # a sync; each verdict costs a scan of every fragment and pattern (a profiled hot spot).
    _verdicts: dict[str, bool] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_verdicts", {})
        object.__setattr__(
            self, "_value_patterns", SECRET_VALUE_PATTERNS + tuple(self.extra_value_patterns)
        )
        named = _named_value_pattern(self.secret_names) if self.secret_names else None
        object.__setattr__(self, "_named_values", named)

    def with_secret_names(self, names: Iterable[str]) -> Redactor:
        """This redactor, also treating `names` (a connection's secret parameters) as secret
        keys in headers, queries and bodies, and as `name=value`/`name: value` in free text."""
        wanted = secret_name_set(names)
        if wanted <= self.secret_names:
            return self
        return replace(self, secret_names=self.secret_names | wanted)

    @classmethod
    def from_patterns(cls, keys: Iterable[str] = (), values: Iterable[str] = ()) -> Redactor:
        """A redactor with these extra patterns. One that does not compile is left out with a
        warning (the `stepscope.E002` check refuses it at start-up); the others all apply."""
        return cls(
            extra_key_patterns=_compiled_patterns(keys, KEY_PATTERN_FLAGS),
            extra_value_patterns=_compiled_patterns(values, 0),
        )

    def is_secret_key(self, key: object) -> bool:
        if type(key) is not str:
            return self._judge(key)
        verdict = self._verdicts.get(key)
        if verdict is None:
            if len(self._verdicts) >= _MAX_VERDICTS:  # third-party keys: bound the memory
                self._verdicts.clear()
            verdict = self._verdicts[key] = self._judge(key)
        return verdict

    def _judge(self, key: object) -> bool:
        name = str(key).strip().lower()
        if name in SECRET_KEY_NAMES or name in self.secret_names:
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
        """Replace every secret-looking run inside free text (causes, bodies, log lines); URLs
        in it get the URL rules."""
        if "://" in value:
            value = _URL_IN_TEXT.sub(lambda m: self.url(m.group(0)), value)
        return self._patterns(value)

    def _patterns(self, value: str) -> str:
        for pattern in self._value_patterns:
            if pattern.search(value):
                value = pattern.sub(lambda m: marker(m.group(0)), value)
        if self._named_values is not None:
            value = self._named_values.sub(lambda m: m["keep"] + marker(m["secret"]), value)
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
        if _URL_START.match(value.strip()):
            return self.url(value)
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
        """Redact secret parameters in a raw query string (`a=1&token=x`): by name, and values
        that are tokens whatever their name."""
        parts = []
        for part in query.split("&"):
            name, sep, val = part.partition("=")
            if sep and (self.is_secret_key(unquote(name)) or is_token(val)):
                part = f"{name}={marker(val)}"
            parts.append(part)
        return self.text("&".join(parts))

    def url(self, url: str) -> str:
        """The one URL recipe, for every URL stored or shown: user-info, secret query
        parameters and token path segments become markers; words and ids in the path stay."""
        url = _USERINFO.sub(lambda m: marker(m.group(0)[:-1]) + "@", url)
        rest, hash_sign, fragment = url.partition("#")
        base, question, query = rest.partition("?")
        start = _URL_START.match(base)
        head = base[: start.end()] if start else ""
        segments = base[len(head) :].split("/")
        # The first segment after the scheme is the authority (host:port), never a token.
        first = 1 if head else 0
        path = "/".join(
            marker(s) if i >= first and is_token(s) else s for i, s in enumerate(segments)
        )
        out = self._patterns(head + path)
        if question:
            out += "?" + self.query_string(query)
        if hash_sign:
            # OAuth's implicit flow answers in the fragment, shaped like a query.
            out += "#" + (marker(fragment) if is_token(fragment) else self.query_string(fragment))
        return out


def secret_name_set(names: Iterable[str]) -> frozenset[str]:
    """Names as the redactor compares them: stripped, lower-cased, blanks dropped."""
    return frozenset(n.strip().lower() for n in names if n and n.strip())


def is_token(segment: str) -> bool:
    """A URL path segment or query value that is a random token rather than a word or an id.

    JWTs, AWS keys and vendor tokens are caught by the value patterns; this catches the long
    random strings that have no recognisable prefix.
    """
    text = unquote(segment) if "%" in segment else segment
    for run in _TOKEN_RUN.findall(text):
        if _UUID_HEX.fullmatch(run):
            continue  # a UUID written without dashes is an id
        if any(c.isdigit() for c in run) and any(c.isalpha() for c in run):
            return True
    return False


def _named_value_pattern(names: frozenset[str]) -> re.Pattern[str]:
    # `name=value`, `name: value`, `"name": "value"` and `"name": ["value"` for names that are
    # secret whatever they look like; the name and the separator stay, the value goes.
    alternatives = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
    return re.compile(
        rf"(?i)(?<![A-Za-z0-9_.-])(?P<keep>(?:{alternatives})[\"']?\s*[:=]\s*\[?\s*[\"']?)"
        r"(?!\[?redacted:)(?P<secret>[^\s\"'&,;}\]]+)"
    )


# Key names are matched whatever their case (headers are case-insensitive); values as written.
KEY_PATTERN_FLAGS = re.IGNORECASE
# What re.compile raises for a pattern it cannot use ("a{99999999999}" overflows, deep nesting
# recurses).
PATTERN_ERRORS = (re.error, OverflowError, RecursionError)


def pattern_problem(pattern: str, flags: int = 0) -> str | None:
    """Why `pattern` is not a usable regular expression; None when it compiles."""
    try:
        re.compile(pattern, flags)
    except PATTERN_ERRORS as exc:
        return str(exc) or type(exc).__name__
    return None


def _compiled_patterns(patterns: Iterable[str], flags: int) -> tuple[re.Pattern[str], ...]:
    compiled = (_compiled(pattern, flags) for pattern in patterns)
    return tuple(p for p in compiled if p is not None)


@functools.lru_cache(maxsize=256)
def _compiled(pattern: str, flags: int) -> re.Pattern[str] | None:
    # Cached: a redactor is built per request and per sync step; the warning comes once.
    problem = pattern_problem(pattern, flags)
    if problem is not None:
        log.warning(
            "redaction pattern %r is not a valid regular expression (%s): it is ignored, "
            "the other patterns apply",
            pattern,
            problem,
        )
        return None
    return re.compile(pattern, flags)


def default_redactor() -> Redactor:
    """The redactor configured by settings.STEPSCOPE (REDACT_KEY_PATTERNS/…_VALUE_PATTERNS)."""
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured

    try:
        conf = getattr(settings, "STEPSCOPE", {})
    except ImproperlyConfigured:  # settings not configured: the CLI and pure tests still redact
        return Redactor()
    return Redactor.from_patterns(
        conf.get("REDACT_KEY_PATTERNS", ()), conf.get("REDACT_VALUE_PATTERNS", ())
    )


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
