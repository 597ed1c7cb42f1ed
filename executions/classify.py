"""Explain HTTP-task failures: a category from a fixed vocabulary, the evidence, a fix hint.

Pure (stdlib only). The rules are ordered, versioned data (`RULES`, `RULES_VERSION`); the first
rule that matches decides, and every result carries the version so stored attempts can be
reclassified when the rules change. A rule never claims more than its evidence: a bare 400 with
the status text as cause (all real AWS gives) is `client_error`, not a guessed missing field.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl

from connections.endpoint_templates import endpoint_template
from executions.history import (
    OUTCOME_IN_PROGRESS,
    OUTCOME_SUCCEEDED,
    OUTCOME_TIMED_OUT,
    HttpStateInfo,
    ParsedAttempt,
)

RULES_VERSION = "2026.11.1"
CATEGORIES = (
    "timeout",
    "auth",
    "permissions",
    "missing_header",
    "missing_parameter",
    "rate_limited",
    "client_error",
    "server_error",
    "network",
    "payload_too_large",
    "invalid_request",
    "unknown",
)
HTTP_TASK_TIMEOUT_MS = 60_000
# Socket errors this close to the hard 60 s cap are the cap, not the network.
NEAR_TIMEOUT_CAP_MS = 55_000
CONNECTION_SECRET_ARN = "arn:aws:secretsmanager:*:*:secret:events!connection/*"

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
_CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization"})

_MAX_SHAPE_KEYS = 500
_MAX_SHAPE_DEPTH = 8
_MAX_CAUSE_SCAN = 8_000  # causes can be 32 KiB; names of missing things come early


# --------------------------------------------------------------------------- public types


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
        return cls(
            header_names=frozenset(str(k).lower() for k in headers)
            if isinstance(headers, Mapping)
            else frozenset(),
            query_keys=_query_keys(query),
            body_keys=_body_keys(body),
        )


@dataclass(frozen=True, slots=True)
class ClassificationContext:
    """What is known beyond the attempt itself; every field is optional."""

    connection_states: Sequence[ConnectionStateChange] = ()
    last_success_shape: RequestShape | None = None
    definition_state: HttpStateInfo | None = None
    connection_name: str = ""


@dataclass(frozen=True, slots=True)
class Classification:
    category: str | None  # None on success
    subcategory: str
    evidence: dict[str, Any]
    hint: str
    rules_version: str
    rule_id: str


# --------------------------------------------------------------------------- facts


@dataclass(slots=True)
class _CauseInfo:
    kind: str = "empty"  # empty | status_text | json | text
    missing_headers: tuple[str, ...] = ()
    missing_fields: tuple[str, ...] = ()
    jsonpath: str = ""
    jsonpath_field: str = ""
    forbidden_header: str = ""
    iam_actions: tuple[str, ...] = ()
    content_type: str = ""


_NO_CAUSE = _CauseInfo()  # shared and never mutated: successes have no cause to read


@dataclass(slots=True)
class _Facts:
    """Everything the rules look at, derived once per attempt."""

    attempt: ParsedAttempt
    context: ClassificationContext
    error: str
    status: int | None
    cause: _CauseInfo
    decided_by: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    _diff: dict[str, list[str]] | None = None
    _endpoint: str | None = None

    @property
    def endpoint(self) -> str:
        # Only hints need it, and successes (most attempts) have none.
        if self._endpoint is None:
            self._endpoint = endpoint_template(self.attempt.url) if self.attempt.url else ""
        return self._endpoint

    @property
    def duration_ms(self) -> int | None:
        return self.attempt.duration_ms

    @property
    def connection(self) -> str:
        return _connection_label(self.context.connection_name, self.attempt.connection_arn)

    @property
    def call(self) -> str:
        method = self.attempt.method or "the call"
        return f"{method} {self.endpoint}" if self.endpoint else method

    def shape_diff(self) -> dict[str, list[str]]:
        """Names present in the last success to this endpoint and absent from this attempt."""
        if self._diff is None:
            self._diff = _shape_diff(self.context.last_success_shape, RequestShape.of(self.attempt))
        return self._diff

    def forbidden_header(self) -> tuple[str, str]:
        """A header Step Functions refuses, and where it was seen (what was sent wins)."""
        headers = self.attempt.request_headers
        sent = {str(k).lower() for k in headers} if isinstance(headers, Mapping) else set()
        declared = (
            self.context.definition_state.header_names
            if self.context.definition_state
            else frozenset()
        )
        for names, source in ((sent, "request_headers"), (declared, "definition_state")):
            found = next((h for h in sorted(names) if is_forbidden_header(h)), "")
            if found:
                return found, source
        return self.cause.forbidden_header, "cause"


# --------------------------------------------------------------------------- rules


@dataclass(frozen=True, slots=True)
class Rule:
    """When `errors`/`statuses`/`outcomes` (empty = any) and `check` all hold, the rule decides."""

    id: str
    category: str | None
    subcategory: str  # "{status}" is replaced by the status code
    hint: Callable[[_Facts], str]
    errors: frozenset[str] = frozenset()
    statuses: tuple[int, int] | None = None
    outcomes: frozenset[str] = frozenset()
    check: Callable[[_Facts], bool] | None = None
    decided_by: tuple[str, ...] = ("error",)

    def admits(self, outcome: str, error: str, status: int | None) -> bool:
        """The static part of the match: what the rule's data says, without `check`."""
        if self.outcomes and outcome not in self.outcomes:
            return False
        if self.errors and error not in self.errors:
            return False
        return self.statuses is None or (
            status is not None and self.statuses[0] <= status <= self.statuses[1]
        )

    def matches(self, facts: _Facts) -> bool:
        admitted = self.admits(facts.attempt.outcome, facts.error, facts.status)
        return admitted and (self.check is None or self.check(facts))


