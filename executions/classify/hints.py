"""Fix hints: one sentence per rule that names the fix (the header, the IAM action, the limit).

Hints only run for the rule that decided, so they may cost more than the checks: policies,
endpoint templates and connection history are worked out here, not for every attempt.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

from connections.arn import machines_like
from connections.deauthorization import DEAUTHORIZED, TRIGGER_STATUS_IN_TEXT
from executions.classify.context import ConnectionStateChange
from executions.classify.facts import Facts
from executions.classify.handling import advise_retry
from executions.history import STATE_ABORT_EVENTS

CONNECTION_SECRET_ARN = "arn:aws:secretsmanager:*:*:secret:events!connection/*"
_CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization"})


def success(f: Facts) -> str:
    return ""


def partial(f: Facts) -> str:
    return (
        f"{f.call} answered 206 Partial Content: Step Functions sends `Range: bytes=0-262144`, "
        "so the body may be only the first 256 KiB of the resource"
    )


def in_progress(f: Facts) -> str:
    return f"{f.call} had not finished when the history was read"


# --------------------------------------------------------------------------- time and network


def execution_timeout(f: Facts) -> str:
    return (
        f"the execution's own TimeoutSeconds ran out while {f.call} was in flight — raise the "
        "state machine's TimeoutSeconds or shorten the work before this state"
    )


def task_timeout(f: Facts) -> str:
    limit = f.attempt.timeout_seconds or _definition_timeout(f)
    said = f"TimeoutSeconds ({limit} s)" if limit else "TimeoutSeconds"
    return (
        f"the state's {said} elapsed before {f.call} answered — raise TimeoutSeconds (HTTP tasks "
        "stop at 60 s regardless) or make the endpoint answer faster"
    )


def cap(f: Facts) -> str:
    took = f" after {f.duration_ms / 1000:.1f} s" if f.duration_ms is not None else ""
    limit = _definition_timeout(f)
    larger = (
        f"the state's TimeoutSeconds ({limit} s) does not help"
        if limit and limit > 60
        else "a larger TimeoutSeconds does not help"
    )
    return (
        f"the call ran into the 60-second HTTP task limit: {f.call} gave no answer{took} — "
        "make the endpoint reply within 60 s (e.g. accept the work with 202 and poll for the "
        f"result); {larger}"
    )


def _definition_timeout(f: Facts) -> int | None:
    state = f.context.definition_state
    return state.timeout_seconds if state is not None else None


def socket(f: Facts) -> str:
    took = (
        f"after {f.duration_ms / 1000:.1f} s"
        if f.duration_ms is not None
        else "(duration unknown — if it took about 60 s, it was the HTTP task time limit)"
    )
    return (
        f"no HTTP response from {f.call} {took}: the connection failed (DNS, TLS, refused or "
        "reset) — check the host is public, serves HTTPS with a valid certificate, and is up"
    )


# --------------------------------------------------------------------------- connections


def deauthorized(f: Facts) -> str:
    change = _deauthorization(f)
    fix = "fix the credentials and call UpdateConnection"
    if change is None:
        return (
            f"connection {f.connection} is not authorized (InvalidConnectionState); EventBridge "
            f"de-authorizes Basic/API-key connections after a 401 or 407 — {fix}"
        )
    status = TRIGGER_STATUS_IN_TEXT.search(change.reason)
    after = f" after a {status.group(1)}" if status else ""
    why = "" if status else f" ({change.reason})" if change.reason else ""
    return f"connection {f.connection} was de-authorized{after} at {_iso(change.at)}{why} — {fix}"


def _deauthorization(f: Facts) -> ConnectionStateChange | None:
    """The DEAUTHORIZED change nearest before the attempt (the latest one if time is unknown)."""
    at = f.attempt.scheduled_at or f.attempt.closed_at
    candidates = [
        c
        for c in f.context.connection_states
        if isinstance(c, ConnectionStateChange)
        and c.state.upper() == DEAUTHORIZED
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


def private(f: Facts) -> str:
    return (
        f"the private-API connection {f.connection} is not ACTIVE (e.g. FAILED_CONNECTIVITY): "
        "check its VPC Lattice resource configuration, then call UpdateConnection"
    )


def connection_credentials(f: Facts) -> str:
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


def invoke_permission(f: Facts) -> str:
    actions = [a for a in f.cause.iam_actions if a.startswith("states:")]
    action = actions[0] if actions else "states:InvokeHTTPEndpoint"
    f.extra["iam_actions"] = [action]
    statement: dict[str, Any] = {
        "Effect": "Allow",
        "Action": action,
        "Resource": machines_like(f.attempt.connection_arn),
    }
    if action == "states:InvokeHTTPEndpoint":
        statement["Condition"] = _endpoint_condition(f)
    return f"the execution role is not allowed {action} for {f.call} — add {_policy([statement])}"


def connection_missing(f: Facts) -> str:
    return (
        f"connection {f.connection} does not exist (deleted, or the ARN is for another "
        "account/region) — fix ConnectionArn in the state or recreate the connection"
    )


def authorizing(f: Facts) -> str:
    retry = advise_retry(
        f, "retry on Events.ConnectionResource.AuthInProgress", "give the retry a longer interval"
    )
    return (
        f"connection {f.connection} was still AUTHORIZING (OAuth token exchange) — {retry}, "
        "and check the OAuth endpoint if it persists"
    )


def concurrent(f: Facts) -> str:
    retry = advise_retry(
        f,
        "retry on Events.ConnectionResource.ConcurrentModification",
        "avoid updating the connection while executions run",
    )
    return f"connection {f.connection} was being updated during the call — {retry}"


def eventbridge(f: Facts) -> str:
    retry = advise_retry(f, "retry", "nothing to change on your side")
    return f"EventBridge failed internally while preparing {f.call} — {retry}; AWS-side, not yours"


# --------------------------------------------------------------------------- the request


def data_limit(f: Facts) -> str:
    return (
        f"the response exceeded 256 KiB: {f.call} returned more than Step Functions keeps — ask "
        "the API for less (paging, fields filter); a 206 to the Range header is the same limit"
    )


def request_too_large(f: Facts) -> str:
    size = _json_size(f.attempt.request_body)
    said = f" ({size} bytes as JSON)" if size else ""
    return f"{f.call} rejected the request body{said} as too large (413) — send less per call"


def forbidden_header(f: Facts) -> str:
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


def query_missing(f: Facts) -> str:
    query = f.cause.query
    if query is None:  # the rule's check guarantees one; a hint never raises
        return runtime(f)
    what = "JSONata expression" if query.language == "jsonata" else "path"
    where = f" (for {query.field})" if query.field else ""
    return (
        f"the {what} {query.expression}{where} found nothing in the state's input, so no request "
        "was sent — make the previous state produce it, or give it a default"
    )


def query_invalid(f: Facts) -> str:
    query = f.cause.query
    if query is None:
        return runtime(f)
    where = f" for {query.field}" if query.field else ""
    if query.code:
        return (
            f"the JSONata expression {query.expression}{where} is broken ({query.code}) — fix it "
            "in the definition (try it in the console's data-flow simulator); no request was sent"
        )
    if query.expected or query.kind == "result_type":
        got = f": expected {query.expected}, got {query.actual}" if query.expected else ""
        return (
            f"the JSONata expression {query.expression}{where} returned the wrong type{got} — "
            "change the expression (or the data it reads) so it yields that type"
        )
    return (
        f"the path {query.expression} in the state's InputPath/ResultPath/OutputPath matches "
        "nothing in the data it is applied to — fix the path in the definition to the shape "
        "the data (for OutputPath/ResultSelector: the HTTP response) really has"
    )


def after_response(f: Facts) -> str:
    status = f.attempt.status_code or 200
    query = f.cause.query
    where = (
        f": {query.expression}"
        + (f" (for {query.field})" if query.field else "")
        + " matches nothing in the response"
        if query is not None
        else f" ({f.error or 'no error name'}: {' '.join(f.attempt.state_cause.split())[:200]})"
    )
    return (
        f"{f.call} answered {status} — the call worked — but the state then failed in "
        f"ResultSelector, ResultPath or OutputPath{where}; fix that path in the definition to "
        "the response's real shape (TaskSucceeded's output shows it)"
    )


def content_type(f: Facts) -> str:
    return (
        f"{f.call} answered with content type {f.cause.content_type}, which HTTP tasks cannot "
        "read (binary, image, audio, video) — ask for a text/JSON representation"
    )


def runtime_fix(fix: str) -> Callable[[Facts], str]:
    """The hint of a States.Runtime reason (rules.RUNTIME_REASONS): the cause, then the fix."""

    def hint(f: Facts) -> str:
        said = " ".join(f.attempt.cause.split())[:300]
        return f"{f.call} was not sent (States.Runtime: {said}) — {fix}"

    return hint


def runtime(f: Facts) -> str:
    return (
        f"States.Runtime without a named reason for {f.call}: check for a forbidden header in "
        "Headers, a JSONPath that found nothing, a binary response, or a string RequestBody "
        "combined with connection body parameters"
    )


# --------------------------------------------------------------------------- status codes


def unauthorized(f: Facts) -> str:
    code = f.status or 401
    extra = _diff_sentence(f, "headers")
    return (
        f"{f.call} rejected the credentials of connection {f.connection} ({code}); EventBridge "
        f"de-authorizes Basic/API-key connections after a {code}, so later calls fail with "
        f"InvalidConnectionState until you fix the secret and call UpdateConnection{extra}"
    )


def forbidden(f: Facts) -> str:
    return (
        f"{f.call} refused the caller (403): the API accepted connection {f.connection}'s "
        "credentials but they lack access to this resource — check the API-side scopes/roles "
        f"(this is not IAM){_diff_sentence(f, 'headers')}"
    )


def rate_limited(f: Facts) -> str:
    retried = "" if f.attempt.final_attempt else " (this attempt was retried)"
    advice = advise_retry(
        f,
        "add a Retry on States.Http.StatusCode.429 with BackoffRate and JitterStrategy FULL, "
        "or lower the Map's MaxConcurrency",
        "raise its IntervalSeconds/BackoffRate (JitterStrategy FULL) or lower the Map's "
        "MaxConcurrency",
    )
    return f"{f.call} is rate-limiting (429){retried} — {advice}"


def request_timeout(f: Facts) -> str:
    return f"{f.call} gave up waiting for the request (408) — retry, or check what slows it"


def cause_header(f: Facts) -> str:
    names = ", ".join(f.cause.missing_headers)
    return (
        f"{f.call} says header {names} is missing — add it to the state's Headers, or to "
        f"connection {f.connection}'s InvocationHttpParameters if it is a credential"
    )


def cause_field(f: Facts) -> str:
    names = ", ".join(f.cause.missing_fields)
    return f"{f.call} says {names} is missing or required — add it to the request"


def diff_header(f: Facts) -> str:
    names = ", ".join(f.shape_diff()["headers"])
    return (
        f"{f.call} failed ({f.status}) without header {names}, which the last successful call "
        "to this endpoint sent — add it back to the state's Headers"
    )


def diff_param(f: Facts) -> str:
    diff = f.shape_diff()
    parts = [f"query parameter {', '.join(diff['query'])}"] if diff.get("query") else []
    if diff.get("body"):
        parts.append(f"body key {', '.join(diff['body'])}")
    return (
        f"{f.call} failed ({f.status}) without {' and '.join(parts)}, which the last successful "
        "call to this endpoint sent — add it back to the request"
    )


def client_error(f: Facts) -> str:
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


def server_error(f: Facts) -> str:
    status = f.status or 500
    advice = _SERVER_ADVICE.get(status, "the API failed on its side")
    retry = advise_retry(
        f, "add a Retry with backoff", "if it persists past the retries, it is the API's to fix"
    )
    return f"{f.call} failed on the server ({status} {_phrase(status)}): {advice} — {retry}"


def other_status(f: Facts) -> str:
    status = f.status or 0
    said = f"{f.call} answered {status} {_phrase(status)}, which the HTTP task treated as a failure"
    if 300 <= status < 400:
        return f"{said} — point ApiEndpoint at the final URL instead of one that redirects"
    return f"{said} — check what the endpoint means by it"


def aborted(f: Facts) -> str:
    # Cut off, not failed: the advice is where to look instead of the endpoint.
    # The failure the parser found behind the abort, when it did: the place to look.
    named = f" ({' '.join(f.attempt.aborted_by.split())[:300]})" if f.attempt.aborted_by else ""
    if f.attempt.closed_event_type in STATE_ABORT_EVENTS:
        return (
            f"the state was aborted while {f.call} was in flight: another branch or iteration "
            f"of the execution failed{named} (or the execution was stopped) — fix that failure; "
            "this call was cut off, do not chase its endpoint"
        )
    if f.attempt.closed_event_type == "ExecutionFailed":
        return (
            f"the execution failed{named} in another branch or iteration while {f.call} was "
            "in flight — fix that failure; this call was cut off with no answer recorded, do "
            "not chase its endpoint"
        )
    given = [
        f"{name} {' '.join(value.split())[:200]!r}"
        for name, value in (("error", f.attempt.error), ("cause", f.attempt.cause))
        if isinstance(value, str) and value
    ]
    said = f" with {' and '.join(given)}" if given else ", no error or cause given"
    return (
        f"the execution was stopped (StopExecution{said}) while {f.call} was in flight — the "
        "call was cut off, not failed: nothing to fix at the endpoint; if the stop was not "
        "meant, find who or what called StopExecution (CloudTrail)"
    )


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


# --------------------------------------------------------------------------- small helpers


def _diff_sentence(f: Facts, kind: str) -> str:
    names = f.shape_diff().get(kind)
    if not names:
        return ""
    return f"; the last successful call to this endpoint also sent header {', '.join(names)}"


def _endpoint_condition(f: Facts) -> dict[str, Any]:
    condition: dict[str, Any] = {}
    if f.attempt.method:
        condition["StringEquals"] = {"states:HTTPMethod": f.attempt.method}
    if f.endpoint:
        condition["StringLike"] = {"states:HTTPEndpoint": f.endpoint.replace("{id}", "*")}
    return condition


def _policy(statements: list[dict[str, Any]]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": statements}, separators=(",", ":"))


def _phrase(status: int) -> str:
    return _PHRASES.get(status, "")


_PHRASES = {s.value: s.phrase for s in HTTPStatus}  # HTTPStatus(n) is a slow enum lookup


def _json_size(value: object) -> int:
    if value is None:
        return 0
    try:
        return len(json.dumps(value, default=str).encode("utf-8"))
    except (TypeError, ValueError, RecursionError):
        return 0


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _iso(value: datetime) -> str:
    return _aware(value).astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
