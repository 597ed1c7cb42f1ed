"""TestState's answer as Stepscope keeps and shows it: redacted, and compared with the attempt.

A revealed answer holds what the connection injected (the Authorization header, secret
header/query/body parameters). Before anything is stored the secrets are taken out twice: by
name (the redactor knows the connection's secret parameter names and the usual credential
names) and by value (each secret value learned from the request as sent is cut out of every
other field too, since partners echo what they receive). `as_dict(result)` without a
redactor is the revealed form: it lives only in the one HTTP response that shows it.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from connections.aws.operator import SentRequest, TestedResponse, TestStateResult
from executions.models import HttpAttempt
from executions.presenting import DiffRow, ShownRequest, compare_keys, request_diff, shown_request
from executions.redaction import Redactor, marker

# The shortest value treated as a learned secret: shorter ones ("1", "eu") would cut
# ordinary text to pieces, and no credential is that short.
MIN_SECRET_LENGTH = 4
# What TestState shows in place of a secret it hid (reference §5).
AWS_MASK = "XXXXXXXX"


def learned_secrets(result: TestStateResult, redactor: Redactor) -> list[str]:
    """The secret values in the request as sent: values of secret-named headers, query and
    top-level body keys, with an auth scheme's credential on its own too."""
    request = result.request
    if request is None:
        return []
    values: list[str] = []
    for name, value in request.headers:
        if redactor.is_secret_key(name):
            values.append(value)
            scheme, _, credential = value.partition(" ")
            if scheme and credential:
                values.append(credential)
    query = urlsplit(request.url).query
    values += [v for k, v in parse_qsl(query, keep_blank_values=True) if redactor.is_secret_key(k)]
    body = _json(request.body)
    if isinstance(body, dict):
        values += [str(v) for k, v in body.items() if redactor.is_secret_key(k)]
    return sorted(
        {v for v in values if len(v) >= MIN_SECRET_LENGTH and v != AWS_MASK}, key=len, reverse=True
    )


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


class _Scrubber:
    def __init__(self, redactor: Redactor, secrets: list[str]) -> None:
        self.redactor = redactor
        self.secrets = secrets

    def cut(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, marker(secret))
        return text

    def text(self, text: str) -> str:
        """Free text or a JSON document: cut, then redacted by key names and patterns."""
        text = self.cut(text)
        data = _json(text)
        if isinstance(data, dict | list):
            return json.dumps(self.redactor.value(data), ensure_ascii=False)
        return self.redactor.text(text)

    def headers(self, pairs: tuple[tuple[str, str], ...]) -> list[list[str]]:
        return [
            [name, marker(value) if self.redactor.is_secret_key(name) else self.text(value)]
            for name, value in pairs
        ]


def as_dict(result: TestStateResult, redactor: Redactor | None = None) -> dict[str, Any]:
    """The answer as JSON: redacted with `redactor` (what is stored), or as AWS gave it (the
    revealed form, for the one response that shows it, never stored)."""
    scrub = _Scrubber(redactor, learned_secrets(result, redactor)) if redactor else None

    def text(value: str) -> str:
        return scrub.text(value) if scrub else value

    def headers(pairs: tuple[tuple[str, str], ...]) -> list[list[str]]:
        return scrub.headers(pairs) if scrub else [[k, v] for k, v in pairs]

    answer: dict[str, Any] = {
        "status": result.status,
        "output": text(result.output),
        "error": result.error,
        "cause": text(result.cause),
        "next_state": result.next_state,
        "error_details": dict(result.error_details),
        "request_id": result.request_id,
        "request": None,
        "response": None,
    }
    if result.request is not None:
        sent: SentRequest = result.request
        url = scrub.cut(sent.url) if scrub else sent.url
        answer["request"] = {
            "protocol": sent.protocol,
            "method": sent.method,
            "url": redactor.url(url) if redactor else url,
            "headers": headers(sent.headers),
            "body": text(sent.body),
        }
    if result.response is not None:
        got: TestedResponse = result.response
        answer["response"] = {
            "protocol": got.protocol,
            "status": got.status,
            "status_message": got.status_message,
            "headers": headers(got.headers),
            "body": text(got.body),
        }
    return answer


# --- the diff against the original attempt and the endpoint's last success ----------------


def replayed_request(result: dict[str, Any]) -> ShownRequest | None:
    """The stored (redacted) request as sent, in the shape the attempt diff compares."""
    request = result.get("request") if isinstance(result, dict) else None
    if not isinstance(request, dict):
        return None
    url = str(request.get("url") or "")
    return ShownRequest(
        method=str(request.get("method") or ""),
        url=url,
        headers={str(k): str(v) for k, v in _pairs(request.get("headers"))},
        query=dict(parse_qsl(urlsplit(url).query, keep_blank_values=True)) or None,
        body=_json(str(request.get("body") or "")) or request.get("body") or None,
    )


def _pairs(value: Any) -> list[tuple[Any, Any]]:
    if not isinstance(value, list):
        return []
    return [(p[0], p[1]) for p in value if isinstance(p, list | tuple) and len(p) == 2]


def response_diff(result: dict[str, Any], attempt: HttpAttempt) -> list[DiffRow]:
    """Status and response headers of the replay against the attempt's recorded response."""
    response = result.get("response") if isinstance(result, dict) else None
    if not isinstance(response, dict):
        return []
    rows = []
    status = response.get("status")
    if status != attempt.status_code:
        rows.append(
            DiffRow("Status", "", str(status or "—"), str(attempt.status_code or "—"), "changed")
        )
    replayed = {str(k).lower(): v for k, v in _pairs(response.get("headers"))}
    recorded = attempt.response_headers if isinstance(attempt.response_headers, dict) else {}
    rows += compare_keys(
        "Response header", replayed, {k.lower(): v for k, v in recorded.items()}, False
    )
    return rows


def replay_diffs(
    result: dict[str, Any], attempt: HttpAttempt | None, redactor: Redactor
) -> dict[str, Any]:
    """{"original": rows, "success": rows, "baseline": attempt} for the result page: the
    replay is the left column ("failed" in DiffRow's words), the other call the right."""
    replay = replayed_request(result)
    if attempt is None or replay is None:
        return {"original": [], "success": [], "baseline": None, "response": []}
    baseline = None
    if attempt.endpoint_id:
        baseline = (
            HttpAttempt.objects.filter(endpoint_id=attempt.endpoint_id)
            .successes_before(attempt.occurred_at)
            .first()
        )
    return {
        "original": request_diff(replay, shown_request(attempt, redactor)),
        "response": response_diff(result, attempt),
        "success": request_diff(replay, shown_request(baseline, redactor)) if baseline else [],
        "baseline": baseline,
    }