def classify(
    attempt: ParsedAttempt, context: ClassificationContext = ClassificationContext()
) -> Classification:
    """The first rule in RULES that matches decides category, subcategory and hint."""
    facts = _facts(attempt, context)
    for rule in _candidates(attempt.outcome, facts.error, facts.status):
        if rule.check is None or rule.check(facts):
            return _result(rule, facts)
    return _result(_FALLBACK, facts)  # unreachable: the last rule matches everything


def needs_last_success(attempt: ParsedAttempt) -> bool:
    """Whether the last success's request shape can change this attempt's class (a 4xx).

    Callers skip building the shape otherwise; successes vastly outnumber client errors.
    """
    status = attempt.status_code
    return attempt.outcome != OUTCOME_SUCCEEDED and isinstance(status, int) and 400 <= status < 500


@lru_cache(maxsize=1024)
def _candidates(outcome: str, error: str, status: int | None) -> tuple[Rule, ...]:
    # The same few (outcome, error, status) combinations recur endlessly; the rules whose
    # data admits them are computed once, leaving only the `check` functions per attempt.
    return tuple(rule for rule in RULES if rule.admits(outcome, error, status))


def _facts(attempt: ParsedAttempt, context: ClassificationContext) -> _Facts:
    error = attempt.error if isinstance(attempt.error, str) else ""
    status = attempt.status_code if isinstance(attempt.status_code, int) else None
    failed = attempt.outcome not in (OUTCOME_SUCCEEDED, OUTCOME_IN_PROGRESS)
    return _Facts(
        attempt=attempt,
        context=context,
        error=error,
        status=status,
        # Successes are the bulk of history; only failures pay for reading the cause.
        cause=_read_cause(attempt.cause, status) if failed else _NO_CAUSE,
    )


def _result(rule: Rule, facts: _Facts) -> Classification:
    hint = rule.hint(facts)
    subcategory = rule.subcategory.replace("{status}", str(facts.status))
    return Classification(
        category=rule.category,
        subcategory=subcategory,
        evidence=_evidence(rule, facts),
        hint=hint,
        rules_version=RULES_VERSION,
        rule_id=rule.id,
    )


def _evidence(rule: Rule, facts: _Facts) -> dict[str, Any]:
    attempt = facts.attempt
    evidence: dict[str, Any] = {
        "decided_by": list(dict.fromkeys([*rule.decided_by, *facts.decided_by])),
        "error": facts.error,
        "status_code": facts.status,
        "outcome": attempt.outcome,
        "closed_event": attempt.closed_event_type,
        "duration_ms": facts.duration_ms,
        "cause_kind": facts.cause.kind,
    }
    if attempt.outcome not in (OUTCOME_SUCCEEDED, OUTCOME_IN_PROGRESS):
        evidence["final_attempt"] = attempt.final_attempt
        evidence["caught"] = attempt.caught
    evidence.update(facts.extra)
    return evidence


# ----------------------------------------------------------------- checks (rule conditions)


def _near_cap(f: _Facts) -> bool:
    if f.duration_ms is not None and f.duration_ms >= NEAR_TIMEOUT_CAP_MS:
        f.decided_by.append("duration_ms")
        return True
    return False


def _forbidden_header(f: _Facts) -> bool:
    header, source = f.forbidden_header()
    if header:
        f.extra["forbidden_header"] = header
        f.decided_by.append(source)
    return bool(header)


