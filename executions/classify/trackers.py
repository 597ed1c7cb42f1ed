"""What earlier attempts tell about later ones: the last success's shape, de-authorizations.

Both are fed attempts in time order (across executions of one state machine) and asked before
the attempt being classified is observed.
"""

from __future__ import annotations

from functools import lru_cache

from connections.deauthorization import DEAUTHORIZED, TRIGGER_STATUSES
from executions.classify.context import ConnectionStateChange, RequestShape
from executions.classify.endpoint_templates import endpoint_template
from executions.history import OUTCOME_SUCCEEDED, ParsedAttempt

_Request = tuple[object, object, object]  # a success's Headers, QueryParameters, RequestBody


class LastSuccessTracker:
    """The request shape of the last successful call per (method, endpoint template).

    Feed attempts in time order; ask before observing the attempt being classified.
    """

    def __init__(self) -> None:
        # The shape is computed on demand: successes are many, questions (failures) are few.
        self._last: dict[tuple[str, str], _Request | RequestShape] = {}

    def observe(self, attempt: ParsedAttempt) -> None:
        if attempt.outcome == OUTCOME_SUCCEEDED and attempt.url:
            # The request only, not the attempt: its response and timestamps would stay in
            # memory for as long as the tracker, one per endpoint.
            request = (attempt.request_headers, attempt.request_query, attempt.request_body)
            self._last[endpoint_key(attempt.method, attempt.url)] = request

    def shape_for(self, method: str, endpoint: str) -> RequestShape | None:
        key = endpoint_key(method, endpoint)
        last = self._last.get(key)
        if isinstance(last, tuple):
            last = self._last[key] = RequestShape.from_request(*last)
        return last


class DeauthorizationTracker:
    """Infers connection de-authorizations from 401/407 answers when no state history exists.

    EventBridge de-authorizes Basic/API-key connections on a 401 or 407, so the first such
    answer explains the InvalidConnectionState failures that follow it (the cascade).
    """

    def __init__(self) -> None:
        self._changes: dict[str, list[ConnectionStateChange]] = {}

    def observe(self, attempt: ParsedAttempt) -> None:
        if attempt.status_code not in TRIGGER_STATUSES:  # nearly every attempt: decided at once
            return
        at = attempt.closed_at or attempt.scheduled_at
        if attempt.connection_arn and at is not None:
            reason = (
                f"inferred: {attempt.method} {endpoint_template(attempt.url)} answered "
                f"{attempt.status_code} in state {attempt.state_name}"
            )
            change = ConnectionStateChange(at=at, state=DEAUTHORIZED, reason=reason)
            self._changes.setdefault(attempt.connection_arn, []).append(change)

    def changes_for(self, connection_arn: str) -> tuple[ConnectionStateChange, ...]:
        changes = self._changes.get(connection_arn)
        return tuple(changes) if changes else ()


# Asked twice per attempt (shape_for, observe) with the same few methods and endpoints.
@lru_cache(maxsize=4096)
def endpoint_key(method: str, url_or_template: str) -> tuple[str, str]:
    """What "the same endpoint" means for the last success: METHOD and URL template."""
    return ((method or "").upper(), endpoint_template(url_or_template or ""))
