"""Choice sets of the executions app, with one colour map per set."""

from __future__ import annotations

from django.db import models

from executions.history import (
    EXECUTION_TERMINAL,
    OUTCOME_ABORTED,
    OUTCOME_FAILED,
    OUTCOME_IN_PROGRESS,
    OUTCOME_SUCCEEDED,
    OUTCOME_TIMED_OUT,
)


class StateMachineType(models.TextChoices):
    STANDARD = "STANDARD"
    EXPRESS = "EXPRESS"


class LoggingLevel(models.TextChoices):
    ALL = "ALL"
    ERROR = "ERROR"
    FATAL = "FATAL"
    OFF = "OFF"


class ExecutionStatus(models.TextChoices):
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    TIMED_OUT = "TIMED_OUT"
    ABORTED = "ABORTED"
    PENDING_REDRIVE = "PENDING_REDRIVE"

    @property
    def colour(self) -> str:
        return EXECUTION_STATUS_COLOURS[self]


EXECUTION_STATUS_COLOURS = {
    ExecutionStatus.RUNNING: "blue",
    ExecutionStatus.SUCCEEDED: "green",
    ExecutionStatus.FAILED: "red",
    ExecutionStatus.TIMED_OUT: "orange",
    ExecutionStatus.ABORTED: "grey",
    ExecutionStatus.PENDING_REDRIVE: "blue",
}
# The statuses an execution ends with, as the history reader knows them (a status it knew
# and this set did not would fail here, at import).
TERMINAL_STATUSES = frozenset(ExecutionStatus(status) for status in EXECUTION_TERMINAL.values())
# The ends that are failures: counted from ListExecutions at once, read before successes.
FAILED_STATUSES = frozenset(
    {ExecutionStatus.FAILED, ExecutionStatus.TIMED_OUT, ExecutionStatus.ABORTED}
)


class HistorySource(models.TextChoices):
    HISTORY = "history", "GetExecutionHistory"
    LOGS = "logs", "CloudWatch Logs"
    # Its history could not be read (a KMS key the reader may not use): status and times only.
    LISTING = "listing", "ListExecutions only (history unreadable)"


class Outcome(models.TextChoices):
    """An attempt's outcome, as the pure parser names it (executions.history.OUTCOME_*)."""

    SUCCEEDED = OUTCOME_SUCCEEDED
    FAILED = OUTCOME_FAILED
    TIMED_OUT = OUTCOME_TIMED_OUT
    ABORTED = OUTCOME_ABORTED
    IN_PROGRESS = OUTCOME_IN_PROGRESS


class Category(models.TextChoices):
    """The fixed failure vocabulary: the pure classifier's CATEGORIES (executions.classify),
    same values, same order (a test holds them together), with labels."""

    TIMEOUT = "timeout", "Timeout"
    AUTH = "auth", "Authentication"
    PERMISSIONS = "permissions", "IAM permissions"
    MISSING_HEADER = "missing_header", "Missing header"
    MISSING_PARAMETER = "missing_parameter", "Missing parameter"
    RATE_LIMITED = "rate_limited", "Rate limited"
    CLIENT_ERROR = "client_error", "Other 4xx"
    SERVER_ERROR = "server_error", "5xx"
    NETWORK = "network", "Network"
    PAYLOAD_TOO_LARGE = "payload_too_large", "Payload too large"
    INVALID_REQUEST = "invalid_request", "Invalid request"
    UNKNOWN = "unknown", "Unknown"

    @property
    def colour(self) -> str:
        return CATEGORY_COLOURS[self]


# Okabe–Ito based palette: distinguishable with the common colour-vision deficiencies.
# Charts also draw a pattern per category, so colour is never the only cue.
CATEGORY_COLOURS = {
    Category.TIMEOUT: "#E69F00",
    Category.AUTH: "#D55E00",
    Category.PERMISSIONS: "#CC79A7",
    Category.MISSING_HEADER: "#0072B2",
    Category.MISSING_PARAMETER: "#56B4E9",
    Category.RATE_LIMITED: "#F0E442",
    Category.CLIENT_ERROR: "#009E73",
    Category.SERVER_ERROR: "#000000",
    Category.NETWORK: "#999999",
    Category.PAYLOAD_TOO_LARGE: "#882255",
    Category.INVALID_REQUEST: "#44AA99",
    Category.UNKNOWN: "#BBBBBB",
}


class GroupStatus(models.TextChoices):
    OPEN = "open", "Open"
    RESOLVED = "resolved", "Resolved"
    IGNORED = "ignored", "Ignored"

    @property
    def colour(self) -> str:
        return GROUP_STATUS_COLOURS[self]


GROUP_STATUS_COLOURS = {
    GroupStatus.OPEN: "red",
    GroupStatus.RESOLVED: "green",
    GroupStatus.IGNORED: "grey",
}


class GroupTransitionKind(models.TextChoices):
    """How a failure group changed state (executions.transitions records each one)."""

    OPENED = "opened", "New failure group"
    REGRESSED = "regressed", "Regressed after it was resolved"
    WORSENED = "worsened", "Got worse while snoozed until it gets worse"