def _cause_jsonpath(f: _Facts) -> bool:
    # Only before an HTTP answer: a response body may well mention JSONPath itself.
    if f.cause.jsonpath and f.status is None:
        f.extra["jsonpath"] = f.cause.jsonpath
        if f.cause.jsonpath_field:
            f.extra["field"] = f.cause.jsonpath_field
        f.decided_by.append("cause")
        return True
    return False


def _cause_content_type(f: _Facts) -> bool:
    if f.cause.content_type:
        f.extra["content_type"] = f.cause.content_type
        f.decided_by.append("cause")
    return bool(f.cause.content_type)


def _cause_names_header(f: _Facts) -> bool:
    if f.cause.missing_headers:
        f.extra["missing_headers"] = list(f.cause.missing_headers)
        f.decided_by.append("cause")
    return bool(f.cause.missing_headers)


def _cause_names_field(f: _Facts) -> bool:
    if f.cause.missing_fields:
        f.extra["missing_fields"] = list(f.cause.missing_fields)
        f.decided_by.append("cause")
    return bool(f.cause.missing_fields)


def _diff_headers(f: _Facts) -> bool:
    diff = f.shape_diff()
    if diff.get("headers"):
        f.extra["shape_diff"] = diff
        f.decided_by.append("last_success_shape")
    return bool(diff.get("headers"))


def _diff_params(f: _Facts) -> bool:
    diff = f.shape_diff()
    if diff.get("query") or diff.get("body"):
        f.extra["shape_diff"] = diff
        f.decided_by.append("last_success_shape")
        return True
    return False


def _note_diff(f: _Facts) -> bool:
    # Auth failures keep their class, but a missing credential header is worth saying.
    diff = f.shape_diff()
    if diff:
        f.extra["shape_diff"] = diff
    return True


def _aborted(f: _Facts) -> bool:
    return f.attempt.closed_event_type in ("TaskStateAborted", "ExecutionAborted")


def _execution_timed_out(f: _Facts) -> bool:
    return f.attempt.closed_event_type == "ExecutionTimedOut"


def _task_timed_out(f: _Facts) -> bool:
    return f.error == "States.Timeout" or f.attempt.outcome == OUTCOME_TIMED_OUT


def _permission_denied(f: _Facts) -> bool:
    # Some runtimes report the missing grant only in the cause ("not authorized to perform").
    return f.error == "States.Permissions" or any(
        a.startswith("states:") for a in f.cause.iam_actions
    )


def _no_error(f: _Facts) -> bool:
    return not f.error


# ----------------------------------------------------------------- hints


def _hint_success(f: _Facts) -> str:
    return ""


def _hint_partial(f: _Facts) -> str:
    return (
        f"{f.call} answered 206 Partial Content: Step Functions sends `Range: bytes=0-262144`, "
        "so the body may be only the first 256 KiB of the resource"
    )


def _hint_in_progress(f: _Facts) -> str:
    return f"{f.call} had not finished when the history was read"


def _hint_execution_timeout(f: _Facts) -> str:
    return (
        f"the execution's own TimeoutSeconds ran out while {f.call} was in flight — raise the "
        "state machine's TimeoutSeconds or shorten the work before this state"
    )


def _hint_task_timeout(f: _Facts) -> str:
    limit = f.attempt.timeout_seconds
    said = f"TimeoutSeconds ({limit} s)" if limit else "TimeoutSeconds"
    return (
        f"the state's {said} elapsed before {f.call} answered — raise TimeoutSeconds (HTTP tasks "
        "stop at 60 s regardless) or make the endpoint answer faster"
    )


def _hint_cap(f: _Facts) -> str:
    took = f" after {f.duration_ms / 1000:.1f} s" if f.duration_ms is not None else ""
    return (
        f"the call ran into the 60-second HTTP task limit: {f.call} gave no answer{took} — "
        "make the endpoint reply within 60 s (e.g. accept the work with 202 and poll for the "
        "result); a larger TimeoutSeconds does not help"
    )


def _hint_socket(f: _Facts) -> str:
    took = (
        f"after {f.duration_ms / 1000:.1f} s"
        if f.duration_ms is not None
        else "(duration unknown — if it took about 60 s, it was the HTTP task time limit)"
    )
    return (
        f"no HTTP response from {f.call} {took}: the connection failed (DNS, TLS, refused or "
        "reset) — check the host is public, serves HTTPS with a valid certificate, and is up"
    )


