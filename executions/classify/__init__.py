"""Explain HTTP-task failures: a category from a fixed vocabulary, the evidence, a fix hint.

Pure (stdlib only). The rules are ordered, versioned data (`RULES`, `RULES_VERSION`); the first
rule that matches decides, and every result carries the version so stored attempts can be
reclassified when the rules change. A rule never claims more than its evidence: a bare 400 with
the status text as cause (all real AWS gives) is `client_error`, not a guessed missing field.

Modules: `rules` (the rule data and its version), `checks` and `hints` (what rules call),
`handling` (what the state's Retry/Catch did, for the hints), `facts`, `cause` and `query`
(what rules look at; `query` reads JSONata/JSONPath failures), `context` (what is known beyond
the attempt), `engine` (classify), `sources` (classify_in_context: the one recipe that assembles
the context from a ContextSource; InMemoryContext is one, the database-backed one lives in
executions/stored_context.py), `trackers` (streaming last success, de-authorization
inference), `grouping` (fingerprint),
`titles` (a group's title in words), `exemplars` (which failed executions are alike, and
the breadth-first order their histories are read in), `map_runs` (a Map Run's children's failures together, and
what States.ExceedToleratedFailureThreshold means).
Import from this package, not from the modules.
"""

from __future__ import annotations

from executions.classify.cause import (
    FORBIDDEN_HEADER_PREFIXES,
    FORBIDDEN_HEADERS,
    is_forbidden_header,
)
from executions.classify.checks import HTTP_TASK_TIMEOUT_MS, NEAR_TIMEOUT_CAP_MS
from executions.classify.context import (
    ClassificationContext,
    ConnectionStateChange,
    RequestShape,
)
from executions.classify.engine import (
    Classification,
    classify,
    classify_state_error,
    needs_last_success,
)
from executions.classify.exemplars import exemplars_first, likeness_key, normalised_cause
from executions.classify.grouping import fingerprint
from executions.classify.hints import CONNECTION_SECRET_ARN
from executions.classify.map_runs import THRESHOLD_ERROR, map_run_failures, map_run_hint
from executions.classify.rules import CATEGORIES, RULES, RULES_VERSION, Rule
from executions.classify.sources import (
    ContextSource,
    InMemoryContext,
    attempt_time,
    classify_in_context,
    needs_connection_states,
    with_recorded,
)
from executions.classify.titles import failure_words, group_title
from executions.classify.trackers import DeauthorizationTracker, LastSuccessTracker, endpoint_key

__all__ = [
    "CATEGORIES",
    "CONNECTION_SECRET_ARN",
    "FORBIDDEN_HEADERS",
    "FORBIDDEN_HEADER_PREFIXES",
    "HTTP_TASK_TIMEOUT_MS",
    "NEAR_TIMEOUT_CAP_MS",
    "RULES",
    "RULES_VERSION",
    "THRESHOLD_ERROR",
    "Classification",
    "ClassificationContext",
    "ConnectionStateChange",
    "ContextSource",
    "DeauthorizationTracker",
    "InMemoryContext",
    "LastSuccessTracker",
    "RequestShape",
    "Rule",
    "attempt_time",
    "classify",
    "classify_in_context",
    "classify_state_error",
    "endpoint_key",
    "exemplars_first",
    "failure_words",
    "fingerprint",
    "group_title",
    "is_forbidden_header",
    "likeness_key",
    "map_run_failures",
    "map_run_hint",
    "needs_connection_states",
    "needs_last_success",
    "normalised_cause",
    "with_recorded",
]
