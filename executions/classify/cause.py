"""Reading a failure's `cause`: AWS's bare status text, or a response body that names things.

Real AWS gives only the status text ("Bad Request"); emulators and some runtimes give the body.
What a body can name: a missing header or field, a JSONata/JSONPath expression that failed (see
`query`), a forbidden header, an IAM action, an unreadable content type.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from executions.classify.query import QueryFailure, read_query_failure
from executions.history.events import load_json

_MAX_CAUSE_SCAN = 8_000  # causes can be 32 KiB; names of missing things come early

# Headers Step Functions refuses in a task's Headers (reference §3), lower-cased.
FORBIDDEN_HEADERS = frozenset(
    h.lower()
    for h in (
        "A-IM", "Accept-Charset", "Accept-Datetime", "Accept-Encoding", "Authorization",
        "Cache-Control", "Connection", "Content-Encoding", "Content-MD5", "Date", "Expect",
        "Forwarded", "From", "Host", "HTTP2-Settings", "If-Match", "If-Modified-Since",
        "If-None-Match", "If-Range", "If-Unmodified-Since", "Max-Forwards", "Origin", "Pragma",
        "Proxy-Authorization", "Referer", "Server", "TE", "Trailer", "Transfer-Encoding",
        "Upgrade", "Via", "Warning",
    )
)  # fmt: skip
FORBIDDEN_HEADER_PREFIXES = ("x-forwarded-", "x-amz-", "x-amzn-")


def is_forbidden_header(name: str) -> bool:
    lowered = name.lower()
    return lowered in FORBIDDEN_HEADERS or lowered.startswith(FORBIDDEN_HEADER_PREFIXES)


@dataclass(slots=True)
class CauseInfo:
    kind: str = "empty"  # empty | status_text | json | text
    missing_headers: tuple[str, ...] = ()
    missing_fields: tuple[str, ...] = ()
    query: QueryFailure | None = None  # a JSONata/JSONPath expression that failed
    forbidden_header: str = ""
    iam_actions: tuple[str, ...] = ()
    content_type: str = ""


NO_CAUSE = CauseInfo()  # shared and never mutated: successes have no cause to read

_STATUS_PHRASES = {s.value: s.phrase.lower() for s in HTTPStatus}
_ALL_PHRASES = frozenset(_STATUS_PHRASES.values())
_IAM_ACTION = re.compile(r"\b(states|events|secretsmanager|kms|iam):([A-Za-z]{3,64})\b")
_CONTENT_TYPE = re.compile(r"\b(application/octet-stream|(?:image|audio|video)/[\w.+-]+)", re.I)
_WORD = re.compile(r"[a-z0-9][a-z0-9-]*")
_HEADER_AFTER = re.compile(r"\s*header", re.IGNORECASE)
_NAME = r"['\"`]?([A-Za-z_][\w.\[\]-]{0,99})['\"`]?"
# fmt: off
_HEADER_PATTERNS = tuple(
    re.compile(p, re.IGNORECASE)
    for p in (
        r"(?:missing|required|absent|no)\s+(?:required\s+|mandatory\s+)?(?:request\s+)?header(?:s)?\s*[:=]?\s*" + _NAME,
        r"header\s*[:=]?\s*" + _NAME + r"\s+(?:is\s+|was\s+)?(?:missing|required|not\s+(?:set|present|provided))",
        _NAME + r"\s+header\s+(?:is\s+|was\s+)?(?:missing|required|not\s+(?:set|present|provided))",
    )
)
_FIELD_PATTERNS = tuple(
    re.compile(p, re.IGNORECASE)
    for p in (
        r"(?:missing|required)\s+(?:required\s+|mandatory\s+)?(?:query\s+|body\s+|request\s+)?(?:field|parameter|param|property|attribute|argument|key)(?:s)?\s*[:=]?\s*" + _NAME,
        r"(?:field|parameter|param|property|attribute|argument|key)\s*[:=]?\s*" + _NAME + r"\s+(?:is\s+|was\s+)?(?:missing|required|mandatory)",
        _NAME + r"\s+(?:is|are)\s+(?:a\s+)?(?:required|missing|mandatory)",
        r"(?:field|parameter|param|property|attribute|argument|key)s?\s+(?:is\s+|are\s+)?(?:missing|required)\s*[:=]\s*" + _NAME,
        _NAME + r"\s*:\s*(?:field\s+)?(?:is\s+)?(?:required|missing)",
    )
)
# Words a pattern can capture that are not names ("this field is required").
_NOT_NAMES = frozenset({
    "field", "fields", "parameter", "parameters", "param", "value", "values", "property",
    "attribute", "argument", "key", "this", "it", "body", "header", "headers", "request",
    "query", "input", "data", "required", "missing", "is", "the", "a", "an", "one", "some",
    "error", "message",
})
_MISSING_KEYS = frozenset(
    {"missing", "missing_fields", "missingfields", "missing_parameters", "missingparameters",
     "required", "required_fields", "requiredfields", "missing_headers", "missingheaders"}
)
# fmt: on
_NAME_KEYS = ("field", "param", "parameter", "property", "name", "key", "path", "header")
_MESSAGE_KEYS = ("message", "msg", "error", "detail", "description", "reason", "type", "code")


def read_cause(cause: object, status: int | None) -> CauseInfo:
    """Everything a failure's cause text says, as far as the patterns can tell."""
    text = cause if isinstance(cause, str) else ""
    info = CauseInfo()
    stripped = text.strip()[:_MAX_CAUSE_SCAN]
    if not stripped:
        return info
    info.kind = "text"
    if _is_status_text(stripped, status):
        info.kind = "status_text"  # what real AWS sends: nothing more to learn
        return info
    headers: list[str] = []
    fields: list[str] = []
    if stripped[0] in "{[":
        document = load_json(stripped)
        if document is not None:
            info.kind = "json"
            _scan_json(document, headers, fields, 0)
            stripped = " ".join(_strings(document, []))[:_MAX_CAUSE_SCAN]
    _scan_text(stripped, headers, fields)
    info.missing_headers = _unique_names(headers)
    info.missing_fields = tuple(
        n for n in _unique_names(fields) if n.lower() not in info.missing_headers
    )
    _scan_runtime(stripped, info)
    return info