def _hint_deauthorized(f: _Facts) -> str:
    change = _deauthorization(f)
    fix = "fix the credentials and call UpdateConnection"
    if change is None:
        return (
            f"connection {f.connection} is not authorized (InvalidConnectionState); EventBridge "
            f"de-authorizes Basic/API-key connections after a 401 or 407 — {fix}"
        )
    status = re.search(r"\b(401|407)\b", change.reason)
    after = f" after a {status.group(1)}" if status else ""
    why = "" if status else f" ({change.reason})" if change.reason else ""
    return f"connection {f.connection} was de-authorized{after} at {_iso(change.at)}{why} — {fix}"


def _hint_private(f: _Facts) -> str:
    return (
        f"the private-API connection {f.connection} is not ACTIVE (e.g. FAILED_CONNECTIVITY): "
        "check its VPC Lattice resource configuration, then call UpdateConnection"
    )


def _hint_connection_credentials(f: _Facts) -> str:
    actions = [a for a in f.cause.iam_actions if not a.startswith("states:")]
    f.extra["iam_actions"] = actions or [
        "events:RetrieveConnectionCredentials",
        "secretsmanager:GetSecretValue",
        "secretsmanager:DescribeSecret",
    ]
    named = f"the role lacks {', '.join(actions)}" if actions else "the execution role cannot read"
    arn = f.attempt.connection_arn or "arn:aws:events:*:*:connection/*"
    policy: list[dict[str, Any]] = [
        {"Effect": "Allow", "Action": "events:RetrieveConnectionCredentials", "Resource": arn},
        {
            "Effect": "Allow",
            "Action": ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
            "Resource": CONNECTION_SECRET_ARN,
        },
    ]
    return (
        f"{named} the credentials of connection {f.connection}: grant "
        f"events:RetrieveConnectionCredentials and secretsmanager:GetSecretValue + DescribeSecret "
        f"on the connection's secret — {_policy(policy)}"
    )


def _hint_invoke_permission(f: _Facts) -> str:
    actions = [a for a in f.cause.iam_actions if a.startswith("states:")]
    action = actions[0] if actions else "states:InvokeHTTPEndpoint"
    f.extra["iam_actions"] = [action]
    statement: dict[str, Any] = {
        "Effect": "Allow",
        "Action": action,
        "Resource": _state_machine_arn(f.attempt.connection_arn),
    }
    if action == "states:InvokeHTTPEndpoint":
        statement["Condition"] = _endpoint_condition(f)
    return f"the execution role is not allowed {action} for {f.call} — add {_policy([statement])}"


def _hint_connection_missing(f: _Facts) -> str:
    return (
        f"connection {f.connection} does not exist (deleted, or the ARN is for another "
        "account/region) — fix ConnectionArn in the state or recreate the connection"
    )


def _hint_authorizing(f: _Facts) -> str:
    return (
        f"connection {f.connection} was still AUTHORIZING (OAuth token exchange) — retry on "
        "Events.ConnectionResource.AuthInProgress, and check the OAuth endpoint if it persists"
    )


def _hint_concurrent(f: _Facts) -> str:
    return (
        f"connection {f.connection} was being updated during the call — retry on "
        "Events.ConnectionResource.ConcurrentModification"
    )


def _hint_eventbridge(f: _Facts) -> str:
    return f"EventBridge failed internally while preparing {f.call} — retry; AWS-side, not yours"


def _hint_data_limit(f: _Facts) -> str:
    return (
        f"the response exceeded 256 KiB: {f.call} returned more than Step Functions keeps — ask "
        "the API for less (paging, fields filter); a 206 to the Range header is the same limit"
    )


def _hint_request_too_large(f: _Facts) -> str:
    size = _json_size(f.attempt.request_body)
    said = f" ({size} bytes as JSON)" if size else ""
    return f"{f.call} rejected the request body{said} as too large (413) — send less per call"


def _hint_forbidden_header(f: _Facts) -> str:
    header = f.extra.get("forbidden_header", "")
    if header in _CREDENTIAL_HEADERS:
        place = (
            f"put the credential in connection {f.connection}'s authorization (Basic, API key "
            "or OAuth), not in the task"
        )
    else:
        place = (
            f"set it in connection {f.connection}'s InvocationHttpParameters (HeaderParameters) "
            "if the API really needs it"
        )
    return f"header '{header}' is not allowed in the task's Headers — remove it there and {place}"


def _hint_jsonpath(f: _Facts) -> str:
    where = f" (for {f.cause.jsonpath_field})" if f.cause.jsonpath_field else ""
    return (
        f"the path {f.cause.jsonpath}{where} found nothing in the state's input, so no request "
        "was sent — make the previous state produce it, or give it a default"
    )


def _hint_content_type(f: _Facts) -> str:
    return (
        f"{f.call} answered with content type {f.cause.content_type}, which HTTP tasks cannot "
        "read (binary, image, audio, video) — ask for a text/JSON representation"
    )


