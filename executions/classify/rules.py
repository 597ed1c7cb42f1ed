"""The classifier's rules: ordered, versioned data. The first rule that matches decides.

Change RULES_VERSION with any change here (or in a check or hint that alters a result):
every stored classification carries the version, and `manage.py reclassify` re-runs those
classified by an older one. A rule never claims more than its evidence: a bare 400 with the
status text as cause (all real AWS gives) is `client_error`, not a guessed missing field.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from connections.deauthorization import INVALID_STATE
from executions.classify import checks, hints, query
from executions.classify import connection_states as conn
from executions.classify.facts import Facts
from executions.history import OUTCOME_ABORTED, OUTCOME_IN_PROGRESS, OUTCOME_SUCCEEDED

RULES_VERSION = "2026.12.7"
CATEGORIES = (
    "timeout",
    "auth",
    "permissions",
    "missing_header",
    "missing_parameter",
    "rate_limited",
    "client_error",
    "server_error",
    "network",
    "payload_too_large",
    "invalid_request",
    "unknown",
)


@dataclass(frozen=True, slots=True)
class Rule:
    """When `errors`/`statuses`/`outcomes` (empty = any) and `check` all hold, the rule decides."""

    id: str
    category: str | None
    subcategory: str  # "{status}" is replaced by the status code
    hint: Callable[[Facts], str]
    errors: frozenset[str] = frozenset()
    statuses: tuple[int, int] | None = None
    outcomes: frozenset[str] = frozenset()
    check: Callable[[Facts], bool] | None = None
    decided_by: tuple[str, ...] = ("error",)

    def admits(self, outcome: str, error: str, status: int | None) -> bool:
        """The static part of the match: what the rule's data says, without `check`."""
        if self.outcomes and outcome not in self.outcomes:
            return False
        if self.errors and error not in self.errors:
            return False
        return self.statuses is None or (
            status is not None and self.statuses[0] <= status <= self.statuses[1]
        )

    def matches(self, facts: Facts) -> bool:
        admitted = self.admits(facts.attempt.outcome, facts.error, facts.status)
        return admitted and (self.check is None or self.check(facts))


def _hint_unknown(f: Facts) -> str:
    # Here, not in hints: it names the version of this rule set.
    if not f.error:
        return (
            f"{f.call} failed without an error name in the history — look at the execution's events"
        )
    return f"{f.call} failed with {f.error}, which no rule in {RULES_VERSION} recognises"


@dataclass(frozen=True, slots=True)
class RuntimeReason:
    """A States.Runtime cause that names what the task's definition got wrong."""

    key: str  # the subcategory
    pattern: re.Pattern[str]  # searched in the cause
    fix: str  # the hint's advice


# States.Runtime causes other than forbidden headers, query failures and binary responses:
# reference §2 names the conditions (AWS's wording is unrecorded); the patterns also match
# the sandbox's wording, which tests/executions/test_fidelity.py lists from its own code.
RUNTIME_REASONS: tuple[RuntimeReason, ...] = tuple(
    RuntimeReason(key, re.compile(pattern, re.IGNORECASE), fix)
    for key, pattern, fix in (
        ("string_body_with_connection_body",
         r"string RequestBody cannot be combined|RequestBody.{0,40}string.{0,80}body param",
         "send RequestBody as a JSON object (the connection's body parameters are merged into "
         "it), or move those parameters out of the connection"),
        ("invalid_endpoint", r"ApiEndpoint\b.{0,300}\bnot a valid URL",
         "make ApiEndpoint an absolute https:// URL (check the expression that builds it)"),
        ("unsupported_method", r"\bMethod\b.{0,40}\bnot supported",
         "use one of GET, POST, PUT, DELETE, PATCH, OPTIONS or HEAD as Method"),
        ("unsupported_array_format", r"ArrayFormat\b.{0,40}\bnot supported",
         "set Transform.RequestEncodingOptions.ArrayFormat to INDICES, REPEAT, COMMAS or BRACKETS"),
        ("invalid_query_parameters", r"QueryParameters must be",
         "give QueryParameters as an object of names to values"),
        ("unreadable_response", r"response body could not be read|not readable as (?:a )?string",
         "the endpoint answered with a body that is not text: ask for a JSON/text "
         "representation"),
    )
)  # fmt: skip

