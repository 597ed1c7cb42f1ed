"""Turn Step Functions execution histories into HTTP-task attempts.

Pure (stdlib only): the ingestion workers, `manage.py classify_history` and the tests share it.
Input is GetExecutionHistory events (pages of up to 1,000, histories of up to 25,000 events) or
CloudWatch execution-log events run through `normalize_log_event`. The parser streams: it keeps
only the states still open and the link from each recent event id to its branch, so a whole
history is never held in memory.

Events are attributed by `previousEventId`, not by position, because Parallel branches and Map
iterations interleave. Whatever arrives - wrong types, missing keys, invalid JSON - the parser
records a readable problem and carries on; it never raises.

Modules: `events` (scalars, timestamps, log records), `definition` (HTTP states of an ASL
definition), `attempts` (ParsedAttempt and the event readers that fill it), `entries` (what the
parser keeps open), `parser` (HistoryParser), `summary` (what the events say of the execution
itself: its status, times, own error, newest event id; log records regrouped per execution),
`pages` (saved GetExecutionHistory pages joined back into one history per execution),
`variables` (what states assigned, and which variable a request came from), `map_runs`
(a Distributed Map parent's Map Runs, and which run a child execution belongs to). Import
from this package, not from the modules.
"""

from __future__ import annotations

from executions.history.attempts import (
    ABORT_EVENTS,
    NOT_FAILING_OUTCOMES,
    OUTCOME_ABORTED,
    OUTCOME_FAILED,
    OUTCOME_IN_PROGRESS,
    OUTCOME_SUCCEEDED,
    OUTCOME_TIMED_OUT,
    STATE_ABORT_EVENTS,
    UNFINISHED_OUTCOMES,
    ParsedAttempt,
    is_failing_outcome,
    is_finished_outcome,
)
from executions.history.definition import (
    HTTP_RESOURCE_SUFFIX,
    Catcher,
    HttpStateInfo,
    Retrier,
    covers,
    http_states_from_definition,
    is_http_resource,
)
from executions.history.entries import MAX_BRANCH_PATH
from executions.history.events import (
    HTTP_STATUS_ERROR_PREFIX,
    as_int,
    details_key,
    normalize_log_event,
    parse_timestamp,
    status_from_error,
)
from executions.history.map_runs import MapRun, map_run_key, map_runs_in, run_of_child
from executions.history.pages import join_pages
from executions.history.parser import (
    MAX_PROBLEMS,
    TASK_FAILURE_TYPES,
    HistoryParser,
    parse_history,
)
from executions.history.summary import (
    EXECUTION_ERROR_DETAILS,
    EXECUTION_TERMINAL,
    ExecutionSummary,
    LogEventsByExecution,
    LoggedExecution,
    summarize_logged,
)
from executions.history.variables import Assignment, VariableTracker, decode_assigned

__all__ = [
    "ABORT_EVENTS",
    "EXECUTION_ERROR_DETAILS",
    "EXECUTION_TERMINAL",
    "HTTP_RESOURCE_SUFFIX",
    "HTTP_STATUS_ERROR_PREFIX",
    "MAX_BRANCH_PATH",
    "MAX_PROBLEMS",
    "NOT_FAILING_OUTCOMES",
    "OUTCOME_ABORTED",
    "OUTCOME_FAILED",
    "OUTCOME_IN_PROGRESS",
    "OUTCOME_SUCCEEDED",
    "OUTCOME_TIMED_OUT",
    "STATE_ABORT_EVENTS",
    "TASK_FAILURE_TYPES",
    "UNFINISHED_OUTCOMES",
    "Assignment",
    "Catcher",
    "ExecutionSummary",
    "HistoryParser",
    "HttpStateInfo",
    "LogEventsByExecution",
    "LoggedExecution",
    "MapRun",
    "ParsedAttempt",
    "Retrier",
    "VariableTracker",
    "as_int",
    "covers",
    "decode_assigned",
    "details_key",
    "http_states_from_definition",
    "is_failing_outcome",
    "is_finished_outcome",
    "is_http_resource",
    "join_pages",
    "map_run_key",
    "map_runs_in",
    "normalize_log_event",
    "parse_history",
    "parse_timestamp",
    "run_of_child",
    "status_from_error",
    "summarize_logged",
]
