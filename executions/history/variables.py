"""Workflow variables: what each state assigned (`assignedVariables` of a *StateExited event,
from JSONata or JSONPath `Assign`) and which variable a later call's URL or header came from.

Values are raw here, as the history holds them; they may carry tokens taken from earlier
responses, so ingestion redacts them before storage. What the parser puts on an attempt
(`variable_sources`) names variables and states only, never their values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from executions.history.attempts import ParsedAttempt
from executions.history.events import load_json, parse_timestamp

MAX_ASSIGNMENTS = 200  # per execution: a loop assigning on every pass must not grow unbounded
MAX_NAMES = 50  # variables kept per assignment
MAX_TRACKED = 200  # variable names whose latest value is compared with later requests
MIN_MATCH = 8  # shorter values ("GET", "1", "true") would match a URL by chance
MAX_COMPARED = 4096  # longer values are compared by their first characters only


@dataclass(slots=True)
class Assignment:
    """The variables one state assigned when it exited (values decoded where JSON)."""

    state_name: str
    event_id: int | None
    assigned_at: datetime | None
    variables: dict[str, Any] = field(default_factory=dict)
    truncated: bool = False  # assignedVariablesDetails.truncated: AWS cut the values


class VariableTracker:
    """Reads assignments as the events stream by, bounded, and explains requests with them."""

    __slots__ = ("_latest", "assignments", "dropped")

    def __init__(self) -> None:
        self.assignments: list[Assignment] = []
        self.dropped = 0
        self._latest: dict[str, tuple[str, str]] = {}  # name -> (state, value as text)

    def exited(
        self, event: Mapping[str, Any], details: Mapping[str, Any], event_id: int | None
    ) -> None:
        raw = details.get("assignedVariables")
        if not raw or not isinstance(raw, Mapping):  # falsy first: no ABC check for None
            return
        name = details.get("name")
        state = name if isinstance(name, str) else ""
        variables: dict[str, Any] = {}
        for key, value in raw.items():
            if len(variables) >= MAX_NAMES:
                break
            if not isinstance(key, str):
                continue
            decoded = decode_assigned(value)
            variables[key] = decoded
            self._remember(key, state, decoded)
        more = details.get("assignedVariablesDetails")
        truncated = isinstance(more, Mapping) and more.get("truncated") is True
        if len(self.assignments) >= MAX_ASSIGNMENTS:
            self.dropped += 1
            return
        at = parse_timestamp(event.get("timestamp"))
        self.assignments.append(Assignment(state, event_id, at, variables, truncated))

    def explain(self, attempt: ParsedAttempt) -> None:
        """Name the variable a request's URL or header value holds (the latest assignment)."""
        if not self._latest:  # nothing assigned yet, as in most histories
            return
        sources: dict[str, str] = {}
        headers = attempt.request_headers if isinstance(attempt.request_headers, dict) else {}
        for name, (state, value) in reversed(self._latest.items()):
            said = f"${name} (assigned by {state or 'an unnamed state'})"
            if attempt.url and value in attempt.url:
                sources.setdefault("url", said)
            for header, header_value in headers.items():
                if isinstance(header_value, str) and value in header_value:
                    sources.setdefault(f"header {header}", said)
        attempt.variable_sources = sources

    def _remember(self, name: str, state: str, value: Any) -> None:
        if not isinstance(value, str) or len(value) < MIN_MATCH:
            self._latest.pop(name, None)  # no longer a string that could be in a request
            return
        if name not in self._latest and len(self._latest) >= MAX_TRACKED:
            return
        self._latest.pop(name, None)  # re-inserted last: the newest assignment wins
        self._latest[name] = (state, value[:MAX_COMPARED])


def decode_assigned(value: Any) -> Any:
    """One `assignedVariables` value as the state assigned it: AWS sends each JSON-encoded
    ("\"abc\"", "{\"Error\":…}"); kept as sent if it is not."""
    if isinstance(value, str):
        decoded = load_json(value)
        return value if decoded is None and value.strip() != "null" else decoded
    return value
