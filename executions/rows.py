"""Parsed attempt ↔ stored row: the columns, bounded and redacted, and back for reclassifying.

`attempt_row` builds the row (the caller resolves endpoint, connection, redactor and the
classification); `as_parsed` is its inverse, for the classifier; `classified` writes a
classification onto a row, the same way at ingestion and when reclassifying.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from django.conf import settings

from connections.models import AwsAccount, Connection, Endpoint
from executions.classify import Classification
from executions.columns import is_status, jsonable, pg_safe
from executions.history import Assignment, ParsedAttempt
from executions.history.events import BIGINT_MAX, INT_MAX, in_range
from executions.models import Execution, HttpAttempt, VariableAssignment
from executions.redaction import Redactor

CLASSIFICATION_FIELDS = [
    "category",
    "subcategory",
    "evidence",
    "hint",
    "classifier_version",
    "state_subcategory",
    "state_hint",
]


def attempt_key(parsed: ParsedAttempt) -> int:
    """The event that identifies the attempt: (execution, key) is its unique key."""
    for candidate in (parsed.scheduled_event_id, parsed.closed_event_id, parsed.entered_event_id):
        key = in_range(candidate, BIGINT_MAX)
        if key is not None:
            return key
    return 0


def occurred_at(parsed: ParsedAttempt, execution: Execution) -> datetime:
    """When the attempt happened (never null: the list pages sort on it)."""
    return parsed.scheduled_at or parsed.closed_at or execution.start_date


def attempt_row(
    account: AwsAccount,
    execution: Execution,
    parsed: ParsedAttempt,
    *,
    key: int,
    endpoint: Endpoint | None,
    connection: Connection | None,
    redactor: Redactor,
    classification: Classification,
    state_classification: Classification | None = None,
) -> HttpAttempt:
    """The row of a closed attempt, redacted with `redactor` (without its failure group)."""
    body, truncated = response_text(parsed.response_body, redactor)
    row = HttpAttempt(
        account=account,
        execution=execution,
        state_name=pg_safe(parsed.state_name[:80]),
        branch_path=pg_safe(parsed.branch_path[:200]),
        attempt_number=parsed.attempt_number,
        key_event_id=key,
        entered_event_id=in_range(parsed.entered_event_id, BIGINT_MAX, -BIGINT_MAX - 1),
        scheduled_event_id=in_range(parsed.scheduled_event_id, BIGINT_MAX, -BIGINT_MAX - 1),
        closed_event_id=in_range(parsed.closed_event_id, BIGINT_MAX, -BIGINT_MAX - 1),
        redrive_count=in_range(parsed.redrive_count, INT_MAX) or 0,
        scheduled_at=parsed.scheduled_at,
        closed_at=parsed.closed_at,
        occurred_at=occurred_at(parsed, execution),
        duration_ms=in_range(parsed.duration_ms, INT_MAX),
        method=pg_safe(parsed.method[:10]),
        url=pg_safe(redactor.url(parsed.url)),
        endpoint=endpoint,
        connection_arn=pg_safe(parsed.connection_arn[:1600]),
        connection=connection,
        request_headers=jsonable(redactor.value(parsed.request_headers)) or {},
        request_query=jsonable(redactor.value(parsed.request_query)),
        request_body=jsonable(redactor.value(parsed.request_body)),
        status_code=parsed.status_code if is_status(parsed.status_code) else None,
        response_headers=jsonable(redactor.value(parsed.response_headers)) or {},
        response_body=pg_safe(body),
        response_truncated=truncated or parsed.response_truncated,
        closed_event_type=pg_safe(parsed.closed_event_type[:40]),
        timeout_seconds=in_range(parsed.timeout_seconds, INT_MAX, 1),
        error=pg_safe(redactor.text(parsed.error)[:256]),
        cause=pg_safe(redactor.text(parsed.cause)),
        outcome=parsed.outcome,
        caught=parsed.caught,
        final_attempt=parsed.final_attempt,
        problems=pg_safe(list(parsed.problems)),
        state_error=pg_safe(redactor.text(parsed.state_error)[:256]),
        state_cause=pg_safe(redactor.text(parsed.state_cause)),
        variable_sources=jsonable(redactor.value(parsed.variable_sources)) or {},
        aborted_by=pg_safe(redactor.text(parsed.aborted_by)[:300]),
    )
    return classified(row, classification, redactor, state_classification)


def classified(
    row: HttpAttempt, c: Classification, redactor: Redactor, state: Classification | None = None
) -> HttpAttempt:
    """`row` with the classification's columns (CLASSIFICATION_FIELDS), redacted; `state` is
    the classification of the state's own error after a successful call, if any."""
    row.category = c.category or ""
    row.subcategory = c.subcategory[:64]
    row.evidence = jsonable(redactor.value(c.evidence)) or {}
    row.hint = pg_safe(redactor.text(c.hint))
    row.classifier_version = c.rules_version
    row.state_subcategory = state.subcategory[:64] if state is not None else ""
    row.state_hint = pg_safe(redactor.text(state.hint)) if state is not None else ""
    return row