def _hint_runtime(f: _Facts) -> str:
    return (
        f"States.Runtime without a named reason for {f.call}: check for a forbidden header in "
        "Headers, a JSONPath that found nothing, a binary response, or a string RequestBody "
        "combined with connection body parameters"
    )


def _hint_unauthorized(f: _Facts) -> str:
    code = f.status or 401
    extra = _diff_sentence(f, "headers")
    return (
        f"{f.call} rejected the credentials of connection {f.connection} ({code}); EventBridge "
        f"de-authorizes Basic/API-key connections after a {code}, so later calls fail with "
        f"InvalidConnectionState until you fix the secret and call UpdateConnection{extra}"
    )


def _hint_forbidden(f: _Facts) -> str:
    return (
        f"{f.call} refused the caller (403): the API accepted connection {f.connection}'s "
        "credentials but they lack access to this resource — check the API-side scopes/roles "
        f"(this is not IAM){_diff_sentence(f, 'headers')}"
    )


def _hint_rate_limited(f: _Facts) -> str:
    retried = "" if f.attempt.final_attempt else " (this attempt was retried)"
    return (
        f"{f.call} is rate-limiting (429){retried} — add a Retry on States.Http.StatusCode.429 "
        "with BackoffRate and JitterStrategy FULL, or lower the Map's MaxConcurrency"
    )


def _hint_408(f: _Facts) -> str:
    return f"{f.call} gave up waiting for the request (408) — retry, or check what slows it"


def _hint_cause_header(f: _Facts) -> str:
    names = ", ".join(f.cause.missing_headers)
    return (
        f"{f.call} says header {names} is missing — add it to the state's Headers, or to "
        f"connection {f.connection}'s InvocationHttpParameters if it is a credential"
    )


def _hint_cause_field(f: _Facts) -> str:
    names = ", ".join(f.cause.missing_fields)
    return f"{f.call} says {names} is missing or required — add it to the request"


def _hint_diff_header(f: _Facts) -> str:
    names = ", ".join(f.shape_diff()["headers"])
    return (
        f"{f.call} failed ({f.status}) without header {names}, which the last successful call "
        "to this endpoint sent — add it back to the state's Headers"
    )


def _hint_diff_param(f: _Facts) -> str:
    diff = f.shape_diff()
    parts = [f"query parameter {', '.join(diff['query'])}"] if diff.get("query") else []
    if diff.get("body"):
        parts.append(f"body key {', '.join(diff['body'])}")
    return (
        f"{f.call} failed ({f.status}) without {' and '.join(parts)}, which the last successful "
        "call to this endpoint sent — add it back to the request"
    )


def _hint_client_error(f: _Facts) -> str:
    status = f.status or 400
    advice = _CLIENT_ADVICE.get(status, "check the request against the API's documentation")
    seen = (
        "AWS keeps only the status text, not the body"
        if f.cause.kind in ("empty", "status_text")
        else "the cause holds the response body"
    )
    compare = (
        "no successful call to this endpoint is known to compare with"
        if f.context.last_success_shape is None
        else "it sent the same header, query and body names as the last successful call"
    )
    return (
        f"{f.call} rejected the request ({status} {_phrase(status)}): {advice}; {seen}, and "
        f"{compare} — replay it with TestState (inspectionLevel TRACE) to see the response"
    )


def _hint_server_error(f: _Facts) -> str:
    status = f.status or 500
    advice = _SERVER_ADVICE.get(status, "the API failed on its side")
    return f"{f.call} failed on the server ({status} {_phrase(status)}): {advice} — add a Retry with backoff"


def _hint_other_status(f: _Facts) -> str:
    status = f.status or 0
    said = f"{f.call} answered {status} {_phrase(status)}, which the HTTP task treated as a failure"
    if 300 <= status < 400:
        return f"{said} — point ApiEndpoint at the final URL instead of one that redirects"
    return f"{said} — check what the endpoint means by it"


def _hint_aborted(f: _Facts) -> str:
    return f"{f.call} was still in flight when the state or execution was aborted (StopExecution, or a failing sibling branch)"


def _hint_unknown(f: _Facts) -> str:
    if not f.error:
        return (
            f"{f.call} failed without an error name in the history — look at the execution's events"
        )
    return f"{f.call} failed with {f.error}, which no rule in {RULES_VERSION} recognises"


