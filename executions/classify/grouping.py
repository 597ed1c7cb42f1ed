"""Failure groups: the fingerprint that puts the same failure of different executions together."""

from __future__ import annotations

import hashlib

from executions.classify.endpoint_templates import endpoint_template
from executions.classify.engine import Classification


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