def _scan_runtime(text: str, info: CauseInfo) -> None:
    info.query = read_query_failure(text)
    content = _CONTENT_TYPE.search(text)
    info.content_type = content.group(1).lower() if content else ""
    info.iam_actions = tuple(dict.fromkeys(f"{m[0]}:{m[1]}" for m in _IAM_ACTION.findall(text)))
    lowered = text.lower()
    if "header" in lowered:
        info.forbidden_header = next(
            (w for w in _WORD.findall(lowered) if is_forbidden_header(w)), ""
        )


def _is_status_text(text: str, status: int | None) -> bool:
    lowered = text.lower()
    if status is not None and lowered == _STATUS_PHRASES.get(status):
        return True
    return len(text) <= 40 and lowered in _ALL_PHRASES


def _scan_text(text: str, headers: list[str], fields: list[str]) -> None:
    for pattern in _HEADER_PATTERNS:
        headers.extend(m.group(1) for m in pattern.finditer(text))
    for pattern in _FIELD_PATTERNS:
        for match in pattern.finditer(text):
            name = match.group(1)
            # "x-api-key header is required" is a header, already found above.
            if not _HEADER_AFTER.match(text[match.end(1) :].lstrip("'\"`")):
                fields.append(name)


def _scan_json(node: object, headers: list[str], fields: list[str], depth: int) -> None:
    """Structured error bodies: FastAPI `loc`, `{"field": …, "message": "required"}`, `missing: […]`."""
    if depth > 6:
        return
    if isinstance(node, list):
        for item in node[:50]:
            _scan_json(item, headers, fields, depth + 1)
        return
    if not isinstance(node, dict):
        return
    _scan_json_object(node, headers, fields)
    for value in list(node.values())[:50]:
        if isinstance(value, dict | list):
            _scan_json(value, headers, fields, depth + 1)


def _scan_json_object(node: dict[str, Any], headers: list[str], fields: list[str]) -> None:
    for key, value in node.items():
        if str(key).lower() in _MISSING_KEYS:
            names = [
                v for v in (value if isinstance(value, list) else [value]) if isinstance(v, str)
            ]
            (headers if "header" in str(key).lower() else fields).extend(names)
    message = " ".join(str(node.get(k, "")) for k in _MESSAGE_KEYS).lower()
    if "required" not in message and "missing" not in message:
        return
    loc = node.get("loc")
    if isinstance(loc, list) and loc and all(isinstance(p, str | int) for p in loc):
        parts = [str(p) for p in loc]
        if parts[0] == "header":
            headers.append(parts[-1])
        elif len(parts) > 1 and parts[0] in ("body", "query", "path"):
            fields.append(".".join(parts[1:]))
        return
    for name_key in _NAME_KEYS:
        value = node.get(name_key)
        if isinstance(value, str) and value:
            (headers if name_key == "header" or "header" in message else fields).append(value)
            return


def _strings(node: object, out: list[str]) -> list[str]:
    if len(out) > 200:
        return out
    if isinstance(node, str):
        out.append(node)
    elif isinstance(node, list):
        for item in node[:50]:
            _strings(item, out)
    elif isinstance(node, dict):
        for key, value in list(node.items())[:50]:
            out.append(f"{key}:")
            _strings(value, out)
    return out


def _unique_names(names: list[str]) -> tuple[str, ...]:
    seen: dict[str, str] = {}
    for name in names:
        clean = name.strip(".,;:'\"`[]")
        if clean and clean.lower() not in _NOT_NAMES:
            seen.setdefault(clean.lower(), clean)
    return tuple(seen.values())[:5]
