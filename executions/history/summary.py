"""What the events say of the execution itself (not of its HTTP tasks): its own error, the
newest event id, and for execution logs its status and times.

The sync stores these on the Execution row; the HTTP attempts come from `HistoryParser`. Pure
(stdlib only), like the rest of this package.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from connections.arn import execution_name
from executions.history.events import BIGINT_MAX, INT_MAX, as_int, in_range, normalize_log_event

# GetExecutionHistory events that end an execution with an error, by their details key.
EXECUTION_ERROR_DETAILS = (
    "executionFailedEventDetails",
    "executionTimedOutEventDetails",
    "executionAbortedEventDetails",
)
# Event types that end an execution, and the status it ends with.
EXECUTION_TERMINAL = {
    "ExecutionSucceeded": "SUCCEEDED",
    "ExecutionFailed": "FAILED",
    "ExecutionTimedOut": "TIMED_OUT",
    "ExecutionAborted": "ABORTED",
}
RUNNING = "RUNNING"


def _text(value: Any) -> str:
    return value if isinstance(value, str) else "" if value is None else str(value)


@dataclass(frozen=True)
class ExecutionSummary:
    """The execution's own error and the newest event id, from the history pages read so far."""

    last_event_id: int = 0
    error: str = ""
    cause: str = ""

    def after(self, events: Any) -> ExecutionSummary:
        """This summary with one more page of events; whatever the parser would flag as
        unreadable (not an object, an id that is no integer) is skipped here."""
        summary = self
        for event in events if isinstance(events, list) else ():
            if not isinstance(event, dict):
                continue
            event_id = in_range(as_int(event.get("id")), BIGINT_MAX) or 0
            summary = replace(summary, last_event_id=max(summary.last_event_id, event_id))
            detail = next(
                (
                    event[key]
                    for key in EXECUTION_ERROR_DETAILS
                    if isinstance(event.get(key), dict) and event[key]
                ),
                None,
            )
            if detail is not None:
                summary = replace(
                    summary, error=_text(detail.get("error")), cause=_text(detail.get("cause"))
                )
        return summary


@dataclass(frozen=True)
class LoggedExecution:
    """One execution as its CloudWatch log events (normalized, in id order) describe it."""

    arn: str
    events: list[dict[str, Any]]
    status: str = RUNNING
    start: Any = None  # the ExecutionStarted time, else the first event's; None if neither
    stop: Any = None
    error: str = ""
    cause: str = ""
    redrive_count: int = 0
    last_event_id: int = 0

    @property
    def name(self) -> str:
        return execution_name(self.arn) or self.arn

    @property
    def finished(self) -> bool:
        return self.status != RUNNING


def summarize_logged(arn: str, events: list[dict[str, Any]]) -> LoggedExecution:
    """Status, times and error of one execution from its log events (at least one)."""
    status, stop, error, cause = RUNNING, None, "", ""
    start = events[0].get("timestamp")
    for event in events:
        kind = str(event.get("type", ""))
        terminal = EXECUTION_TERMINAL.get(kind)
        if terminal:
            status, stop = terminal, event.get("timestamp")
            details = next(
                (v for k, v in event.items() if k.endswith("EventDetails") and isinstance(v, dict)),
                {},
            )
            error, cause = str(details.get("error", "")), str(details.get("cause", ""))
        if kind == "ExecutionStarted":
            start = event.get("timestamp") or start
    return LoggedExecution(
        arn=arn,
        events=events,
        status=status,
        start=start,
        stop=stop,
        error=error,
        cause=cause,
        redrive_count=max(
            (in_range(e.get("_redrive_count"), INT_MAX) or 0 for e in events), default=0
        ),
        last_event_id=max((in_range(e.get("id"), BIGINT_MAX) or 0 for e in events), default=0),
    )


@dataclass
class LogEventsByExecution:
    """FilterLogEvents records regrouped per execution ARN, each execution's events by id.

    Records seen before (overlapping windows, a restarted listing) are skipped by their
    eventId; records that are no execution log event are dropped.
    """

    newest_ms: int = 0
    _seen: set[str] = field(default_factory=set)
    _events: dict[str, dict[int, dict[str, Any]]] = field(default_factory=dict)

    def add(self, raw: dict[str, Any]) -> None:
        event_id = str(raw.get("eventId", ""))
        if event_id in self._seen:
            return
        self._seen.add(event_id)
        self.newest_ms = max(self.newest_ms, int(raw.get("timestamp", 0) or 0))
        event = normalize_log_event(raw.get("message", ""))
        if event is None:
            return
        arn = str(event.get("_execution_arn", ""))
        self._events.setdefault(arn, {})[int(event.get("id", 0) or 0)] = event

    def executions(self) -> list[tuple[str, list[dict[str, Any]]]]:
        return [(arn, [events[k] for k in sorted(events)]) for arn, events in self._events.items()]
