"""Calls cut off by another branch's failure, as AWS records it.

When a Parallel branch or a Map iteration fails, AWS ends every sibling state still running
with a TaskStateAborted that links (previousEventId) to the *failure* that caused it, not to
the call it cut off (reference §8: "all linking to the first TaskTimedOut"). An abort event
names no state, so which call in flight it ended is known only by elimination. Each abort is
therefore *noted* against one call in flight that no other abort has taken, and that call ends
as aborted at its abort only if it reports no end of its own: an iteration whose call had
already timed out is aborted too, and the call taken for it then answers normally.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from executions.history.attempts import OUTCOME_ABORTED, ParsedAttempt, close_attempt

# Failures kept to name the cause of later aborts: the aborts follow their failure closely, so
# a few dozen cover any real fan-out without letting a long history grow the table.
_MAX_FAILURES = 64


def describe_failure(failed: ParsedAttempt | None) -> str:
    """The sibling failure an abort names: state, error, and which branch or iteration."""
    if failed is None:
        return ""
    where = f" in {failed.branch_path}" if failed.branch_path else ""
    return f"{failed.state_name} failed ({failed.error or failed.outcome}){where}"[:300]


class AbortNotes:
    """Failures by event id (what aborts link to) and the aborts noted against calls."""

    __slots__ = ("_failures", "_notes")

    def __init__(self) -> None:
        self._failures: dict[int, ParsedAttempt] = {}
        # id(call) → (the call, abort event id, its timestamp, the failure it names)
        self._notes: dict[int, tuple[ParsedAttempt, int | None, Any, str]] = {}

    def failed(self, event_id: int | None, attempt: ParsedAttempt) -> None:
        if event_id is None:
            return
        if len(self._failures) >= _MAX_FAILURES:
            del self._failures[next(iter(self._failures))]
        self._failures[event_id] = attempt

    def cause(self, prev: int | None) -> ParsedAttempt | None:
        """The failure an abort linked to, if it is one this history has shown."""
        return self._failures.get(prev) if prev else None

    def is_noted(self, attempt: ParsedAttempt) -> bool:
        noted = self._notes.get(id(attempt))
        return noted is not None and noted[0] is attempt

    def take(
        self, flying: list[ParsedAttempt], prev: int | None, event_id: int | None, timestamp: Any
    ) -> None:
        """Note the abort event `event_id` (linked to `prev`) against a call in flight no other
        abort took. After a failure this history showed, each abort takes one (a fan-out cuts
        off every sibling); linked to no known failure, only a lone call in flight is taken."""
        cause = self.cause(prev)
        free = [attempt for attempt in flying if not self.is_noted(attempt)]
        if not free or (cause is None and len(free) != 1):
            return
        named = describe_failure(cause)
        self._notes[id(free[0])] = (free[0], event_id, timestamp, named)

    def close_noted(self, attempt: ParsedAttempt) -> bool:
        """End `attempt` at the abort noted for it, if any (it reported no end of its own)."""
        noted = self._notes.pop(id(attempt), None)
        if noted is None or noted[0] is not attempt:
            return False
        close_attempt(attempt, OUTCOME_ABORTED, noted[1], "TaskStateAborted", noted[2])
        attempt.aborted_by = noted[3]
        attempt.problems.append("the state was aborted before the call returned")
        return True

    def cut_off(
        self,
        attempt: ParsedAttempt,
        event_id: int | None,
        event_type: str,
        event: Mapping[str, Any],
        by: str,
    ) -> None:
        """End `attempt` as aborted: at the abort noted for it, else at this event (a join of
        a failed Parallel/Map, or the execution failing around it), cut off `by` that."""
        if self.close_noted(attempt):
            return
        close_attempt(attempt, OUTCOME_ABORTED, event_id, event_type, event.get("timestamp"))
        attempt.aborted_by = by[:300]
        attempt.problems.append(
            "the execution failed elsewhere while this call was in flight;"
            " no result was recorded for it"
            if event_type == "ExecutionFailed"
            else "the state was aborted before the call returned"
        )

    def clear(self) -> None:
        self._failures.clear()
        self._notes.clear()
