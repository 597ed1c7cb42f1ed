"""Rule conditions beyond the static match: each says yes or no and notes what decided."""

from __future__ import annotations

import re
from collections.abc import Callable

from executions.classify.facts import Facts
from executions.history import OUTCOME_TIMED_OUT, STATE_ABORT_EVENTS

HTTP_TASK_TIMEOUT_MS = 60_000
# Socket errors this close to the hard 60 s cap are the cap, not the network.
NEAR_TIMEOUT_CAP_MS = 55_000
_MAX_SCAN = 8_000  # as in cause.py: what a cause says comes early


def near_cap(f: Facts) -> bool:
    if f.duration_ms is not None and f.duration_ms >= NEAR_TIMEOUT_CAP_MS:
        f.decided_by.append("duration_ms")
        return True
    return False


def forbidden_header(f: Facts) -> bool:
    header, source = f.forbidden_header()
    if header:
        f.extra["forbidden_header"] = header
        f.decided_by.append(source)
    return bool(header)


def query_failure(*kinds: str) -> Callable[[Facts], bool]:
    """A check: the cause is a JSONata/JSONPath failure of one of `kinds` (see classify.query)."""

    def check(f: Facts) -> bool:
        # Only before an HTTP answer: a response body may well mention JSONPath itself.
        query = f.cause.query
        if query is None or f.status is not None or query.kind not in kinds:
            return False
        f.extra.update(query.evidence())
        f.decided_by.append("cause")
        return True

    return check


def cause_matches(pattern: re.Pattern[str]) -> Callable[[Facts], bool]:
    """A check: the cause's text matches `pattern` (a States.Runtime reason)."""

    def check(f: Facts) -> bool:
        if isinstance(f.attempt.cause, str) and pattern.search(f.attempt.cause[:_MAX_SCAN]):
            f.decided_by.append("cause")
            return True
        return False

    return check


def cause_content_type(f: Facts) -> bool:
    if f.cause.content_type:
        f.extra["content_type"] = f.cause.content_type
        f.decided_by.append("cause")
    return bool(f.cause.content_type)


def cause_names_header(f: Facts) -> bool:
    if f.cause.missing_headers:
        f.extra["missing_headers"] = list(f.cause.missing_headers)
        f.decided_by.append("cause")
    return bool(f.cause.missing_headers)


def cause_names_field(f: Facts) -> bool:
    if f.cause.missing_fields:
        f.extra["missing_fields"] = list(f.cause.missing_fields)
        f.decided_by.append("cause")
    return bool(f.cause.missing_fields)


def diff_headers(f: Facts) -> bool:
    diff = f.shape_diff()
    if diff.get("headers"):
        f.extra["shape_diff"] = diff
        f.decided_by.append("last_success_shape")
    return bool(diff.get("headers"))


def diff_params(f: Facts) -> bool:
    diff = f.shape_diff()
    if diff.get("query") or diff.get("body"):
        f.extra["shape_diff"] = diff
        f.decided_by.append("last_success_shape")
        return True
    return False


def note_diff(f: Facts) -> bool:
    # Auth failures keep their class, but a missing credential header is worth saying.
    diff = f.shape_diff()
    if diff:
        f.extra["shape_diff"] = diff
    return True


# Who ended an aborted call, by the event that closed it: StopExecution (with the error/cause
# its caller gave, which the evidence already carries), or a sibling branch or iteration that
# failed (the state was aborted, or the execution failed while the call was open).
_ABORTED_BY = {
    "ExecutionAborted": "StopExecution",
    **dict.fromkeys(STATE_ABORT_EVENTS, "state aborted"),
    "ExecutionFailed": "execution failed elsewhere",
}


def aborted(f: Facts) -> bool:
    by = _ABORTED_BY.get(f.attempt.closed_event_type, "unknown")
    # The sibling failure (or the execution's error) the parser found: where to look instead.
    f.extra["aborted_by"] = f"{by}: {f.attempt.aborted_by}" if f.attempt.aborted_by else by
    if f.attempt.cause:
        f.extra["stop_cause"] = f.attempt.cause[:500]
    return True


def execution_timed_out(f: Facts) -> bool:
    return f.attempt.closed_event_type == "ExecutionTimedOut"


def task_timed_out(f: Facts) -> bool:
    return f.error == "States.Timeout" or f.attempt.outcome == OUTCOME_TIMED_OUT


def permission_denied(f: Facts) -> bool:
    # Some runtimes report the missing grant only in the cause ("not authorized to perform").
    return f.error == "States.Permissions" or any(
        a.startswith("states:") for a in f.cause.iam_actions
    )


def no_error(f: Facts) -> bool:
    return not f.error