_CLIENT_ADVICE = {
    400: "the endpoint found the request malformed",
    404: "nothing at this path — check ApiEndpoint and the ids in it",
    405: "the endpoint does not accept this Method",
    409: "the request conflicts with the resource's current state (duplicate or stale)",
    410: "the resource is gone",
    411: "the endpoint wants a Content-Length (send a RequestBody)",
    415: "the endpoint does not accept this body encoding — check Content-Type and Transform",
    422: "the body is well-formed but its values were rejected",
}
_SERVER_ADVICE = {
    500: "the API raised an error",
    501: "the API does not implement this method",
    502: "a gateway in front of the API got a bad answer",
    503: "the API is down or overloaded",
    504: "a gateway in front of the API timed out waiting for it",
}


# ----------------------------------------------------------------- the rules, in order

_CONNECTION = "Events.ConnectionResource."

# fmt: off
RULES: tuple[Rule, ...] = (
    Rule("success.partial", None, "partial_content", _hint_partial,
         outcomes=frozenset({OUTCOME_SUCCEEDED}), statuses=(206, 206), decided_by=("status_code",)),
    Rule("success", None, "succeeded", _hint_success,
         outcomes=frozenset({OUTCOME_SUCCEEDED}), decided_by=("outcome",)),
    Rule("in_progress", None, "in_progress", _hint_in_progress,
         outcomes=frozenset({OUTCOME_IN_PROGRESS}), decided_by=("outcome",)),
    Rule("timeout.execution", "timeout", "execution_timeout", _hint_execution_timeout,
         check=_execution_timed_out, decided_by=("closed_event",)),
    Rule("timeout.task", "timeout", "task_timeout", _hint_task_timeout, check=_task_timed_out),
    Rule("timeout.http_cap", "timeout", "http_60s_limit", _hint_cap,
         errors=frozenset({"States.Http.Socket"}), check=_near_cap),
    Rule("network.socket", "network", "socket", _hint_socket,
         errors=frozenset({"States.Http.Socket"})),
    Rule("auth.deauthorized", "auth", "connection_deauthorized", _hint_deauthorized,
         errors=frozenset({_CONNECTION + "InvalidConnectionState"})),
    Rule("network.private_connection", "network", "private_connection_not_active", _hint_private,
         errors=frozenset({_CONNECTION + "InvalidPrivateConnectionState"})),
    Rule("permissions.connection", "permissions", "connection_credentials",
         _hint_connection_credentials, errors=frozenset({_CONNECTION + "AccessDenied"})),
    Rule("permissions.invoke", "permissions", "invoke_http_endpoint", _hint_invoke_permission,
         check=_permission_denied),
    Rule("invalid.connection_missing", "invalid_request", "connection_not_found",
         _hint_connection_missing, errors=frozenset({_CONNECTION + "ResourceNotFound"})),
    Rule("auth.authorizing", "auth", "connection_authorizing", _hint_authorizing,
         errors=frozenset({_CONNECTION + "AuthInProgress"})),
    Rule("auth.connection_updating", "auth", "connection_updating", _hint_concurrent,
         errors=frozenset({_CONNECTION + "ConcurrentModification"})),
    Rule("server.eventbridge", "server_error", "eventbridge_internal", _hint_eventbridge,
         errors=frozenset({_CONNECTION + "InternalError"})),
    Rule("payload.response", "payload_too_large", "response_over_256kib", _hint_data_limit,
         errors=frozenset({"States.DataLimitExceeded"})),
    Rule("invalid.forbidden_header", "invalid_request", "forbidden_header",
         _hint_forbidden_header, errors=frozenset({"States.Runtime"}),
         check=_forbidden_header),
    # Not tied to one error name: JSONPath says States.Runtime, JSONata its own error names.
    Rule("missing_parameter.jsonpath", "missing_parameter", "path_found_nothing", _hint_jsonpath,
         check=_cause_jsonpath),
    Rule("invalid.response_type", "invalid_request", "unsupported_response_type",
         _hint_content_type, errors=frozenset({"States.Runtime"}), check=_cause_content_type),
    Rule("unknown.runtime", "unknown", "runtime", _hint_runtime,
         errors=frozenset({"States.Runtime"})),
    Rule("auth.unauthorized", "auth", "http_{status}", _hint_unauthorized,
         statuses=(401, 401), check=_note_diff, decided_by=("status_code",)),
    Rule("auth.proxy", "auth", "http_{status}", _hint_unauthorized,
         statuses=(407, 407), decided_by=("status_code",)),
    Rule("auth.forbidden", "auth", "forbidden", _hint_forbidden,
         statuses=(403, 403), check=_note_diff, decided_by=("status_code",)),
    Rule("rate_limited", "rate_limited", "http_429", _hint_rate_limited,
         statuses=(429, 429), decided_by=("status_code",)),
    Rule("payload.request", "payload_too_large", "request_too_large", _hint_request_too_large,
         statuses=(413, 413), decided_by=("status_code",)),
    Rule("timeout.http_408", "timeout", "http_408", _hint_408,
         statuses=(408, 408), decided_by=("status_code",)),
    Rule("missing_header.cause", "missing_header", "named_in_response", _hint_cause_header,
         statuses=(400, 499), check=_cause_names_header, decided_by=("status_code",)),
    Rule("missing_parameter.cause", "missing_parameter", "named_in_response", _hint_cause_field,
         statuses=(400, 499), check=_cause_names_field, decided_by=("status_code",)),
    Rule("missing_header.diff", "missing_header", "absent_vs_last_success", _hint_diff_header,
         statuses=(400, 499), check=_diff_headers, decided_by=("status_code",)),
    Rule("missing_parameter.diff", "missing_parameter", "absent_vs_last_success",
         _hint_diff_param, statuses=(400, 499), check=_diff_params, decided_by=("status_code",)),
    Rule("client_error", "client_error", "http_{status}", _hint_client_error,
         statuses=(400, 499), decided_by=("status_code",)),
    Rule("server_error", "server_error", "http_{status}", _hint_server_error,
         statuses=(500, 599), decided_by=("status_code",)),
    Rule("unknown.status", "unknown", "http_{status}", _hint_other_status,
         statuses=(100, 999), decided_by=("status_code",)),
    Rule("unknown.aborted", "unknown", "aborted", _hint_aborted,
         check=_aborted, decided_by=("closed_event",)),
    Rule("unknown.no_error", "unknown", "no_error_recorded", _hint_unknown,
         check=_no_error, decided_by=("outcome",)),
    Rule("unknown", "unknown", "unrecognised_error", _hint_unknown),
)
# fmt: on
_FALLBACK = RULES[-1]


