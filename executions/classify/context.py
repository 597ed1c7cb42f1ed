"""What the classifier knows beyond the attempt: connection states and request shapes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl

from executions.history import HttpStateInfo, ParsedAttempt
from executions.history.events import load_json

_MAX_SHAPE_KEYS = 500
_MAX_SHAPE_DEPTH = 8


@dataclass(frozen=True, slots=True)
class ConnectionStateChange:
    """One EventBridge connection state change (DescribeConnection / state-change events)."""

    at: datetime
    state: str
    reason: str


@dataclass(frozen=True, slots=True)
class RequestShape:
    """The names (never the values) a request sent: enough to diff a failure against a success."""

    header_names: frozenset[str]
    query_keys: frozenset[str]
    body_keys: frozenset[str]

    @classmethod
    def of(cls, attempt: ParsedAttempt | Mapping[str, Any]) -> RequestShape:
        headers: object
        if isinstance(attempt, ParsedAttempt):
            headers, query, body = (
                attempt.request_headers,
                attempt.request_query,
                attempt.request_body,
            )
        else:
            headers = attempt.get("request_headers")
            query, body = attempt.get("request_query"), attempt.get("request_body")
        return cls.from_request(headers, query, body)

    @classmethod
    def from_request(cls, headers: object, query: object, body: object) -> RequestShape:
        """The shape of a request given as its Headers, QueryParameters and RequestBody."""
        return cls(
            header_names=_header_names(headers),
            # Most requests have no query or no body: skip the type probing for those.
            query_keys=_NONE if query is None else _query_keys(query),
            body_keys=_NONE if body is None else _body_keys(body),
        )


@dataclass(frozen=True, slots=True)
class ClassificationContext:
    """What is known beyond the attempt itself; every field is optional."""

    connection_states: Sequence[ConnectionStateChange] = ()
    last_success_shape: RequestShape | None = None
    definition_state: HttpStateInfo | None = None
    connection_name: str = ""


# --------------------------------------------------------------------------- shapes

_NONE: frozenset[str] = frozenset()


def _header_names(headers: object) -> frozenset[str]:
    if type(headers) is dict or isinstance(headers, Mapping):
        return frozenset(str(k).lower() for k in headers) if headers else _NONE
    return _NONE


def _query_keys(query: object) -> frozenset[str]:
    if isinstance(query, Mapping):
        return frozenset(str(k) for k in query)
    if isinstance(query, str):
        return frozenset(k for k, _ in parse_qsl(query.lstrip("?"), keep_blank_values=True))
    if isinstance(query, list):
        return frozenset(
            str(i).split("=", 1)[0] for i in query[:_MAX_SHAPE_KEYS] if isinstance(i, str)
        )
    return frozenset()


def _body_keys(body: object) -> frozenset[str]:
    if isinstance(body, str):
        body = _parse_body_text(body)
    keys: set[str] = set()
    _collect_keys(body, "", keys, 0)
    return frozenset(keys)


def _parse_body_text(text: str) -> object:
    stripped = text.strip()
    if stripped[:1] in ("{", "["):
        return load_json(stripped)
    if "=" in stripped and " " not in stripped:  # URL_ENCODED bodies
        return dict(parse_qsl(stripped, keep_blank_values=True))
    return None


def _collect_keys(node: object, prefix: str, keys: set[str], depth: int) -> None:
    if depth > _MAX_SHAPE_DEPTH or len(keys) >= _MAX_SHAPE_KEYS:
        return
    if isinstance(node, Mapping):
        for key, value in node.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            keys.add(path)
            _collect_keys(value, path, keys, depth + 1)
    elif isinstance(node, list):
        for item in node[:20]:
            _collect_keys(item, f"{prefix}[]", keys, depth + 1)


def shape_diff(success: RequestShape | None, failure: RequestShape) -> dict[str, list[str]]:
    """Names present in the last success and absent from the failure, per kind (empty: none)."""
    if success is None:
        return {}
    diff = {
        "headers": sorted(success.header_names - failure.header_names),
        "query": sorted(success.query_keys - failure.query_keys),
        "body": _topmost(success.body_keys - failure.body_keys),
    }
    return {k: v for k, v in diff.items() if v}


def _topmost(missing: frozenset[str]) -> list[str]:
    # When "customer" is missing, "customer.id" is too; naming the parent says it all.
    return sorted(
        k
        for k in missing
        if not any(k.startswith(p + ".") or k.startswith(p + "[]") for p in missing if p != k)
    )
