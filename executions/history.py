"""Turn Step Functions execution histories into HTTP-task attempts.

Pure (stdlib only): the ingestion workers, `manage.py classify_history` and the tests share it.
Input is GetExecutionHistory events (pages of up to 1,000, histories of up to 25,000 events) or
CloudWatch execution-log events run through `normalize_log_event`. The parser streams: it keeps
only the states still open and the link from each recent event id to its branch, so a whole
history is never held in memory.

Events are attributed by `previousEventId`, not by position, because Parallel branches and Map
iterations interleave. Whatever arrives - wrong types, missing keys, invalid JSON - the parser
records a readable problem and carries on; it never raises.
"""

from __future__ import annotations

import json
import math
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

HTTP_RESOURCE_SUFFIX = ":states:::http:invoke"
HTTP_STATUS_ERROR_PREFIX = "States.Http.StatusCode."

OUTCOME_SUCCEEDED = "succeeded"
OUTCOME_FAILED = "failed"
OUTCOME_TIMED_OUT = "timed_out"
OUTCOME_IN_PROGRESS = "in_progress"

MAX_BRANCH_PATH = 200  # the column width of HttpAttempt.branch_path
MAX_PROBLEMS = 100  # garbage input must not grow the problem list without bound
_MAX_DEFINITION_DEPTH = 40
_MAX_SCAN = 64  # open states searched when an event's predecessor is unknown
_EPOCH_MS_THRESHOLD = 1e11  # 1e11 s is the year 5138, so anything larger is milliseconds

