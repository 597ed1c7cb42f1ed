"""Failure-group titles in words, derived from a classification and its evidence.

Pure (stdlib only), beside the rules it describes: the one place a group's title is computed
(ingest when a group is created, the migration that rewrote older titles). Not a second rule
set — nothing here decides a class; it only says in words what the classifier decided.

"POST api.example.com/v1/orders → 400: header X-Request-Id missing (vs last success)
· via orders-api (123456789012, eu-west-1)". Every part of the grouping fingerprint
(connection, method, endpoint template, category, subcategory, status or error) appears in
the title in an injective form, so two different groups of one account never share a title,
and the connection's account and region tell apart groups of different accounts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

MAX_TITLE = 500
_MAX_NAMES = 3

# Category words, for subcategories that are only a status code ("http_{status}").
CATEGORY_WORDS = {
    "timeout": "timed out",
    "auth": "authentication failed",
    "permissions": "permission denied",
    "missing_header": "header missing",
    "missing_parameter": "parameter missing",
    "rate_limited": "rate limited",
    "client_error": "client error",
    "server_error": "server error",
    "network": "network error",
    "payload_too_large": "payload too large",
    "invalid_request": "invalid request",
    "unknown": "unexpected failure",
}

# (category, subcategory) → words; pairs whose words need the evidence are built below.
_WORDS = {
    ("timeout", "execution_timeout"): "the execution timed out",
    ("timeout", "task_timeout"): "the task timed out (TimeoutSeconds)",
    ("timeout", "http_60s_limit"): "hit the 60-second HTTP limit",
    ("timeout", "http_408"): "the endpoint timed out (408)",
    ("network", "socket"): "socket error",
    ("network", "private_connection_not_active"): "private connection not active",
    ("network", "private_connection_provisioning"): "private connection still provisioning",
    ("network", "connection_failed_connectivity"): "connection cannot reach its private endpoint",
    ("permissions", "connection_kms_key"): "connection de-authorized by its KMS key",
    ("auth", "connection_deauthorized"): "connection de-authorized",
    ("auth", "connection_authorizing"): "connection still authorizing",
    ("auth", "connection_updating"): "connection being updated",
    ("auth", "forbidden"): "forbidden",
    ("permissions", "connection_credentials"): "connection credentials refused",
    ("invalid_request", "connection_not_found"): "connection not found",
    ("server_error", "eventbridge_internal"): "EventBridge internal error",
    ("payload_too_large", "response_over_256kib"): "response over 256 KiB",
    ("payload_too_large", "request_too_large"): "request too large",
    ("rate_limited", "http_429"): "rate limited",
    ("unknown", "runtime"): "runtime error",
    ("unknown", "aborted"): "aborted",
    ("unknown", "no_error_recorded"): "failed without an error name",
    ("unknown", "unrecognised_error"): "unrecognised error",
}


def _names(values: Any) -> list[str]:
    if isinstance(values, str):
        return [values] if values else []
    if isinstance(values, Sequence):
        return [str(v) for v in values if v not in (None, "")]
    return []


def _listed(kind: str, names: list[str]) -> str:
    """ "header X-Id", "headers A, B and 2 more"."""
    shown = names[:_MAX_NAMES]
    more = f" and {len(names) - len(shown)} more" if len(names) > len(shown) else ""
    plural = kind if len(names) == 1 else kind + "s"
    return f"{plural} {', '.join(shown)}{more}"


def _missing(category: str, subcategory: str, evidence: Mapping[str, Any]) -> str:
    why = "vs last success" if subcategory == "absent_vs_last_success" else "named in response"
    parts: list[str] = []
    if category == "missing_header":
        names = _names(evidence.get("missing_headers"))
        diff = evidence.get("shape_diff")
        if not names and isinstance(diff, Mapping):
            names = _names(diff.get("headers"))
        parts.append(_listed("header", names) if names else "a header")
    else:
        diff = evidence.get("shape_diff")
        fields = _names(evidence.get("missing_fields"))
        if isinstance(diff, Mapping):
            if diff.get("query"):
                parts.append(_listed("query parameter", _names(diff.get("query"))))
            fields = fields or _names(diff.get("body"))
        if fields:
            parts.append(_listed("field", fields))
        parts = parts or ["a parameter"]
    return f"{' and '.join(parts)} missing ({why})"


def failure_words(category: str, subcategory: str, evidence: Mapping[str, Any]) -> str:
    """What went wrong, in words, from the class and its evidence (never a rule id)."""
    if subcategory in ("absent_vs_last_success", "named_in_response"):
        return _missing(category, subcategory, evidence)
    if subcategory == "forbidden_header" and evidence.get("forbidden_header"):
        return f"header {evidence['forbidden_header']} is not allowed"
    if subcategory == "path_found_nothing":
        path = evidence.get("jsonpath")
        return f"path {path} found nothing" if path else "a path found nothing"
    if subcategory == "unsupported_response_type":
        kind = evidence.get("content_type")
        return f"unsupported response type {kind}" if kind else "unsupported response type"
    if subcategory == "invoke_http_endpoint":
        actions = _names(evidence.get("iam_actions"))
        return _listed("permission missing:", actions) if actions else "permission missing"
    words = _WORDS.get((category, subcategory))
    if words:
        return words
    if subcategory.startswith("http_") and subcategory[5:].isdigit():
        return CATEGORY_WORDS.get(category, category.replace("_", " "))
    # A subcategory this table does not know yet: still words, and still distinct.
    label = CATEGORY_WORDS.get(category, category.replace("_", " "))
    return f"{label}, {subcategory.replace('_', ' ')}" if subcategory else label


def connection_label(arn: str) -> str:
    """ "orders-api (123456789012, eu-west-1)" from an EventBridge connection ARN."""
    parts = arn.split(":", 5)
    if len(parts) == 6 and parts[5].startswith("connection/"):
        region, account, resource = parts[3], parts[4], parts[5].split("/")
        name = resource[1] if len(resource) > 1 else resource[0]
        return f"{name} ({account}, {region})"
    return arn


def _where(method: str, template: str) -> str:
    # https is what nearly every endpoint uses; any other scheme stays, so titles stay distinct.
    shown = template[len("https://") :] if template.startswith("https://") else template
    return f"{(method or '').upper()} {shown}".strip()


def group_title(
    *,
    method: str,
    template: str,
    status_code: int | None,
    error: str,
    category: str,
    subcategory: str,
    evidence: Mapping[str, Any] | None,
    connection_arn: str,
    state_name: str = "",
    account_name: str = "",
) -> str:
    """The title of a failure group, in words (see the module docstring)."""
    where = _where(method, template) or (f"state {state_name}" if state_name else "HTTP task")
    what = str(status_code) if status_code is not None else (error or "no error name")
    words = failure_words(category, subcategory, evidence if isinstance(evidence, Mapping) else {})
    if subcategory.startswith("http_") and subcategory[5:].isdigit() and subcategory[5:] != what:
        # The status the class names is not the one shown (never so from the rules): say it.
        words += f" (HTTP {subcategory[5:]})"
    title = f"{where} → {what}: {words}"
    if connection_arn:
        title += f" · via {connection_label(connection_arn)}"
    elif account_name:
        title += f" · in {account_name}"
    return title[:MAX_TITLE]
