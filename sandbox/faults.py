"""Fault injection on the AWS endpoint: throttle or fail a chosen share of calls per operation.

Configured over HTTP on the sandbox endpoint, e.g.
`POST /_sandbox/faults {"GetExecutionHistory": {"throttle": 0.3, "error": 0.1}, "*": {...}}`.
Throttles are answered as AWS does (HTTP 400 `ThrottlingException` "Rate exceeded"); errors as an
HTTP 500 `InternalFailure`. `invalid_token` is the share of calls *carrying a pagination token*
answered HTTP 400 `InvalidToken`, as when a token has expired; each token is refused at most once,
because a listing started again gets fresh tokens on AWS (the sandbox's are the same strings).
`page_size` caps the page size the caller asked for (maxResults/limit), so that a small sandbox
still has listings of several pages.
`DELETE /_sandbox/faults` clears them; `GET` shows them and the counts.
"""

from __future__ import annotations

import json
import random
import threading
from collections import Counter
from dataclasses import dataclass
from typing import Any

THROTTLE = "throttle"
ERROR = "error"
INVALID_TOKEN = "invalid_token"
PAGE_SIZE = "page_size"
_BODIES = {
    THROTTLE: (400, {"__type": "ThrottlingException", "message": "Rate exceeded"}),
    ERROR: (500, {"__type": "InternalFailure", "message": "An internal error occurred."}),
    INVALID_TOKEN: (400, {"__type": "InvalidToken", "message": "Invalid Token: 'Token expired'"}),
}
# Request members that hold a pagination token or a page size, across the JSON APIs we serve.
TOKEN_KEYS = ("nextToken", "NextToken")
SIZE_KEYS = ("maxResults", "MaxResults", "limit", "Limit")


@dataclass(frozen=True)
class FaultRule:
    throttle: float = 0.0
    error: float = 0.0
    invalid_token: float = 0.0  # share of the calls that carry a pagination token
    page_size: int = 0  # 0: as asked

    @classmethod
    def parse(cls, spec: dict[str, Any]) -> FaultRule:
        unknown = set(spec) - {THROTTLE, ERROR, INVALID_TOKEN, PAGE_SIZE}
        if unknown:
            raise ValueError(f"unknown fault kinds: {sorted(unknown)}")
        rule = cls(
            throttle=float(spec.get(THROTTLE, 0)),
            error=float(spec.get(ERROR, 0)),
            invalid_token=float(spec.get(INVALID_TOKEN, 0)),
            page_size=int(spec.get(PAGE_SIZE, 0)),
        )
        if not (
            0 <= rule.throttle <= 1 and 0 <= rule.error <= 1 and rule.throttle + rule.error <= 1
        ):
            raise ValueError("fault shares must be between 0 and 1 and sum to at most 1")
        if not (0 <= rule.invalid_token <= 1 and rule.page_size >= 0):
            raise ValueError("invalid_token must be between 0 and 1 and page_size at least 0")
        return rule


class FaultInjector:
    """Per-operation fault shares; thread-safe, seeded for reproducible runs."""

    def __init__(self, seed: int | None = None):
        self._rules: dict[str, FaultRule] = {}
        self._injected: Counter[tuple[str, str]] = Counter()
        self._refused_tokens: set[str] = set()
        self._rng = random.Random(seed)  # noqa: S311 — fault shares, not secrets
        self._lock = threading.Lock()

    def configure(self, spec: dict[str, Any]) -> None:
        """Replace all rules and reset the counts (`{}` clears). Raises ValueError on a bad spec."""
        rules = {str(op): FaultRule.parse(rule) for op, rule in spec.items()}
        with self._lock:
            self._rules = rules
            self._injected.clear()
            self._refused_tokens.clear()

    def decide(self, operation: str | None, token: str | None = None) -> str | None:
        """THROTTLE, ERROR, INVALID_TOKEN or None for one call of `operation` (with `token`)."""
        if operation is None:
            return None
        with self._lock:
            rule = self.rule_for(operation)
            if rule is None:
                return None
            draw = self._rng.random()
            kind = (
                THROTTLE
                if draw < rule.throttle
                else ERROR
                if draw < rule.throttle + rule.error
                else None
            )
            if (
                kind is None
                and token
                and token not in self._refused_tokens
                and self._rng.random() < rule.invalid_token
            ):
                self._refused_tokens.add(token)
                kind = INVALID_TOKEN
            if kind:
                self._injected[(operation, kind)] += 1
            return kind

    def rule_for(self, operation: str | None) -> FaultRule | None:
        if operation is None:
            return None
        return self._rules.get(operation) or self._rules.get("*")

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            injected: dict[str, dict[str, int]] = {}
            for (operation, kind), count in self._injected.items():
                injected.setdefault(operation, {})[kind] = count
            return {
                "rules": {
                    op: {
                        THROTTLE: r.throttle,
                        ERROR: r.error,
                        INVALID_TOKEN: r.invalid_token,
                        PAGE_SIZE: r.page_size,
                    }
                    for op, r in self._rules.items()
                },
                "injected": injected,
            }


def operation_of(environ: dict[str, Any]) -> str | None:
    """The AWS operation a WSGI request calls (JSON protocols name it in X-Amz-Target)."""
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        return str(target).rsplit(".", 1)[-1]
    return None


def token_of(body: dict[str, Any]) -> str | None:
    """The pagination token a request carries, if any."""
    return next((str(body[key]) for key in TOKEN_KEYS if body.get(key)), None)


def cap_page_size(body: dict[str, Any], page_size: int) -> bool:
    """Lower the page size the caller asked for to `page_size`; True when the body changed."""
    changed = False
    for key in SIZE_KEYS:
        asked = body.get(key)
        if isinstance(asked, int) and asked > page_size:
            body[key] = page_size
            changed = True
    return changed


def response(kind: str) -> tuple[str, list[tuple[str, str]], bytes]:
    """WSGI status line, headers and body of an injected fault."""
    status, body = _BODIES[kind]
    payload = json.dumps(body).encode()
    reason = "Bad Request" if status == 400 else "Internal Server Error"
    headers = [
        ("Content-Type", "application/x-amz-json-1.0"),
        ("Content-Length", str(len(payload))),
        ("x-amzn-ErrorType", str(body["__type"])),
    ]
    return f"{status} {reason}", headers, payload