_CONNECTION = "Events.ConnectionResource."
_SUCCEEDED = frozenset({OUTCOME_SUCCEEDED})

# fmt: off
RULES: tuple[Rule, ...] = (
    Rule("success.partial", None, "partial_content", hints.partial,
         outcomes=_SUCCEEDED, statuses=(206, 206), decided_by=("status_code",)),
    Rule("success", None, "succeeded", hints.success,
         outcomes=_SUCCEEDED, decided_by=("outcome",)),
    Rule("in_progress", None, "in_progress", hints.in_progress,
         outcomes=frozenset({OUTCOME_IN_PROGRESS}), decided_by=("outcome",)),
    # Not a failure (executions.history.attempts says why), so no category: explained, not grouped.
    Rule("aborted", None, "aborted", hints.aborted, outcomes=frozenset({OUTCOME_ABORTED}),
         check=checks.aborted, decided_by=("outcome", "closed_event")),
    Rule("timeout.execution", "timeout", "execution_timeout", hints.execution_timeout,
         check=checks.execution_timed_out, decided_by=("closed_event",)),
    # Before the plain timeouts: a private connection just created or updated (issue 15 item 6).
    Rule("network.private_provisioning", "network", "private_connection_provisioning",
         conn.provisioning_hint, errors=conn.PROVISIONING_ERRORS, check=conn.provisioning),
    Rule("timeout.task", "timeout", "task_timeout", hints.task_timeout,
         check=checks.task_timed_out),
    Rule("timeout.http_cap", "timeout", "http_60s_limit", hints.cap,
         errors=frozenset({"States.Http.Socket"}), check=checks.near_cap),
    Rule("network.socket", "network", "socket", hints.socket,
         errors=frozenset({"States.Http.Socket"})),
    # The connection's recorded state tells a network path from credentials and a KMS key.
    Rule("network.failed_connectivity", "network", "connection_failed_connectivity",
         conn.failed_connectivity_hint, check=conn.failed_connectivity,
         errors=frozenset({INVALID_STATE, _CONNECTION + "InvalidPrivateConnectionState"})),
    Rule("permissions.connection_kms", "permissions", "connection_kms_key",
         conn.kms_deauthorized_hint, errors=frozenset({INVALID_STATE}),
         check=conn.kms_deauthorized),
    Rule("auth.deauthorized", "auth", "connection_deauthorized", hints.deauthorized,
         errors=frozenset({INVALID_STATE})),
    Rule("network.private_connection", "network", "private_connection_not_active", hints.private,
         errors=frozenset({_CONNECTION + "InvalidPrivateConnectionState"})),
    Rule("permissions.connection", "permissions", "connection_credentials",
         hints.connection_credentials, errors=frozenset({_CONNECTION + "AccessDenied"})),
    Rule("permissions.invoke", "permissions", "invoke_http_endpoint", hints.invoke_permission,
         check=checks.permission_denied),
    Rule("invalid.connection_missing", "invalid_request", "connection_not_found",
         hints.connection_missing, errors=frozenset({_CONNECTION + "ResourceNotFound"})),
    Rule("auth.authorizing", "auth", "connection_authorizing", hints.authorizing,
         errors=frozenset({_CONNECTION + "AuthInProgress"})),
    Rule("auth.connection_updating", "auth", "connection_updating", hints.concurrent,
         errors=frozenset({_CONNECTION + "ConcurrentModification"})),
    Rule("server.eventbridge", "server_error", "eventbridge_internal", hints.eventbridge,
         errors=frozenset({_CONNECTION + "InternalError"})),
    Rule("payload.response", "payload_too_large", "response_over_256kib", hints.data_limit,
         errors=frozenset({"States.DataLimitExceeded"})),
    Rule("invalid.forbidden_header", "invalid_request", "forbidden_header",
         hints.forbidden_header, errors=frozenset({"States.Runtime"}),
         check=checks.forbidden_header),
    # Not tied to one error name: JSONPath says States.Runtime, JSONata States.QueryEvaluationError.
    # The cause's wording tells a value missing from the input from a broken expression (§8).
    Rule("missing_parameter.jsonpath", "missing_parameter", "path_found_nothing",
         hints.query_missing, check=checks.query_failure(query.MISSING_VALUE)),
    Rule("invalid.jsonata_error", "invalid_request", "expression_error", hints.query_invalid,
         check=checks.query_failure(query.EVALUATION_ERROR)),
    Rule("invalid.jsonata_type", "invalid_request", "unexpected_result_type",
         hints.query_invalid, check=checks.query_failure(query.RESULT_TYPE)),
    Rule("invalid.path_matches_nothing", "invalid_request", "path_matches_nothing",
         hints.query_invalid, check=checks.query_failure(query.PATH_MATCHES_NOTHING)),
    Rule("invalid.response_type", "invalid_request", "unsupported_response_type",
         hints.content_type, errors=frozenset({"States.Runtime"}),
         check=checks.cause_content_type),
    *(Rule(f"invalid.runtime.{reason.key}", "invalid_request", reason.key,
           hints.runtime_fix(reason.fix), errors=frozenset({"States.Runtime"}),
           check=checks.cause_matches(reason.pattern))
      for reason in RUNTIME_REASONS),
    Rule("unknown.runtime", "unknown", "runtime", hints.runtime,
         errors=frozenset({"States.Runtime"})),
    Rule("auth.unauthorized", "auth", "http_{status}", hints.unauthorized,
         statuses=(401, 401), check=checks.note_diff, decided_by=("status_code",)),
    Rule("auth.proxy", "auth", "http_{status}", hints.unauthorized,
         statuses=(407, 407), decided_by=("status_code",)),
    Rule("auth.forbidden", "auth", "forbidden", hints.forbidden,
         statuses=(403, 403), check=checks.note_diff, decided_by=("status_code",)),
    Rule("rate_limited", "rate_limited", "http_429", hints.rate_limited,
         statuses=(429, 429), decided_by=("status_code",)),
    Rule("payload.request", "payload_too_large", "request_too_large", hints.request_too_large,
         statuses=(413, 413), decided_by=("status_code",)),
    Rule("timeout.http_408", "timeout", "http_408", hints.request_timeout,
         statuses=(408, 408), decided_by=("status_code",)),
    Rule("missing_header.cause", "missing_header", "named_in_response", hints.cause_header,
         statuses=(400, 499), check=checks.cause_names_header, decided_by=("status_code",)),
    Rule("missing_parameter.cause", "missing_parameter", "named_in_response", hints.cause_field,
         statuses=(400, 499), check=checks.cause_names_field, decided_by=("status_code",)),
    Rule("missing_header.diff", "missing_header", "absent_vs_last_success", hints.diff_header,
         statuses=(400, 499), check=checks.diff_headers, decided_by=("status_code",)),
    Rule("missing_parameter.diff", "missing_parameter", "absent_vs_last_success",
         hints.diff_param, statuses=(400, 499), check=checks.diff_params,
         decided_by=("status_code",)),
    Rule("client_error", "client_error", "http_{status}", hints.client_error,
         statuses=(400, 499), decided_by=("status_code",)),
    Rule("server_error", "server_error", "http_{status}", hints.server_error,
         statuses=(500, 599), decided_by=("status_code",)),
    Rule("unknown.status", "unknown", "http_{status}", hints.other_status,
         statuses=(100, 999), decided_by=("status_code",)),
    Rule("unknown.no_error", "unknown", "no_error_recorded", _hint_unknown,
         check=checks.no_error, decided_by=("outcome",)),
    Rule("unknown", "unknown", "unrecognised_error", _hint_unknown),
)
# fmt: on
FALLBACK = RULES[-1]

# A state that failed after its call succeeded: what the definition did with the answer.
# fmt: off
STATE_RULES: tuple[Rule, ...] = (
    Rule("definition.after_response.path", "invalid_request", "after_response_path",
         hints.after_response, outcomes=_SUCCEEDED,
         check=checks.query_failure(*query.KINDS), decided_by=("state_error",)),
    Rule("definition.after_response", "invalid_request", "after_response", hints.after_response,
         outcomes=_SUCCEEDED, decided_by=("state_error",)),
)
# fmt: on
