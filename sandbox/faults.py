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

`"resources": {name or ARN: kind}` in the same body makes one resource unreadable, as AWS answers
(error codes from botocore's models): `vanished` (a connection name: still listed, but
DescribeConnection answers `ResourceNotFoundException`, as when it is deleted in between),
`kms_access_denied` / `kms_invalid_state` (a state machine ARN: encrypted with a customer-managed
key the reader may not use, or one disabled; DescribeStateMachine, DescribeExecution and
DescribeStateMachineForExecution answer `KmsAccessDeniedException` / `KmsInvalidStateException`
unless asked for `includedData=METADATA_ONLY`, GetExecutionHistory always), `access_denied` (a state
machine ARN: DescribeStateMachine answers `AccessDeniedException`, as an IAM deny on that ARN; a
Map Run ARN: DescribeMapRun and the run's ListExecutions answer it; a log group name:
FilterLogEvents answers it).
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
RESOURCES = "resources"
VANISHED = "vanished"
KMS_ACCESS_DENIED = "kms_access_denied"
KMS_INVALID_STATE = "kms_invalid_state"
ACCESS_DENIED = "access_denied"
RESOURCE_KINDS = frozenset({VANISHED, KMS_ACCESS_DENIED, KMS_INVALID_STATE, ACCESS_DENIED})
KMS_KINDS = frozenset({KMS_ACCESS_DENIED, KMS_INVALID_STATE})
# The operations a resource fault applies to, and the request member naming the resource.
RESOURCE_MEMBERS = {
    "DescribeConnection": "Name",
    "DescribeStateMachine": "stateMachineArn",
    "DescribeExecution": "executionArn",
    "DescribeStateMachineForExecution": "executionArn",
    "GetExecutionHistory": "executionArn",
    "DescribeMapRun": "mapRunArn",
    "ListExecutions": "mapRunArn",  # a Map Run's children (by machine: not a resource fault)
    "FilterLogEvents": "logGroupName",
}
# These have a metadata-only answer that needs no decryption.
METADATA_ONLY_OPERATIONS = frozenset(
    {"DescribeStateMachine", "DescribeExecution", "DescribeStateMachineForExecution"}
)
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
        self._resources: dict[str, str] = {}
        self._injected: Counter[tuple[str, str]] = Counter()
        self._refused_tokens: set[str] = set()
        self._rng = random.Random(seed)  # noqa: S311 — fault shares, not secrets
        self._lock = threading.Lock()

    def configure(self, spec: dict[str, Any]) -> None:
        """Replace all rules and reset the counts (`{}` clears). Raises ValueError on a bad spec."""
        spec = dict(spec)
        resources = {str(k): str(v) for k, v in dict(spec.pop(RESOURCES, None) or {}).items()}
        unknown = set(resources.values()) - RESOURCE_KINDS
        if unknown:
            raise ValueError(f"unknown resource fault kinds: {sorted(unknown)}")
        rules = {str(op): FaultRule.parse(rule) for op, rule in spec.items()}
        with self._lock:
            self._rules = rules
            self._resources = resources
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

    def wants_resource(self, operation: str | None) -> bool:
        """Whether a call of `operation` may meet a resource fault (its body must be read)."""
        return bool(self._resources) and operation in RESOURCE_MEMBERS

    def resource_fault(self, operation: str | None, body: Any) -> tuple[str, str] | None:
        """(kind, resource) when this call names an unreadable resource, else None."""
        if operation not in RESOURCE_MEMBERS or not isinstance(body, dict):
            return None
        named = str(body.get(RESOURCE_MEMBERS[operation]) or "")
        resource = machine_of(named) if RESOURCE_MEMBERS[operation] == "executionArn" else named
        kind = self._resources.get(resource)
        if kind is None or not _applies(kind, operation, body):
            return None
        with self._lock:
            self._injected[(operation, kind)] += 1
        return kind, named

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
                "resources": dict(self._resources),
                "injected": injected,
            }


def _applies(kind: str, operation: str, body: dict[str, Any]) -> bool:
    if kind == VANISHED:
        return operation == "DescribeConnection"
    if kind == ACCESS_DENIED:
        return operation in (
            "DescribeStateMachine",
            "DescribeMapRun",
            "ListExecutions",
            "FilterLogEvents",
        )
    # KMS: everything that needs the decrypted definition or history; metadata answers do not.
    if operation in ("DescribeConnection", "FilterLogEvents"):
        return False
    return not (
        operation in METADATA_ONLY_OPERATIONS and body.get("includedData") == "METADATA_ONLY"
    )


def machine_of(execution_arn: str) -> str:
    """arn:…:execution:<machine>:<name> → arn:…:stateMachine:<machine>."""
    parts = execution_arn.split(":")
    if len(parts) < 8 or parts[5] != "execution":
        return execution_arn
    return ":".join([*parts[:5], "stateMachine", parts[6]])


def resource_response(
    kind: str, operation: str, resource: str
) -> tuple[str, list[tuple[str, str]], bytes]:
    """What AWS answers a call about an unreadable resource (HTTP 400 with the error shape)."""
    if kind == VANISHED:
        body: dict[str, Any] = {
            "__type": "ResourceNotFoundException",
            "message": f"Failed to describe the connection(s). Connection '{resource}' does not exist.",
        }
    elif kind == KMS_ACCESS_DENIED:
        body = {
            "__type": "KmsAccessDeniedException",
            "message": "The caller is not authorized to perform kms:Decrypt on the KMS key of"
            f" this state machine ({operation}).",
        }
    elif kind == KMS_INVALID_STATE:
        body = {
            "__type": "KmsInvalidStateException",
            "kmsKeyState": "DISABLED",
            "message": "The KMS key of this state machine is not in a valid state: DISABLED.",
        }
    else:
        body = {
            "__type": "AccessDeniedException",
            "message": f"User: arn:aws:iam::123456789012:user/testing is not authorized to perform:"
            f" {'logs' if operation == 'FilterLogEvents' else 'states'}:{operation} on resource:"
            f" {resource} with an explicit deny in an"
            " identity-based policy",
        }
    return _answer(400, body)


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
    return _answer(status, body)


def _answer(status: int, body: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
    payload = json.dumps(body).encode()
    reason = "Bad Request" if status == 400 else "Internal Server Error"
    headers = [
        ("Content-Type", "application/x-amz-json-1.0"),
        ("Content-Length", str(len(payload))),
        ("x-amzn-ErrorType", str(body["__type"])),
    ]
    return f"{status} {reason}", headers, payload