_TASK_FAILURES = {
    "TaskFailed": OUTCOME_FAILED,
    "TaskTimedOut": OUTCOME_TIMED_OUT,
    "TaskStartFailed": OUTCOME_FAILED,
    "TaskSubmitFailed": OUTCOME_FAILED,
}
_EXECUTION_ENDS = {
    "ExecutionFailed": ("executionFailedEventDetails", OUTCOME_FAILED),
    "ExecutionTimedOut": ("executionTimedOutEventDetails", OUTCOME_TIMED_OUT),
    "ExecutionAborted": ("executionAbortedEventDetails", OUTCOME_FAILED),
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


# --------------------------------------------------------------------------- definitions


@dataclass(frozen=True, slots=True)
class HttpStateInfo:
    """What the state machine definition says statically about one HTTP Task state."""

    name: str
    endpoint: str | None
    method: str | None
    connection_arn: str | None
    # Lower-cased names from the static Headers block (an addition beyond the shared contract):
    # a state that fails before its TaskScheduled still shows which headers it would send.
    header_names: frozenset[str] = frozenset()


def http_states_from_definition(
    definition: str | bytes | Mapping[str, Any] | None,
) -> dict[str, HttpStateInfo]:
    """Find every `http:invoke` Task state, including inside Parallel branches and Map states.

    Values that are computed at run time (`ApiEndpoint.$`, JSONata `{% %}`) come back as None.
    Never raises: an unreadable definition yields {}.
    """
    document = _load_json(definition) if isinstance(definition, str | bytes) else definition
    found: dict[str, HttpStateInfo] = {}
    if isinstance(document, Mapping):
        _walk_states(document, found, 0)
    return found


def _walk_states(machine: Mapping[str, Any], found: dict[str, HttpStateInfo], depth: int) -> None:
    states = machine.get("States")
    if depth > _MAX_DEFINITION_DEPTH or not isinstance(states, Mapping):
        return
    for name, state in states.items():
        if not isinstance(name, str) or not isinstance(state, Mapping):
            continue
        if is_http_resource(state.get("Resource")):
            found[name] = _state_info(name, state)
        for branch in _as_list(state.get("Branches")):
            if isinstance(branch, Mapping):
                _walk_states(branch, found, depth + 1)
        for key in ("Iterator", "ItemProcessor"):
            child = state.get(key)
            if isinstance(child, Mapping):
                _walk_states(child, found, depth + 1)


def is_http_resource(resource: object) -> bool:
    """`arn:aws:states:::http:invoke` in any partition (aws, aws-cn, aws-us-gov)."""
    return (
        isinstance(resource, str)
        and resource.startswith("arn:")
        and resource.endswith(HTTP_RESOURCE_SUFFIX)
    )


def _state_info(name: str, state: Mapping[str, Any]) -> HttpStateInfo:
    # JSONPath states use Parameters, JSONata states use Arguments; the keys are the same.
    params = state.get("Parameters")
    if not isinstance(params, Mapping):
        params = state.get("Arguments")
    if not isinstance(params, Mapping):
        return HttpStateInfo(name=name, endpoint=None, method=None, connection_arn=None)
    method = _static_text(params, "Method")
    headers = params.get("Headers")
    return HttpStateInfo(
        name=name,
        endpoint=_static_text(params, "ApiEndpoint"),
        method=method.upper() if method else None,
        connection_arn=_connection_arn(params, _static_text),
        header_names=_header_names(headers) if isinstance(headers, Mapping) else frozenset(),
    )


def _header_names(headers: Mapping[str, Any]) -> frozenset[str]:
    # "X-Api-Key.$" is the same header with a JSONPath value.
    return frozenset(str(k).removesuffix(".$").lower() for k in headers if isinstance(k, str) and k)


def _static_text(params: Mapping[str, Any], key: str) -> str | None:
    value = params.get(key)
    if isinstance(value, str) and value and not value.lstrip().startswith("{%"):
        return value
    return None


def _connection_arn(
    params: Mapping[str, Any], read: Callable[[Mapping[str, Any], str], str | None]
) -> str | None:
    # InvocationConfig is the recommended spelling; Authentication is the original one.
    for key in ("InvocationConfig", "Authentication"):
        block = params.get(key)
        if isinstance(block, Mapping):
            arn = read(block, "ConnectionArn")
            if arn:
                return arn
    return None


# --------------------------------------------------------------------------- log events


@lru_cache(maxsize=512)
def details_key(event_type: str) -> str:
    """The HistoryEvent member that holds an event type's details (`TaskFailed` → taskFailed…)."""
    return _details_key(event_type)


def _details_key(event_type: str) -> str:
    if event_type.endswith("StateEntered"):
        return "stateEnteredEventDetails"
    if event_type.endswith("StateExited"):
        return "stateExitedEventDetails"
    return event_type[:1].lower() + event_type[1:] + "EventDetails"


# The hot path looks known types up here instead of calling details_key().
_DETAILS_KEYS = {
    t: _details_key(t)
    for t in (
        "TaskStateEntered", "TaskScheduled", "TaskStarted", "TaskSucceeded", "TaskFailed",
        "TaskTimedOut", "TaskStartFailed", "TaskSubmitFailed", "TaskSubmitted", "TaskStateExited",
        "TaskStateAborted", "EvaluationFailed", "ExecutionRedriven", "MapIterationStarted",
        "ExecutionFailed", "ExecutionTimedOut", "ExecutionAborted", "ParallelStateEntered",
        "MapStateEntered", "PassStateEntered", "ChoiceStateEntered", "WaitStateEntered",
    )
}  # fmt: skip


def normalize_log_event(message: str | bytes | Mapping[str, Any]) -> dict[str, Any] | None:
    """A CloudWatch execution-log record as a GetExecutionHistory-shaped event, or None.

    Log records carry every envelope field as a string and the timestamp in milliseconds;
    `details` holds what history puts under `<type>EventDetails`.
    """
    record = _load_json(message) if isinstance(message, str | bytes) else message
    if not isinstance(record, Mapping):
        return None
    event_type = record.get("type")
    event_id = as_int(record.get("id"))
    if not isinstance(event_type, str) or not event_type or event_id is None:
        return None
    arn = record.get("execution_arn")
    event: dict[str, Any] = {
        "id": event_id,
        "previousEventId": as_int(record.get("previous_event_id")) or 0,
        "type": event_type,
        "timestamp": parse_timestamp(record.get("event_timestamp")),
        "_execution_arn": arn if isinstance(arn, str) else "",
        "_redrive_count": as_int(record.get("redrive_count")) or 0,
    }
    details = record.get("details")
    if isinstance(details, Mapping):
        event[details_key(event_type)] = dict(details)
    return event


# --------------------------------------------------------------------------- scalars


def parse_timestamp(value: object) -> datetime | None:
    """datetime, epoch seconds or milliseconds (number or numeric string), or ISO 8601 → UTC."""
    if (type(value) is float or type(value) is int) and abs(value) < _EPOCH_MS_THRESHOLD:
        # The raw API's epoch seconds: the common case, kept free of the checks below.
        try:
            return datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    try:
        if isinstance(value, datetime):
            aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
            return aware.astimezone(UTC)
        if isinstance(value, bool):
            return None
        if isinstance(value, int | float):
            return _from_epoch(float(value))
        if isinstance(value, str):
            return _timestamp_from_text(value.strip())
    except (ValueError, OverflowError, OSError):
        pass
    return None


def _timestamp_from_text(text: str) -> datetime | None:
    if not text or len(text) > 64:
        return None
    try:
        return _from_epoch(float(text))
    except ValueError:
        pass
    parsed = datetime.fromisoformat(text)
    aware = parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
    return aware.astimezone(UTC)


def _from_epoch(seconds: float) -> datetime | None:
    if not math.isfinite(seconds):
        return None
    if abs(seconds) >= _EPOCH_MS_THRESHOLD:
        seconds /= 1000.0
    return datetime.fromtimestamp(seconds, UTC)


def as_int(value: object) -> int | None:
    """An int from an int, an integral float or a decimal string; None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    if isinstance(value, str) and 0 < len(value) < 20:
        try:
            return int(value)
        except ValueError:
            return None
    return None


def status_from_error(error: str) -> int | None:
    """`States.Http.StatusCode.404` → 404."""
    if error.startswith(HTTP_STATUS_ERROR_PREFIX):
        code = as_int(error[len(HTTP_STATUS_ERROR_PREFIX) :])
        if code is not None and 100 <= code <= 999:
            return code
    return None


def _load_json(raw: str | bytes) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        return None


def _as_list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    # Emulators sometimes put the response body object itself in `cause`.
    try:
        return json.dumps(value, default=str)
    except (ValueError, TypeError, RecursionError):
        return ""


# --------------------------------------------------------------------------- attempts


@dataclass(slots=True)
class ParsedAttempt:
    """One HTTP call attempt of one HTTP Task state entry (retries are separate attempts).

    Request fields are raw, as the history holds them: ingestion redacts before storing.
    """

    state_name: str
    attempt_number: int
    entered_event_id: int | None = None
    scheduled_event_id: int | None = None
    closed_event_id: int | None = None
    scheduled_at: datetime | None = None
    started_at: datetime | None = None
    closed_at: datetime | None = None
    duration_ms: int | None = None
    method: str = ""
    url: str = ""
    connection_arn: str = ""
    request_headers: dict[str, Any] = field(default_factory=dict)
    request_query: Any = None
    request_body: Any = None
    parameters_raw: str | None = None
    status_code: int | None = None
    response_headers: dict[str, Any] = field(default_factory=dict)
    response_body: Any = None
    error: str = ""
    cause: str = ""
    outcome: str = OUTCOME_IN_PROGRESS
    caught: bool = False
    final_attempt: bool = True
    redrive_count: int = 0
    branch_path: str = ""
    problems: list[str] = field(default_factory=list)
    # Additions beyond the shared contract (all defaulted, so constructors keep working):
    closed_event_type: str = ""  # TaskFailed, TaskTimedOut, TaskStateAborted, ExecutionFailed…
    timeout_seconds: int | None = None  # TaskScheduled.timeoutInSeconds, for timeout hints
    response_truncated: bool = False  # outputDetails.truncated: the response was cut


class _Entry:
    """One entry into a Task state: its attempts share it until the state is left."""

    __slots__ = ("attempts", "current", "entered_id", "http", "info", "name", "path", "pending")

    def __init__(
        self, name: str, path: str, entered_id: int | None, info: HttpStateInfo | None
    ) -> None:
        self.name = name
        self.path = path
        self.entered_id = entered_id
        self.info = info
        # True/False once a TaskScheduled says which integration this is; the definition
        # settles it earlier when known.
        self.http: bool | None = True if info is not None else None
        self.attempts = 0
        self.current: ParsedAttempt | None = None  # scheduled, not closed yet
        self.pending: ParsedAttempt | None = None  # failed; waiting to see retry / Catch / end


class _Fork:
    """A Parallel or Map state that has started branches or iterations."""

    __slots__ = ("key", "name", "next_index", "path")

    def __init__(self, name: str, path: str) -> None:
        self.name = name
        self.path = path
        self.next_index = 0
        self.key = (path, name)


# A link is what a later event needs from the event it names as previousEventId:
# (branch path, open Task state entry or None, state name for *StateEntered else "").
_Link = tuple[str, _Entry | None, str]
_ROOT: _Link = ("", None, "")


class HistoryParser:
    """Streaming parser: feed pages of events, collect attempts as they close, then finish.

    While one event is handled, `_event`, `_id`, `_prev` and `_type` describe it (a cursor),
    which keeps the per-event handlers small and the hot loop free of argument shuffling.
    """

    def __init__(self, http_states: Mapping[str, HttpStateInfo] | None = None) -> None:
        self._http_states: Mapping[str, HttpStateInfo] = http_states or {}
        self.problems: list[str] = []
        self._links: dict[int, _Link] = {}
        self._forks: dict[int, _Fork] = {}
        self._fork_ids: dict[tuple[str, str], int] = {}
        self._open: dict[int, _Entry] = {}  # keyed by id(entry): entered ids may be missing
        self._recently_failed: deque[_Entry] = deque(maxlen=64)  # redrive without re-entry
        self._ready: list[ParsedAttempt] = []
        self._last_id = 0
        self._redrive_count = 0
        self._redriven = False
        self._dropped_problems = 0
        self._event: Mapping[str, Any] = {}
        self._id: int | None = None
        self._prev: int | None = None
        self._type = ""
        self._dispatch: dict[str, Callable[[_Link], _Link]] = {
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
        self._other = self._on_other  # bound once: looked up for most events

    # ----------------------------------------------------------------- public

    def feed(self, events: Iterable[Mapping[str, Any]]) -> Iterator[ParsedAttempt]:
        """Consume one page of events; yield each attempt as soon as its fate is known."""
        ready = self._ready
        for event in self._iterable(events):
            try:
                self._handle(event)
            except Exception as exc:  # the parser must survive anything; say what happened
                self._problem(f"event {self._id} could not be read ({type(exc).__name__})")
            while ready:  # one at a time: a consumer that stops early loses nothing
                yield ready.pop(0)

    def finish(self) -> Iterator[ParsedAttempt]:
        """Flush what is still open: unsettled failures are final, calls in flight in_progress."""
        for entry in sorted(self._open.values(), key=_entry_order):
            self._settle(entry, "")
            if entry.current is not None:
                self._emit(entry.current)
                entry.current = None
        for store in (self._open, self._links, self._forks, self._fork_ids):
            store.clear()
        while self._ready:
            yield self._ready.pop(0)

    # ----------------------------------------------------------------- dispatch

    def _iterable(self, events: object) -> Iterable[Any]:
        # A whole GetExecutionHistory response is accepted in place of its events list.
        if isinstance(events, Mapping):
            events = events.get("events")
        if isinstance(events, str | bytes) or not isinstance(events, Iterable):
            self._problem("the events are not a list")
            return ()
        return events

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
            link = _ROOT
        elif prev in self._forks:
            link = self._fork_link(prev)
        else:
            # Each event has one successor, except Parallel/Map starts (one per branch or
            # iteration), so links are dropped once used: memory follows what is open.
            link = self._links.pop(prev, _ROOT)
        entry = link[1]
        if (
            entry is not None
            and entry.pending is not None
            and entry.pending.closed_event_id == prev
        ):
            self._settle(entry, event_type)
        new_link = self._dispatch.get(event_type, self._other)(link)
        if event_id is not None:
            self._links[event_id] = new_link

    def _fork_link(self, prev: int) -> _Link:
        fork = self._forks[prev]
        link = self._links.get(prev, _ROOT)
        if self._type in _JOIN_TYPES or self._type == "MapIterationStarted":
            return link
        # The first event of a Parallel branch: branches are numbered in order of appearance.
        segment = f"{fork.name}#{fork.next_index}"
        fork.next_index += 1
        return (_child_path(fork.path, segment), None, link[2])

    def _on_other(self, link: _Link) -> _Link:
        path, event_type = link[0], self._type
        if event_type.endswith("StateEntered"):
            return (path, None, self._entered_name())
        if event_type in _FORK_TYPES and self._id is not None:
            self._open_fork(self._id, link[2], path)
            return (path, None, link[2])
        if event_type in _JOIN_TYPES:
            return (self._close_fork(path), None, "")
        return (path, None, "")

    # ----------------------------------------------------------------- branches

    def _open_fork(self, event_id: int, name: str, path: str) -> None:
        fork = _Fork(name, path)
        # A Map nested in a Map starts once per outer iteration: forget the finished ones.
        old = self._fork_ids.pop(fork.key, None)
        if old is not None:
            self._forks.pop(old, None)
            self._links.pop(old, None)
        self._forks[event_id] = fork
        self._fork_ids[fork.key] = event_id

    def _close_fork(self, path: str) -> str:
        # The join names either the fork itself (no branch ran) or the last event of a branch,
        # whose path is one segment deeper than the Parallel/Map state's own.
        fork_id = self._prev if self._prev in self._forks else None
        if fork_id is None:
            parent, _, segment = path.rpartition("/")
            fork_id = self._fork_ids.get((parent, _segment_state(segment)))
        fork = self._forks.pop(fork_id, None) if fork_id is not None else None
        if fork is None or fork_id is None:
            return path.rpartition("/")[0]
        self._fork_ids.pop(fork.key, None)
        self._links.pop(fork_id, None)
        return fork.path

    def _on_map_iteration(self, link: _Link) -> _Link:
        details = self._details()
        fork = self._forks.get(self._prev) if self._prev else None
        name = details.get("name")
        if not isinstance(name, str) or not name:
            name = fork.name if fork is not None else "Map"
        index = as_int(details.get("index"))
        if index is None and fork is not None:
            index, fork.next_index = fork.next_index, fork.next_index + 1
        parent = fork.path if fork is not None else link[0]
        return (_child_path(parent, f"{name}[{'?' if index is None else index}]"), None, "")

    # ----------------------------------------------------------------- task events

    def _on_task_entered(self, link: _Link) -> _Link:
        name = self._entered_name()
        entry = _Entry(name, link[0], self._id, self._http_states.get(name))
        self._open[id(entry)] = entry
        return (link[0], entry, name)

    def _on_scheduled(self, link: _Link) -> _Link:
        details = self._details()
        entry = link[1] or self._adopt(details)
        if entry is None or not _is_http_task(details, entry):
            if entry is not None and details:
                entry.http = False  # without details the failure event may still say "http"
            return (link[0], entry, "")
        entry.http = True
        if entry.pending is not None:  # a retry whose link to the failure was lost
            self._settle(entry, self._type)
        if entry.current is not None:
            entry.current.problems.append("the call never reported an end before the next one")
            self._emit(entry.current)
        attempt = self._new_attempt(entry)
        attempt.scheduled_event_id = self._id
        attempt.scheduled_at = parse_timestamp(self._event.get("timestamp"))
        attempt.timeout_seconds = as_int(details.get("timeoutInSeconds"))
        _read_parameters(attempt, details, self._id)
        entry.current = attempt
        return (entry.path, entry, "")

    def _on_started(self, link: _Link) -> _Link:
        entry = link[1] or self._entry_in_flight()
        if entry is None:
            return (link[0], None, "")
        if entry.current is not None:
            entry.current.started_at = parse_timestamp(self._event.get("timestamp"))
        return (entry.path, entry, "")

    def _on_succeeded(self, link: _Link) -> _Link:
        entry = link[1] or self._entry_in_flight()
        if entry is None or entry.current is None:
            return (link[0], entry, "")
        attempt, entry.current = entry.current, None
        self._close(attempt, OUTCOME_SUCCEEDED)
        _read_output(attempt, self._details(), self._id)
        self._emit(attempt)
        return (entry.path, entry, "")

    def _on_task_failure(self, link: _Link) -> _Link:
        details = self._details()
        entry = link[1] or self._entry_in_flight()
        if entry is None and details.get("resourceType") == "http":
            entry = self._adopt(details)
        if entry is None or not _may_be_http(entry, details):
            return (link[0], entry, "")
        attempt = entry.current or self._new_attempt(entry)
        entry.current = None
        self._close(attempt, _TASK_FAILURES[self._type])
        _read_failure(attempt, details)
        entry.pending = attempt  # final or retried, caught or not: the next event says
        return (entry.path, entry, "")

    def _on_task_left(self, link: _Link) -> _Link:
        entry = link[1]
        if entry is None:
            return (link[0], None, "")
        if entry.pending is not None:  # normally settled already, unless links were lost
            self._settle(entry, self._type)
        if entry.current is not None:
            attempt, entry.current = entry.current, None
            if self._type == "TaskStateAborted":
                self._close(attempt, OUTCOME_FAILED)
                attempt.problems.append("the state was aborted before the call returned")
            else:
                attempt.problems.append("the state was left while the call was in flight")
            self._emit(attempt)
        self._open.pop(id(entry), None)
        return (link[0], None, "")

    def _on_evaluation_failed(self, link: _Link) -> _Link:
        # JSONata: an expression in Arguments failed, so the HTTP call was never made.
        details = self._details()
        entry = link[1]
        state = details.get("state")
        if entry is None and isinstance(state, str) and state in self._http_states:
            entry = self._orphan(state, link[0])
        if entry is None or entry.http is not True or entry.current or entry.attempts:
            return (link[0], entry, "")
        attempt = self._new_attempt(entry)
        self._close(attempt, OUTCOME_FAILED)
        _read_failure(attempt, details)
        entry.pending = attempt
        return (entry.path, entry, "")

    def _on_execution_end(self, link: _Link) -> _Link:
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
            _read_failure(attempt, details)
            self._emit(attempt)
        self._end_everything(outcome, details)
        return (link[0], None, "")

    def _end_everything(self, outcome: str, details: Mapping[str, Any]) -> None:
        # The execution is over: calls still in flight ended with it, and failures that were
        # waiting for a retry or a Catch got neither.
        for entry in sorted(self._open.values(), key=_entry_order):
            self._settle(entry, self._type)
            if entry.current is not None:
                attempt, entry.current = entry.current, None
                self._close(attempt, outcome)
                _read_failure(attempt, details)
                self._emit(attempt)
            if entry.http:
                self._recently_failed.append(entry)
        self._open.clear()

    def _on_redriven(self, link: _Link) -> _Link:
        count = as_int(self._details().get("redriveCount"))
        self._redrive_count = count if count is not None else self._redrive_count + 1
        self._redriven = True
        return _ROOT

    # ----------------------------------------------------------------- attempts

    def _new_attempt(self, entry: _Entry) -> ParsedAttempt:
        entry.attempts += 1
        info = entry.info
        return ParsedAttempt(
            state_name=entry.name,
            attempt_number=entry.attempts,
            entered_event_id=entry.entered_id,
            method=(info.method or "") if info else "",
            url=(info.endpoint or "") if info else "",
            connection_arn=(info.connection_arn or "") if info else "",
            redrive_count=self._redrive_count,
            branch_path=entry.path,
        )

    def _close(self, attempt: ParsedAttempt, outcome: str) -> None:
        attempt.closed_event_id = self._id
        attempt.closed_event_type = self._type
        attempt.closed_at = parse_timestamp(self._event.get("timestamp"))
        attempt.outcome = outcome
        begun = attempt.started_at or attempt.scheduled_at
        if begun is not None and attempt.closed_at is not None:
            millis = int((attempt.closed_at - begun).total_seconds() * 1000)
            if millis >= 0:
                attempt.duration_ms = millis
            else:
                attempt.problems.append("the call ended before it started (clock or id mix-up)")

    def _settle(self, entry: _Entry, next_type: str) -> None:
        attempt = entry.pending
        if attempt is None:
            return
        entry.pending = None
        attempt.final_attempt = next_type != "TaskScheduled"
        attempt.caught = next_type == "TaskStateExited"
        self._emit(attempt)

    def _emit(self, attempt: ParsedAttempt) -> None:
        self._ready.append(attempt)

    # ----------------------------------------------------------------- recovery

    def _entry_in_flight(self) -> _Entry | None:
        # The predecessor is unknown (ERROR-level logs, a lost page): only an unambiguous
        # call in flight can be chosen. Past a few dozen open states nothing is unambiguous,
        # and scanning them for every event of a broken history would be quadratic.
        if len(self._open) > _MAX_SCAN:
            return None
        flying = [e for e in self._open.values() if e.current is not None]
        if len(flying) == 1:
            self._problem(f"event {self._id} ({self._type}) linked to its call by elimination")
            return flying[0]
        return None

    def _adopt(self, details: Mapping[str, Any]) -> _Entry | None:
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
        if details.get("resourceType") != "http" and not _parameter(details, "ApiEndpoint"):
            return None
        self._problem(f"event {self._id} ({self._type}) belongs to no known state entry")
        return self._orphan(self._guess_state_name(details), "")

    def _orphan(self, name: str, path: str) -> _Entry:
        entry = _Entry(name, path, None, self._http_states.get(name))
        entry.http = True
        self._open[id(entry)] = entry
        return entry

    def _guess_state_name(self, details: Mapping[str, Any]) -> str:
        # Without a TaskStateEntered the name is only knowable from the definition.
        if len(self._http_states) == 1:
            return next(iter(self._http_states))
        url = _parameter(details, "ApiEndpoint")
        matches = [n for n, info in self._http_states.items() if url and info.endpoint == url]
        return matches[0] if len(matches) == 1 else ""

    def _details(self, key: str = "") -> Mapping[str, Any]:
        details = self._event.get(key or _DETAILS_KEYS.get(self._type) or details_key(self._type))
        if type(details) is dict or isinstance(details, Mapping):
            return details
        # Raw log records (not normalised) keep their details under `details`.
        details = self._event.get("details")
        return details if isinstance(details, Mapping) else {}

    def _entered_name(self) -> str:
        name = self._details().get("name")
        return name if isinstance(name, str) else ""

    def _problem(self, text: str) -> None:
        if len(self.problems) < MAX_PROBLEMS - 1:
            self.problems.append(text)
            return
        self._dropped_problems += 1
        del self.problems[MAX_PROBLEMS - 1 :]
        self.problems.append(f"... and {self._dropped_problems} more problems")


# --------------------------------------------------------------------------- event readers


def _child_path(parent: str, segment: str) -> str:
    path = f"{parent}/{segment}" if parent else segment
    return path[-MAX_BRANCH_PATH:]


def _segment_state(segment: str) -> str:
    """`Fanout#1` → `Fanout`, `Items[3]` → `Items`: the Parallel/Map state a segment belongs to."""
    if segment.endswith("]"):
        return segment[: segment.rfind("[")]
    return segment.rpartition("#")[0]


def _entry_order(entry: _Entry) -> int:
    return entry.entered_id or 0


def _may_be_http(entry: _Entry, details: Mapping[str, Any]) -> bool:
    if entry.http is not None:
        return entry.http
    return details.get("resourceType") == "http"


def _is_http_task(details: Mapping[str, Any], entry: _Entry) -> bool:
    resource_type = details.get("resourceType")
    if resource_type is not None:
        return resource_type == "http" or is_http_resource(details.get("resource"))
    # includeExecutionData off or an odd emulator: fall back to the definition, then the shape.
    return entry.info is not None or bool(_parameter(details, "ApiEndpoint"))


def _parameter(details: Mapping[str, Any], key: str) -> Any:
    raw = details.get("parameters")
    params = _load_json(raw) if isinstance(raw, str) else raw
    return params.get(key) if isinstance(params, Mapping) else None


def _read_parameters(
    attempt: ParsedAttempt, details: Mapping[str, Any], event_id: int | None
) -> None:
    raw = details.get("parameters")
    if raw is None:
        attempt.problems.append("TaskScheduled has no parameters (execution data not included?)")
        return
    params = raw
    if type(raw) is str or isinstance(raw, bytes):
        params = _load_json(raw)
        if params is None:
            attempt.parameters_raw = raw if isinstance(raw, str) else raw.decode("utf-8", "replace")
            attempt.problems.append(f"the parameters of event {event_id} are not valid JSON")
            return
    if type(params) is not dict and not isinstance(params, Mapping):
        attempt.problems.append(f"the parameters of event {event_id} are not an object")
        return
    _apply_parameters(attempt, params)


def _apply_parameters(attempt: ParsedAttempt, params: Mapping[str, Any]) -> None:
    url = params.get("ApiEndpoint")
    if type(url) is str:
        attempt.url = url
    elif url is not None:
        attempt.problems.append("ApiEndpoint is not a string")
    method = params.get("Method")
    if type(method) is str:
        attempt.method = method.upper()
    connection = _connection_arn(params, _plain_text)
    if connection:
        attempt.connection_arn = connection
    headers = params.get("Headers")
    if type(headers) is dict or isinstance(headers, Mapping):
        attempt.request_headers = dict(headers)
    elif headers is not None:
        attempt.problems.append("Headers is not an object")
    attempt.request_query = params.get("QueryParameters")
    attempt.request_body = params.get("RequestBody")


def _plain_text(params: Mapping[str, Any], key: str) -> str | None:
    value = params.get(key)
    return value if isinstance(value, str) and value else None


def _read_output(attempt: ParsedAttempt, details: Mapping[str, Any], event_id: int | None) -> None:
    output_details = details.get("outputDetails")
    if type(output_details) is dict and output_details.get("truncated") is True:
        attempt.response_truncated = True
        attempt.problems.append("the response was truncated in the history")
    raw = details.get("output")
    if raw is None:
        return
    output = _load_json(raw) if type(raw) is str or isinstance(raw, bytes) else raw
    if type(output) is not dict and not isinstance(output, Mapping):
        if not attempt.response_truncated:
            attempt.problems.append(f"the output of event {event_id} is not a JSON object")
        return
    status = as_int(output.get("StatusCode"))
    if status is not None:
        attempt.status_code = status
    headers = output.get("Headers")
    if isinstance(headers, Mapping):
        attempt.response_headers = dict(headers)
    attempt.response_body = output.get("ResponseBody")


def _read_failure(attempt: ParsedAttempt, details: Mapping[str, Any]) -> None:
    error = details.get("error")
    attempt.error = error if isinstance(error, str) else _text(error)
    attempt.cause = _text(details.get("cause"))
    status = status_from_error(attempt.error)
    if status is not None:
        attempt.status_code = status


def parse_history(
    events: Iterable[Mapping[str, Any]],
    definition: str | bytes | Mapping[str, Any] | None = None,
) -> list[ParsedAttempt]:
    """Parse one whole history (tests, the CLI); ingestion streams pages through HistoryParser."""
    parser = HistoryParser(http_states_from_definition(definition))
    attempts = list(parser.feed(events))
    attempts.extend(parser.finish())
    return attempts