# --------------------------------------------------------------------------- cause reading

_STATUS_PHRASES = {s.value: s.phrase.lower() for s in HTTPStatus}
_ALL_PHRASES = frozenset(_STATUS_PHRASES.values())
_IAM_ACTION = re.compile(r"\b(states|events|secretsmanager|kms|iam):([A-Za-z]{3,64})\b")
_JSONPATH = re.compile(r"JSON(?:Path|ata(?: expression)?)\s+'([^']{1,300})'", re.IGNORECASE)
_JSONPATH_FIELD = re.compile(r"for the field\s+'([^']{1,200})'", re.IGNORECASE)
_CONTENT_TYPE = re.compile(r"\b(application/octet-stream|(?:image|audio|video)/[\w.+-]+)", re.I)
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


def _read_cause(cause: object, status: int | None) -> _CauseInfo:
    text = cause if isinstance(cause, str) else ""
    info = _CauseInfo()
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
        document = _load_json(stripped)
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


def _scan_runtime(text: str, info: _CauseInfo) -> None:
    path = _JSONPATH.search(text)
    if path:
        info.jsonpath = path.group(1)
        where = _JSONPATH_FIELD.search(text)
        info.jsonpath_field = where.group(1) if where else ""
    content = _CONTENT_TYPE.search(text)
    info.content_type = content.group(1).lower() if content else ""
    info.iam_actions = tuple(dict.fromkeys(f"{m[0]}:{m[1]}" for m in _IAM_ACTION.findall(text)))
    lowered = text.lower()
    if "header" in lowered:
        info.forbidden_header = next(
            (w for w in re.findall(r"[a-z0-9][a-z0-9-]*", lowered) if is_forbidden_header(w)), ""
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
            if not re.match(r"\s*header", text[match.end(1) :].lstrip("'\"`"), re.IGNORECASE):
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


def is_forbidden_header(name: str) -> bool:
    lowered = name.lower()
    return lowered in FORBIDDEN_HEADERS or lowered.startswith(FORBIDDEN_HEADER_PREFIXES)


# --------------------------------------------------------------------------- shapes


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
        return _load_json(stripped)
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


def _shape_diff(success: RequestShape | None, failure: RequestShape) -> dict[str, list[str]]:
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


def _diff_sentence(f: _Facts, kind: str) -> str:
    names = f.shape_diff().get(kind)
    if not names:
        return ""
    return f"; the last successful call to this endpoint also sent header {', '.join(names)}"


# --------------------------------------------------------------------------- trackers


class LastSuccessTracker:
    """The request shape of the last successful call per (method, endpoint template).

    Feed attempts in time order; ask before observing the attempt being classified.
    """

    def __init__(self) -> None:
        # The shape is computed on demand: successes are many, questions (failures) are few.
        self._last: dict[tuple[str, str], ParsedAttempt | RequestShape] = {}

    def observe(self, attempt: ParsedAttempt) -> None:
        if attempt.outcome == OUTCOME_SUCCEEDED and attempt.url:
            self._last[_endpoint_key(attempt.method, attempt.url)] = attempt

    def shape_for(self, method: str, endpoint: str) -> RequestShape | None:
        key = _endpoint_key(method, endpoint)
        last = self._last.get(key)
        if isinstance(last, ParsedAttempt):
            last = self._last[key] = RequestShape.of(last)
        return last


class DeauthorizationTracker:
    """Infers connection de-authorizations from 401/407 answers when no state history exists.

    EventBridge de-authorizes Basic/API-key connections on a 401 or 407, so the first such
    answer explains the InvalidConnectionState failures that follow it (the cascade).
    """

    def __init__(self) -> None:
        self._changes: dict[str, list[ConnectionStateChange]] = {}

    def observe(self, attempt: ParsedAttempt) -> None:
        at = attempt.closed_at or attempt.scheduled_at
        if attempt.status_code in (401, 407) and attempt.connection_arn and at is not None:
            reason = (
                f"inferred: {attempt.method} {endpoint_template(attempt.url)} answered "
                f"{attempt.status_code} in state {attempt.state_name}"
            )
            change = ConnectionStateChange(at=at, state="DEAUTHORIZED", reason=reason)
            self._changes.setdefault(attempt.connection_arn, []).append(change)

    def changes_for(self, connection_arn: str) -> tuple[ConnectionStateChange, ...]:
        return tuple(self._changes.get(connection_arn, ()))


def _deauthorization(f: _Facts) -> ConnectionStateChange | None:
    """The DEAUTHORIZED change nearest before the attempt (the latest one if time is unknown)."""
    at = f.attempt.scheduled_at or f.attempt.closed_at
    candidates = [
        c
        for c in f.context.connection_states
        if isinstance(c, ConnectionStateChange)
        and c.state.upper() == "DEAUTHORIZED"
        and (at is None or _aware(c.at) <= at)
    ]
    if not candidates:
        return None
    change = max(candidates, key=lambda c: _aware(c.at))
    f.decided_by.append("connection_states")
    f.extra["connection_state"] = {
        "state": change.state,
        "at": _iso(change.at),
        "reason": change.reason,
        "inferred": change.reason.startswith("inferred"),
    }
    return change


# --------------------------------------------------------------------------- fingerprints


def fingerprint(
    connection_arn: str,
    method: str,
    endpoint: str,
    classification: Classification,
    status_code: int | None,
    error: str,
) -> str:
    """Stable grouping key: connection × method × endpoint template × class × status/error."""
    parts = (
        "fp1",
        connection_arn or "",
        (method or "").upper(),
        endpoint_template(endpoint or ""),
        classification.category or "",
        classification.subcategory,
        str(status_code) if status_code is not None else (error or ""),
    )
    return hashlib.sha1("\x1f".join(parts).encode("utf-8"), usedforsecurity=False).hexdigest()


# --------------------------------------------------------------------------- small helpers


def _endpoint_key(method: str, url_or_template: str) -> tuple[str, str]:
    return ((method or "").upper(), endpoint_template(url_or_template or ""))


def _connection_label(name: str, arn: str) -> str:
    if name:
        return name
    # arn:aws:events:<region>:<account>:connection/<name>/<uuid>
    _, _, resource = (arn or "").partition(":connection/")
    return resource.split("/", 1)[0] or arn or "(unknown connection)"


def _state_machine_arn(connection_arn: str) -> str:
    parts = (connection_arn or "").split(":")
    if len(parts) >= 5 and parts[0] == "arn" and parts[3] and parts[4]:
        return f"arn:{parts[1]}:states:{parts[3]}:{parts[4]}:stateMachine:*"
    return "arn:aws:states:*:*:stateMachine:*"


def _endpoint_condition(f: _Facts) -> dict[str, Any]:
    condition: dict[str, Any] = {}
    if f.attempt.method:
        condition["StringEquals"] = {"states:HTTPMethod": f.attempt.method}
    if f.endpoint:
        condition["StringLike"] = {"states:HTTPEndpoint": f.endpoint.replace("{id}", "*")}
    return condition


def _policy(statements: list[dict[str, Any]]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": statements}, separators=(",", ":"))


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def _json_size(value: object) -> int:
    if value is None:
        return 0
    try:
        return len(json.dumps(value, default=str).encode("utf-8"))
    except (TypeError, ValueError, RecursionError):
        return 0


def _load_json(text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _iso(value: datetime) -> str:
    return _aware(value).astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