def as_parsed(row: HttpAttempt) -> ParsedAttempt:
    """A stored (redacted) attempt in the parser's shape, for the classifier."""
    return ParsedAttempt(
        state_name=row.state_name,
        attempt_number=row.attempt_number,
        entered_event_id=row.entered_event_id,
        scheduled_event_id=row.scheduled_event_id,
        closed_event_id=row.closed_event_id,
        scheduled_at=row.scheduled_at,
        closed_at=row.closed_at,
        duration_ms=row.duration_ms,
        method=row.method,
        url=row.url,
        connection_arn=row.connection_arn,
        request_headers=row.request_headers or {},
        request_query=row.request_query,
        request_body=row.request_body,
        status_code=row.status_code,
        response_headers=row.response_headers or {},
        response_body=row.response_body,
        error=row.error,
        cause=row.cause,
        outcome=row.outcome,
        caught=row.caught,
        final_attempt=row.final_attempt,
        redrive_count=row.redrive_count,
        branch_path=row.branch_path,
        closed_event_type=row.closed_event_type,
        timeout_seconds=row.timeout_seconds,
        response_truncated=row.response_truncated,
        state_error=row.state_error,
        state_cause=row.state_cause,
        variable_sources=row.variable_sources or {},
        aborted_by=row.aborted_by,
    )


def response_text(body: Any, redactor: Redactor) -> tuple[str, bool]:
    """The response body as stored text, redacted and cut at MAX_RESPONSE_CHARS."""
    if body is None:
        return "", False
    text = (
        redactor.embedded(body)
        if isinstance(body, str)
        else json.dumps(redactor.value(body), ensure_ascii=False)
    )
    limit = int(settings.STEPSCOPE["MAX_RESPONSE_CHARS"])
    return (text[:limit], True) if len(text) > limit else (text, False)


# A stored variable value is cut here (after redaction, so a cut never splits a secret out of
# a pattern's reach); the execution page shows values, it is no archive of them.
MAX_VARIABLE_CHARS = 2000


def assignment_row(
    execution: Execution, assignment: Assignment, redactor: Redactor
) -> VariableAssignment | None:
    """The row of one state's assigned variables, redacted and bounded (None: no event id)."""
    event_id = in_range(assignment.event_id, BIGINT_MAX)
    if event_id is None:
        return None
    truncated = assignment.truncated
    variables: dict[str, Any] = {}
    for name, value in redactor.value(assignment.variables).items():
        shown = jsonable(value)
        text = shown if isinstance(shown, str) else json.dumps(shown, ensure_ascii=False)
        if len(text) > MAX_VARIABLE_CHARS:
            shown, truncated = text[:MAX_VARIABLE_CHARS], True
        variables[pg_safe(name[:200])] = pg_safe(shown)
    return VariableAssignment(
        account_id=execution.account_id,
        execution=execution,
        state_name=pg_safe(assignment.state_name[:80]),
        event_id=event_id,
        assigned_at=assignment.assigned_at,
        variables=variables,
        truncated=truncated,
    )
