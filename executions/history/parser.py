"""The streaming parser: GetExecutionHistory events in, HTTP-task attempts out."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from executions.history.aborts import AbortNotes, describe_failure
from executions.history.attempts import (
    OUTCOME_ABORTED,
    OUTCOME_FAILED,
    OUTCOME_SUCCEEDED,
    OUTCOME_TIMED_OUT,
    ParsedAttempt,
    close_attempt,
    mark_unscheduled,
    parameter,
    read_failure,
    read_output,
    read_parameters,
)
from executions.history.definition import (
    HttpStateInfo,
    http_states_from_definition,
    state_calling,
)
from executions.history.entries import (
    ROOT,
    Entry,
    Fork,
    Link,
    child_path,
    entry_order,
    in_fork,
    is_http_task,
    may_be_http,
    segment_state,
)
from executions.history.events import (
    DETAILS_KEYS,
    as_int,
    as_text,
    details_key,
    event_list,
    parse_timestamp,
)
from executions.history.variables import VariableTracker

MAX_PROBLEMS = 100  # garbage input must not grow the problem list without bound
_MAX_SCAN = 64  # open states searched when an event's predecessor is unknown
_MAX_ROUTES = 256  # event types remembered in the dispatch table (junk input has endless ones)

_TASK_FAILURES = {
    "TaskFailed": OUTCOME_FAILED,
    "TaskTimedOut": OUTCOME_TIMED_OUT,
    "TaskStartFailed": OUTCOME_FAILED,
    "TaskSubmitFailed": OUTCOME_FAILED,
}
TASK_FAILURE_TYPES = frozenset(_TASK_FAILURES)
_EXECUTION_ENDS = {
    "ExecutionFailed": ("executionFailedEventDetails", OUTCOME_FAILED),
    "ExecutionTimedOut": ("executionTimedOutEventDetails", OUTCOME_TIMED_OUT),
    "ExecutionAborted": ("executionAbortedEventDetails", OUTCOME_ABORTED),
}
# Events that fail a state whose call already succeeded, and where they keep error and cause.
_STATE_FAILURES = {
    "ExecutionFailed": "executionFailedEventDetails",
    "EvaluationFailed": "evaluationFailedEventDetails",
}
_FORK_TYPES = frozenset({"ParallelStateStarted", "MapStateStarted"})
_JOIN_TYPES = frozenset(
    {
        "ParallelStateSucceeded",
        "ParallelStateFailed",
        "ParallelStateAborted",
        "MapStateSucceeded",
        "MapStateFailed",
        "MapStateAborted",
    }
)

Handler = Callable[[Link], Link]


class HistoryParser:
    """Streaming parser: feed pages of events, collect attempts as they close, then finish.

    While one event is handled, `_event`, `_id`, `_prev` and `_type` describe it (a cursor),
    which keeps the per-event handlers small and the hot loop free of argument shuffling.
    """

    # Slots: the handlers read the cursor attributes for every one of up to 25,000 events.
    __slots__ = (
        "_aborts",
        "_dispatch",
        "_dropped_problems",
        "_event",
        "_fork_ids",
        "_forks",
        "_http_states",
        "_id",
        "_last_id",
        "_links",
        "_open",
        "_prev",
        "_ready",
        "_recently_failed",
        "_redrive_count",
        "_redriven",
        "_type",
        "problems",
        "variables",
    )

    def __init__(self, http_states: Mapping[str, HttpStateInfo] | None = None) -> None:
        self._http_states: Mapping[str, HttpStateInfo] = http_states or {}
        self.problems: list[str] = []
        self.variables = VariableTracker()  # what states assigned, for ingestion to store
        self._links: dict[int, Link] = {}
        self._forks: dict[int, Fork] = {}
        self._fork_ids: dict[tuple[str, str], int] = {}
        self._open: dict[int, Entry] = {}  # keyed by id(entry): entered ids may be missing
        self._recently_failed: deque[Entry] = deque(maxlen=64)  # redrive without re-entry
        self._aborts = AbortNotes()  # aborts AWS linked to a sibling's failure (aborts.py)
        self._ready: list[ParsedAttempt] = []
        self._last_id = 0
        self._redrive_count = 0
        self._redriven = False
        self._dropped_problems = 0
        self._event: Mapping[str, Any] = {}
        self._id: int | None = None
        self._prev: int | None = None
        self._type = ""
        # One dict lookup per event picks its handler; other types are routed (and added)
        # by `_route` the first time they appear.
        self._dispatch: dict[str, Handler] = {
            "TaskStateEntered": self._on_task_entered,
            "TaskScheduled": self._on_scheduled,
            "TaskStarted": self._on_started,
            "TaskSucceeded": self._on_succeeded,
            "TaskStateExited": self._on_task_left,
            "TaskStateAborted": self._on_task_left,
            "EvaluationFailed": self._on_evaluation_failed,
            "ExecutionRedriven": self._on_redriven,
            "MapIterationStarted": self._on_map_iteration,
            **dict.fromkeys(_TASK_FAILURES, self._on_task_failure),
            **dict.fromkeys(_EXECUTION_ENDS, self._on_execution_end),
        }

    # ----------------------------------------------------------------- public

    def feed(self, events: Iterable[Mapping[str, Any]]) -> Iterator[ParsedAttempt]:
        """Consume one page of events; yield each attempt as soon as its fate is known."""
        ready = self._ready
        handle = self._handle
        listed = event_list(events)
        if listed is None:
            self._problem("the events are not a list")
        for event in () if listed is None else listed:
            try:
                handle(event)
            except Exception as exc:  # the parser must survive anything; say what happened
                self._problem(f"event {self._id} could not be read ({type(exc).__name__})")
            while ready:  # one at a time: a consumer that stops early loses nothing
                yield ready.pop(0)

    def finish(self) -> Iterator[ParsedAttempt]:
        """Flush what is open: unsettled failures are final, calls in flight in_progress (or
        aborted, at the abort noted for them)."""
        for entry in sorted(self._open.values(), key=entry_order):
            self._settle(entry, "")
            if entry.current is not None:
                self._aborts.close_noted(entry.current)
                self._ready.append(entry.current)
                entry.current = None
        for store in (self._open, self._links, self._forks, self._fork_ids, self._aborts):
            store.clear()
        while self._ready:
            yield self._ready.pop(0)

    # ----------------------------------------------------------------- dispatch

    def _handle(self, event: object) -> None:
        # This runs for every one of up to 25,000 events: exact type checks come first because
        # they cost a fraction of an isinstance() against an abstract base class.
        self._id = None
        if type(event) is not dict and not isinstance(event, Mapping):
            self._problem("an event is not an object; ignored")
            return
        event_type = event.get("type")
        if type(event_type) is not str:
            self._problem("an event has no type; ignored")
            return
        event_id = event.get("id")
        if type(event_id) is not int:  # the fast path skips a call for well-formed history
            event_id = as_int(event_id)
        if event_id is not None:
            if event_id <= self._last_id:
                # Pages overlap or arrive twice; counting those events again would double
                # the attempts, so the later copy is the one ignored.
                self._problem(f"event {event_id} ({event_type}) repeated or out of order; ignored")
                return
            self._last_id = event_id
        prev = event.get("previousEventId")
        if type(prev) is not int:
            prev = as_int(prev)
        if "_redrive_count" in event:
            self._redrive_count = max(self._redrive_count, as_int(event["_redrive_count"]) or 0)
        self._event, self._id, self._prev, self._type = event, event_id, prev, event_type
        if not prev:
            link = ROOT
        elif prev in self._forks:
            link = self._fork_link(prev)
        else:
            # Each event has one successor, except Parallel/Map starts (one per branch or
            # iteration), so links are dropped once used: memory follows what is open.
            link = self._links.pop(prev, ROOT)
        entry = link[1]
        if (
            entry is not None
            and entry.pending is not None
            and entry.pending.closed_event_id == prev
        ):
            self._settle(entry, event_type)
        handler = self._dispatch.get(event_type) or self._route(event_type)
        new_link = handler(link)
        if event_type[-11:] == "StateExited":  # any state may Assign, not only Tasks
            exited = event.get("stateExitedEventDetails")
            # Most exits assign nothing; those that do, or odd shapes, are read further.
            if type(exited) is not dict or exited.get("assignedVariables"):
                self.variables.exited(event, self._details("stateExitedEventDetails"), event_id)
        if event_id is not None:
            self._links[event_id] = new_link

    def _route(self, event_type: str) -> Handler:
        if event_type.endswith("StateEntered"):
            handler = self._on_state_entered
        elif event_type in _FORK_TYPES:
            handler = self._on_fork
        elif event_type in _JOIN_TYPES:
            handler = self._on_join
        else:
            handler = self._on_pass
        if len(self._dispatch) < _MAX_ROUTES:
            self._dispatch[event_type] = handler
        return handler

    def _fork_link(self, prev: int) -> Link:
        fork = self._forks[prev]
        link = self._links.get(prev, ROOT)
        if self._type in _JOIN_TYPES or self._type == "MapIterationStarted":
            return link
        # The first event of a Parallel branch: branches are numbered in order of appearance.
        segment = f"{fork.name}#{fork.next_index}"
        fork.next_index += 1
        return (child_path(fork.path, segment), None, link[2])

    def _on_pass(self, link: Link) -> Link:
        return (link[0], None, "")

    def _on_state_entered(self, link: Link) -> Link:
        return (link[0], None, self._entered_name())

    # ----------------------------------------------------------------- branches

    def _on_fork(self, link: Link) -> Link:
        if self._id is None:
            return (link[0], None, "")
        fork = Fork(link[2], link[0])
        # A Map nested in a Map starts once per outer iteration: forget the finished ones.
        old = self._fork_ids.pop(fork.key, None)
        if old is not None:
            self._forks.pop(old, None)
            self._links.pop(old, None)
        self._forks[self._id] = fork
        self._fork_ids[fork.key] = self._id
        return (link[0], None, link[2])

    def _on_join(self, link: Link) -> Link:
        # The join names either the fork itself (no branch ran) or the last event of a branch,
        # whose path is one segment deeper than the Parallel/Map state's own.
        path = link[0]
        fork_id = self._prev if self._prev in self._forks else None
        if fork_id is None:
            parent, _, segment = path.rpartition("/")
            fork_id = self._fork_ids.get((parent, segment_state(segment)))
        fork = self._forks.pop(fork_id, None) if fork_id is not None else None
        if fork is None or fork_id is None:
            return (path.rpartition("/")[0], None, "")
        self._fork_ids.pop(fork.key, None)
        self._links.pop(fork_id, None)
        if not self._type.endswith("Succeeded"):
            self._end_branches(fork)
        return (fork.path, None, "")

    def _end_branches(self, fork: Fork) -> None:
        # The Parallel/Map failed or was aborted: no call still open in its branches can answer
        # any more, whether or not AWS gave it a TaskStateAborted (the sandbox does not).
        named = describe_failure(self._aborts.cause(self._prev))  # what the join links to
        for entry in self._flights():
            if entry.current is not None and in_fork(entry.path, fork):
                self._aborts.cut_off(entry.current, self._id, self._type, self._event, named)
                self._ready.append(entry.current)
                entry.current = None
                self._open.pop(id(entry), None)

    def _on_map_iteration(self, link: Link) -> Link:
        details = self._details("mapIterationStartedEventDetails")
        fork = self._forks.get(self._prev) if self._prev else None
        name = details.get("name")
        if not isinstance(name, str) or not name:
            name = fork.name if fork is not None else "Map"
        index = as_int(details.get("index"))
        if index is None and fork is not None:
            index, fork.next_index = fork.next_index, fork.next_index + 1
        parent = fork.path if fork is not None else link[0]
        return (child_path(parent, f"{name}[{'?' if index is None else index}]"), None, "")

    # ----------------------------------------------------------------- task events

    def _on_task_entered(self, link: Link) -> Link:
        name = self._entered_name()
        entry = Entry(name, link[0], self._id, self._http_states.get(name))
        self._open[id(entry)] = entry
        return (link[0], entry, name)

    def _on_scheduled(self, link: Link) -> Link:
        details = self._details("taskScheduledEventDetails")
        entry = link[1] or self._adopt(details)
        if entry is None or (
            details.get("resourceType") != "http" and not is_http_task(details, entry)
        ):
            if entry is not None and details:
                entry.http = False  # without details the failure event may still say "http"
            return (link[0], entry, "")
        entry.http = True
        if entry.pending is not None:  # a retry whose link to the failure was lost
            self._settle(entry, self._type)
        if entry.current is not None:
            entry.current.problems.append("the call never reported an end before the next one")
            self._ready.append(entry.current)
        attempt = self._new_attempt(entry)
        attempt.scheduled_event_id = self._id
        attempt.scheduled_at = parse_timestamp(self._event.get("timestamp"))
        attempt.timeout_seconds = as_int(details.get("timeoutInSeconds"))
        read_parameters(attempt, details, self._id)
        self.variables.explain(attempt)
        entry.current = attempt
        return (entry.path, entry, "")

    def _on_started(self, link: Link) -> Link:
        entry = link[1] or self._entry_in_flight()
        if entry is None:
            return (link[0], None, "")
        if entry.current is not None:
            entry.current.started_at = parse_timestamp(self._event.get("timestamp"))
        return (entry.path, entry, "")

    def _on_succeeded(self, link: Link) -> Link:
        entry = link[1] or self._entry_in_flight()
        if entry is None or entry.current is None:
            return (link[0], entry, "")
        attempt, entry.current = entry.current, None
        self._close(attempt, OUTCOME_SUCCEEDED)
        read_output(attempt, self._details("taskSucceededEventDetails"), self._id)
        # Held for one event: ResultSelector/ResultPath/OutputPath can still fail the state.
        entry.pending = attempt
        return (entry.path, entry, "")

    def _on_task_failure(self, link: Link) -> Link:
        details = self._details()
        entry = link[1] or self._entry_in_flight()
        if entry is None and details.get("resourceType") == "http":
            entry = self._adopt(details)
        if entry is None or not may_be_http(entry, details):
            return (link[0], entry, "")
        attempt = entry.current
        if attempt is None:
            # No TaskScheduled before it: an ERROR-level log. Each failure is its own attempt,
            # and one before it of the same state was therefore retried.
            if entry.pending is not None:
                self._settle(entry, "TaskScheduled")
            attempt = self._new_attempt(entry)
            mark_unscheduled(attempt)
        entry.current = None
        self._close(attempt, _TASK_FAILURES[self._type])
        read_failure(attempt, details)
        self._aborts.failed(self._id, attempt)  # what the siblings' aborts will link to
        entry.pending = attempt  # final or retried, caught or not: the next event says
        return (entry.path, entry, "")

    def _on_task_left(self, link: Link) -> Link:
        entry, aborted = link[1], self._type == "TaskStateAborted"
        if aborted and (entry is None or entry.current is None):
            # AWS links an abort to the failure that caused it, not to the call it cut off.
            flying = [e.current for e in self._flights() if e.current is not None]
            self._aborts.take(flying, self._prev, self._id, self._event.get("timestamp"))
        if entry is None:
            return (link[0], None, "")
        if entry.pending is not None:  # normally settled already, unless links were lost
            self._settle(entry, self._type)
        if entry.current is not None:
            attempt, entry.current = entry.current, None
            if aborted:
                self._close(attempt, OUTCOME_ABORTED)
                attempt.problems.append("the state was aborted before the call returned")
            else:
                attempt.problems.append("the state was left while the call was in flight")
            self._ready.append(attempt)
        self._open.pop(id(entry), None)
        return (link[0], None, "")

    def _on_evaluation_failed(self, link: Link) -> Link:
        # JSONata: an expression in Arguments failed, so the HTTP call was never made.
        details = self._details()
        entry = link[1]
        state = details.get("state")
        if entry is None and isinstance(state, str):
            # It links to event 0 on AWS: the state it names is the open entry of that name.
            entry = self._open_entry(state)
            if entry is None and state in self._http_states:
                entry = self._orphan(state, link[0])
        if entry is not None and entry.pending is not None:
            self._settle(entry, self._type)  # e.g. a JSONata Output failing after a 200
        if entry is None or entry.http is not True or entry.current or entry.attempts:
            return (link[0], entry, "")
        attempt = self._new_attempt(entry)
        self._close(attempt, OUTCOME_FAILED)
        read_failure(attempt, details)
        entry.pending = attempt
        return (entry.path, entry, "")

    def _on_execution_end(self, link: Link) -> Link:
        key, outcome = _EXECUTION_ENDS[self._type]
        details = self._details(key)
        entry = link[1]
        if (
            entry is not None
            and entry.http is True
            and not (entry.current or entry.attempts)
            and self._prev == entry.entered_id
        ):
            # The state failed before any request (a JSONPath in Parameters found nothing,
            # a forbidden header): still an attempt of that HTTP state.
            attempt = self._new_attempt(entry)
            self._close(attempt, outcome)
            read_failure(attempt, details)
            self._ready.append(attempt)
        self._end_everything(outcome, details)
        return (link[0], None, "")

    def _end_everything(self, outcome: str, details: Mapping[str, Any]) -> None:
        # The execution is over: calls still in flight ended with it, and failures that were
        # waiting for a retry or a Catch got neither.
        for entry in sorted(self._open.values(), key=entry_order):
            self._settle(entry, self._type)
            if entry.current is not None:
                attempt, entry.current = entry.current, None
                self._cut_off(attempt, outcome, details)
                self._ready.append(attempt)
            if entry.http:
                self._recently_failed.append(entry)
        self._open.clear()

    def _cut_off(self, attempt: ParsedAttempt, outcome: str, details: Mapping[str, Any]) -> None:
        """A call still open when the execution ended: at its noted abort, else by the end."""
        if self._type == "ExecutionFailed" or self._aborts.is_noted(attempt):
            # Another branch or iteration failed the execution: this call was cut off with no
            # result of its own, and must not inherit that failure.
            error = as_text(details.get("error"))
            self._aborts.cut_off(attempt, self._id, self._type, self._event, error)
            return
        # Timed out or stopped: the end of the execution is what ended this call.
        self._close(attempt, outcome)
        read_failure(attempt, details)

    def _on_redriven(self, link: Link) -> Link:
        count = as_int(self._details().get("redriveCount"))
        self._redrive_count = count if count is not None else self._redrive_count + 1
        self._redriven = True
        return ROOT

    # ----------------------------------------------------------------- attempts

    def _new_attempt(self, entry: Entry) -> ParsedAttempt:
        entry.attempts += 1
        # Few keyword arguments: matching each one against 30 fields costs more than setting it.
        attempt = ParsedAttempt(
            state_name=entry.name, attempt_number=entry.attempts, entered_event_id=entry.entered_id
        )
        info = entry.info
        if info is not None:
            attempt.method = info.method or ""
            attempt.url = info.endpoint or ""
            attempt.connection_arn = info.connection_arn or ""
        attempt.redrive_count = self._redrive_count
        attempt.branch_path = entry.path
        return attempt

    def _close(self, attempt: ParsedAttempt, outcome: str) -> None:
        close_attempt(attempt, outcome, self._id, self._type, self._event.get("timestamp"))

    def _settle(self, entry: Entry, next_type: str) -> None:
        attempt = entry.pending
        if attempt is None:
            return
        entry.pending = None
        if attempt.outcome != OUTCOME_SUCCEEDED:
            attempt.final_attempt = next_type != "TaskScheduled"
            attempt.caught = next_type == "TaskStateExited"
        elif next_type in _STATE_FAILURES:
            # The call succeeded and the state failed right after: its definition's fault.
            details = self._details(_STATE_FAILURES[next_type])
            attempt.state_error = as_text(details.get("error"))
            attempt.state_cause = as_text(details.get("cause"))
        self._ready.append(attempt)

    # ----------------------------------------------------------------- recovery

    def _entry_in_flight(self) -> Entry | None:
        # The predecessor is unknown (ERROR-level logs, a lost page): only an unambiguous
        # call in flight can be chosen.
        flying = self._flights()
        if len(flying) == 1:
            self._problem(f"event {self._id} ({self._type}) linked to its call by elimination")
            return flying[0]
        return None

    def _flights(self) -> list[Entry]:
        # None past a few dozen open states: scanning them for every event would be quadratic.
        if len(self._open) > _MAX_SCAN:
            return []
        return sorted((e for e in self._open.values() if e.current is not None), key=entry_order)

    def _adopt(self, details: Mapping[str, Any]) -> Entry | None:
        """A Task event whose state entry is unknown: a redrive, a lost page or ERROR logs."""
        if self._redriven and self._recently_failed:
            entry = self._recently_failed.pop()
            entry.current = entry.pending = None
            self._open[id(entry)] = entry
            return entry
        idle = (
            []
            if len(self._open) > _MAX_SCAN
            else [e for e in self._open.values() if e.current is None and e.http is not False]
        )
        if len(idle) == 1:
            return idle[0]
        if details.get("resourceType") != "http" and not parameter(details, "ApiEndpoint"):
            return None
        self._problem(f"event {self._id} ({self._type}) belongs to no known state entry")
        url = parameter(details, "ApiEndpoint")
        return self._orphan(state_calling(self._http_states, url), "")

    def _open_entry(self, name: str) -> Entry | None:
        if len(self._open) > _MAX_SCAN:
            return None
        named = [e for e in self._open.values() if e.name == name]
        return named[0] if len(named) == 1 else None

    def _orphan(self, name: str, path: str) -> Entry:
        entry = Entry(name, path, None, self._http_states.get(name))
        entry.http = True
        self._open[id(entry)] = entry
        return entry

    # ----------------------------------------------------------------- the current event

    def _details(self, key: str = "") -> Mapping[str, Any]:
        details = self._event.get(key or DETAILS_KEYS.get(self._type) or details_key(self._type))
        if type(details) is dict or isinstance(details, Mapping):
            return details
        # Raw log records (not normalised) keep their details under `details`.
        details = self._event.get("details")
        return details if isinstance(details, Mapping) else {}

    def _entered_name(self) -> str:
        # Every *StateEntered type keeps its details under the same key.
        name = self._details("stateEnteredEventDetails").get("name")
        return name if isinstance(name, str) else ""

    def _problem(self, text: str) -> None:
        if len(self.problems) < MAX_PROBLEMS - 1:
            self.problems.append(text)
            return
        self._dropped_problems += 1
        del self.problems[MAX_PROBLEMS - 1 :]
        self.problems.append(f"... and {self._dropped_problems} more problems")


def parse_history(
    events: Iterable[Mapping[str, Any]],
    definition: str | bytes | Mapping[str, Any] | None = None,
) -> list[ParsedAttempt]:
    """Parse one whole history (tests, the CLI); ingestion streams pages through HistoryParser."""
    parser = HistoryParser(http_states_from_definition(definition))
    attempts = list(parser.feed(events))
    attempts.extend(parser.finish())
    return attempts
