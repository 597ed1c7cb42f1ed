"""Fault injection on the AWS endpoint: throttle or fail a chosen share of calls per operation.

Configured over HTTP on the sandbox endpoint, e.g.
`POST /_sandbox/faults {"GetExecutionHistory": {"throttle": 0.3, "error": 0.1}, "*": {...}}`.
Throttles are answered as AWS does (HTTP 400 `ThrottlingException` "Rate exceeded"); errors as an
HTTP 500 `InternalFailure`. `DELETE /_sandbox/faults` clears them; `GET` shows them and the counts.
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
_BODIES = {
    THROTTLE: (400, {"__type": "ThrottlingException", "message": "Rate exceeded"}),
    ERROR: (500, {"__type": "InternalFailure", "message": "An internal error occurred."}),
}


@dataclass(frozen=True)
class FaultRule:
    throttle: float = 0.0
    error: float = 0.0

    @classmethod
    def parse(cls, spec: dict[str, Any]) -> FaultRule:
        unknown = set(spec) - {THROTTLE, ERROR}
        if unknown:
            raise ValueError(f"unknown fault kinds: {sorted(unknown)}")
        rule = cls(throttle=float(spec.get(THROTTLE, 0)), error=float(spec.get(ERROR, 0)))
        if not (
            0 <= rule.throttle <= 1 and 0 <= rule.error <= 1 and rule.throttle + rule.error <= 1
        ):
            raise ValueError("fault shares must be between 0 and 1 and sum to at most 1")
        return rule


class FaultInjector:
    """Per-operation fault shares; thread-safe, seeded for reproducible runs."""

    def __init__(self, seed: int | None = None):
        self._rules: dict[str, FaultRule] = {}
        self._injected: Counter[tuple[str, str]] = Counter()
        self._rng = random.Random(seed)  # noqa: S311 — fault shares, not secrets
        self._lock = threading.Lock()

    def configure(self, spec: dict[str, Any]) -> None:
        """Replace all rules and reset the counts (`{}` clears). Raises ValueError on a bad spec."""
        rules = {str(op): FaultRule.parse(rule) for op, rule in spec.items()}
        with self._lock:
            self._rules = rules
            self._injected.clear()

    def decide(self, operation: str | None) -> str | None:
        """THROTTLE, ERROR or None for one call of `operation`."""
        if operation is None:
            return None
        with self._lock:
            rule = self._rules.get(operation) or self._rules.get("*")
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
            if kind:
                self._injected[(operation, kind)] += 1
            return kind

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            injected: dict[str, dict[str, int]] = {}
            for (operation, kind), count in self._injected.items():
                injected.setdefault(operation, {})[kind] = count
            return {
                "rules": {
                    op: {THROTTLE: r.throttle, ERROR: r.error} for op, r in self._rules.items()
                },
                "injected": injected,
            }


def operation_of(environ: dict[str, Any]) -> str | None:
    """The AWS operation a WSGI request calls (JSON protocols name it in X-Amz-Target)."""
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        return str(target).rsplit(".", 1)[-1]
    return None


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
