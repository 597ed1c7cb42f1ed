"""State machines, their executions, and every HTTP-task attempt with its classification."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings
from django.contrib.postgres.indexes import GinIndex
from django.db import models
from django.db.models import Count, F, IntegerField, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.urls import reverse

from connections.models import AwsAccount, Connection, Endpoint
from executions.choices import (
    FAILED_STATUSES,
    TERMINAL_STATUSES,
    Category,
    ExecutionStatus,
    GroupStatus,
    GroupTransitionKind,
    HistorySource,
    LoggingLevel,
    Outcome,
    StateMachineType,
)
from executions.history import (
    NOT_FAILING_OUTCOMES,
    OUTCOME_ABORTED,
    UNFINISHED_OUTCOMES,
    is_failing_outcome,
)


class StateMachine(models.Model):
    """A state machine with at least one HTTP task, and its ingestion cursors."""

    account = models.ForeignKey(AwsAccount, on_delete=models.CASCADE, related_name="state_machines")
    region = models.CharField(max_length=32)
    arn = models.CharField(max_length=2048, unique=True)
    name = models.CharField(max_length=80)
    type = models.CharField(max_length=10, choices=StateMachineType.choices)
    logging_level = models.CharField(
        max_length=5, choices=LoggingLevel.choices, default=LoggingLevel.OFF
    )
    include_execution_data = models.BooleanField(default=False)
    log_group_arn = models.CharField(max_length=2048, blank=True)
    definition = models.TextField(blank=True)
    # {state name: {"endpoint": …, "method": …, "connection_arn": …}} from the definition.
    http_states = models.JSONField(default=dict, blank=True)
    # A customer-managed KMS key (encryptionConfiguration), and what could not be read with the
    # reader's rights ("" when everything was): then the definition, or the histories, are unknown.
    kms_key_id = models.CharField(max_length=2048, blank=True)
    read_problem = models.TextField(blank=True)
    # Cursors: they move only after the data they cover is committed (crash-safe re-runs).
    newest_start_seen = models.DateTimeField(null=True, blank=True)
    logs_cursor_ms = models.BigIntegerField(default=0)
    last_synced_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]
        indexes = [models.Index(fields=["account", "region"])]

    def __str__(self) -> str:
        return self.name

    @property
    def logs_hide_data(self) -> str:
        """What the logging configuration hides, in words ("" when nothing is hidden)."""
        if self.logging_level == LoggingLevel.OFF:
            if self.type == StateMachineType.EXPRESS:
                return "Logging is OFF: Express executions are invisible to Stepscope."
            return ""
        if self.logging_level != LoggingLevel.ALL:
            return f"Logging at {self.logging_level}: successful calls are not logged."
        if not self.include_execution_data:
            return "includeExecutionData is off: logs hold no request or response."
        return ""


# Saved from ListExecutions as FAILED, TIMED_OUT or ABORTED, history not read: "failed — not
# yet inspected" (executions/sync/listing.py).
# Known only from ListExecutions so far: its history is still to be read.
HISTORY_UNREAD = Q(source=HistorySource.LISTING, history_complete=False)
UNINSPECTED = HISTORY_UNREAD & Q(status__in=sorted(FAILED_STATUSES))
# Stored from the log of a Standard machine that logs less than everything (ERROR, or ALL
# without execution data): counted and classified from what the log holds, its history still to
# be read, which upgrades the row in place (executions/sync/logged.py). An Express execution
# has no history to wait for: its LOGS row is incomplete only while it runs.
LOG_OUTLINED = Q(
    source=HistorySource.LOGS,
    history_complete=False,
    state_machine__type=StateMachineType.STANDARD,
)
FAILING_OR_UNINSPECTED = Q(has_failed_attempt=True) | UNINSPECTED


class ExecutionQuerySet(models.QuerySet["Execution"]):
    def visible_to(self, user: Any) -> ExecutionQuerySet:
        return self.filter(account__in=AwsAccount.objects.visible_to(user))

    def failing(self) -> ExecutionQuerySet:
        return self.filter(has_failed_attempt=True)

    def failing_or_uninspected(self) -> ExecutionQuerySet:
        """The failing-executions list: failing attempts seen, or failed and not read yet."""
        return self.filter(FAILING_OR_UNINSPECTED)

    def awaiting_history(self) -> ExecutionQuerySet:
        """Saved from ListExecutions ("failed — not yet inspected") or outlined from a Standard
        machine's log, whose history a sync is still to read. Those of a machine whose
        histories cannot be read are not waiting: they are stuck until its read problem is
        fixed, which the machine's row says."""
        return self.filter(HISTORY_UNREAD | LOG_OUTLINED, state_machine__read_problem="")


class Execution(models.Model):
    """One execution (Standard or Express) and its ingestion bookkeeping."""

    account = models.ForeignKey(AwsAccount, on_delete=models.CASCADE, related_name="executions")
    state_machine = models.ForeignKey(
        StateMachine, on_delete=models.CASCADE, related_name="executions"
    )
    arn = models.CharField(max_length=2048, unique=True)
    name = models.CharField(max_length=256)
    status = models.CharField(max_length=16, choices=ExecutionStatus.choices)
    start_date = models.DateTimeField()
    stop_date = models.DateTimeField(null=True, blank=True)
    error = models.CharField(max_length=256, blank=True)
    cause = models.TextField(blank=True)
    redrive_count = models.PositiveIntegerField(default=0)
    source = models.CharField(
        max_length=10, choices=HistorySource.choices, default=HistorySource.HISTORY
    )
    has_failed_attempt = models.BooleanField(default=False)
    # Highest event id stored: a redriven execution's history is read on from here.
    last_event_id = models.BigIntegerField(default=0)
    history_complete = models.BooleanField(default=False)
    parse_problems = models.JSONField(default=list, blank=True)
    synced_at = models.DateTimeField(auto_now=True)
    # A Distributed Map's child execution: the parent that ran it and the Map Run it belongs to.
    parent_execution = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="children"
    )
    map_run = models.ForeignKey(
        "MapRun", on_delete=models.SET_NULL, null=True, blank=True, related_name="children"
    )

    objects = ExecutionQuerySet.as_manager()

    class Meta:
        ordering = ["-start_date", "-id"]
        indexes = [
            models.Index(fields=["account", "-start_date", "-id"], name="exec_account_start"),
            models.Index(fields=["state_machine", "-start_date", "-id"], name="exec_machine_start"),
            models.Index(
                fields=["-start_date", "-id"],
                condition=Q(has_failed_attempt=True),
                name="exec_failing_start",
            ),
            # The failing-executions list, which also shows failures not inspected yet.
            models.Index(
                fields=["-start_date", "-id"],
                condition=FAILING_OR_UNINSPECTED,
                name="exec_failing_new_start",
            ),
            # Retention (executions/retention.py) finds what to prune by stop time.
            models.Index(fields=["stop_date", "id"], name="exec_stop"),
            # Search by name or ARN (executions/search.py): the name is the ARN's last part.
            GinIndex(fields=["arn"], opclasses=["gin_trgm_ops"], name="exec_arn_trgm"),
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("executions:detail", args=[self.pk])

    @property
    def inspected(self) -> bool:
        """False while it is known only from ListExecutions: its history is still to be read."""
        return not (self.source == HistorySource.LISTING and not self.history_complete)

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def status_colour(self) -> str:
        return ExecutionStatus(self.status).colour


class MapRun(models.Model):
    """One Map Run of a Distributed Map state: started by a parent execution, its items run as
    child executions (Execution.map_run). Status and times come from the parent's history;
    the tolerated failure figures and counts from DescribeMapRun, when AWS let us read it."""

    account = models.ForeignKey(AwsAccount, on_delete=models.CASCADE, related_name="map_runs")
    parent_execution = models.ForeignKey(
        Execution, on_delete=models.CASCADE, related_name="map_runs"
    )
    arn = models.CharField(max_length=2048, unique=True)
    label = models.CharField(max_length=256)  # the Map state's Label, named in children's ARNs
    map_state = models.CharField(max_length=80, blank=True)
    status = models.CharField(max_length=16, choices=ExecutionStatus.choices)
    error = models.CharField(max_length=256, blank=True)
    cause = models.TextField(blank=True)
    redrive_count = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(null=True, blank=True)
    stopped_at = models.DateTimeField(null=True, blank=True)
    tolerated_failure_percentage = models.FloatField(null=True, blank=True)
    tolerated_failure_count = models.PositiveIntegerField(null=True, blank=True)
    # DescribeMapRun's executionCounts ({total, failed, succeeded…}); {} when not read.
    execution_counts = models.JSONField(default=dict, blank=True)
    read_problem = models.TextField(blank=True)  # why DescribeMapRun / its listing failed
    # Its children were listed to the end (or AWS refused them): False is listed again next sync.
    children_listed = models.BooleanField(default=False)

    class Meta:
        ordering = ["started_at", "id"]

    def __str__(self) -> str:
        return self.label or self.arn

    @property
    def status_colour(self) -> str:
        return ExecutionStatus(self.status).colour


class FailureGroupQuerySet(models.QuerySet["FailureGroup"]):
    def visible_to(self, user: Any) -> FailureGroupQuerySet:
        return self.filter(account__in=AwsAccount.objects.visible_to(user))

    def open(self) -> FailureGroupQuerySet:
        return self.filter(status=GroupStatus.OPEN)

    def recount(self) -> int:
        """Exact count, first/last seen and latest hint of these groups, from their attempts
        (recomputed, not incremented: right whatever happened before, a killed worker, a
        retry). One left with no attempt keeps its times, counts 0 (see drop_empty_open)."""
        members = HttpAttempt.objects.filter(failure_group=OuterRef("pk")).order_by()
        newest = members.order_by("-occurred_at", "-id")
        return self.update(
            count=Coalesce(
                Subquery(
                    members.values("failure_group").annotate(n=Count("id")).values("n"),
                    output_field=IntegerField(),
                ),
                0,
            ),
            first_seen_at=Coalesce(
                Subquery(members.order_by("occurred_at").values("occurred_at")[:1]),
                F("first_seen_at"),
            ),
            last_seen_at=Coalesce(Subquery(newest.values("occurred_at")[:1]), F("last_seen_at")),
            hint=Coalesce(Subquery(newest.values("hint")[:1]), F("hint")),
        )


class FailureGroup(models.Model):
    """Failures that share a cause: connection × method × endpoint × class/status (like an issue)."""

    account = models.ForeignKey(AwsAccount, on_delete=models.CASCADE, related_name="failure_groups")
    fingerprint = models.CharField(max_length=64)
    connection = models.ForeignKey(
        Connection, null=True, blank=True, on_delete=models.SET_NULL, related_name="groups"
    )
    connection_arn = models.CharField(max_length=1600, blank=True)
    endpoint = models.ForeignKey(
        Endpoint, null=True, blank=True, on_delete=models.SET_NULL, related_name="groups"
    )
    method = models.CharField(max_length=10, blank=True)
    category = models.CharField(max_length=20, choices=Category.choices)
    subcategory = models.CharField(max_length=64, blank=True)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=256, blank=True)
    title = models.CharField(max_length=500)
    hint = models.TextField(blank=True)
    first_seen_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    count = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=10, choices=GroupStatus.choices, default=GroupStatus.OPEN)
    status_changed_at = models.DateTimeField(null=True, blank=True)
    # Set when a resolved group sees a new failure: it reopens, as a regression.
    regressed_at = models.DateTimeField(null=True, blank=True)
    # Who is on it, and what they know (runbook links, findings); free text, shown escaped.
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="assigned_failure_groups",
    )
    notes = models.TextField(blank=True, max_length=10_000)
    # Alerting (alerts/): someone is on it; silenced until a time; silenced until unmuted.
    # A snoozed or muted group raises no alert; acknowledging only says someone looks.
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    snoozed_until = models.DateTimeField(null=True, blank=True)
    # Snoozed "until it gets worse": its failures in the hour before it was snoozed. The snooze
    # ends itself (executions.grouping.WORSE_FACTOR) when the last hour's count exceeds twice it.
    snoozed_rate = models.PositiveIntegerField(null=True, blank=True)
    muted = models.BooleanField(default=False)

    objects = FailureGroupQuerySet.as_manager()

    class Meta:
        ordering = ["-last_seen_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "fingerprint"], name="uniq_group_fingerprint"
            )
        ]
        indexes = [
            models.Index(fields=["status", "-last_seen_at"]),
            models.Index(fields=["connection", "-last_seen_at"]),
            models.Index(fields=["endpoint", "-last_seen_at"]),
        ]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("executions:group", args=[self.pk])

    @property
    def status_colour(self) -> str:
        return GroupStatus(self.status).colour

    @property
    def category_colour(self) -> str:
        return Category(self.category).colour

    def silenced(self, now: datetime) -> bool:
        """Muted, snoozed until a time still ahead, or until it gets worse: no alert."""
        return (
            self.muted
            or self.snoozed_rate is not None
            or (self.snoozed_until is not None and self.snoozed_until > now)
        )


class GroupTransition(models.Model):
    """A failure group opened or regressed, written in the transaction that changed the group.

    An outbox row: the layer above (alerts) turns each one into notifications and then sets
    `dispatched_at`, in one transaction, so a change is announced once and never lost.
    """

    group = models.ForeignKey(FailureGroup, on_delete=models.CASCADE, related_name="transitions")
    account = models.ForeignKey(AwsAccount, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=10, choices=GroupTransitionKind.choices)
    at = models.DateTimeField()
    dispatched_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["at", "id"]
        indexes = [
            models.Index(
                fields=["at", "id"],
                condition=Q(dispatched_at__isnull=True),
                name="group_transition_pending",
            )
        ]

    def __str__(self) -> str:
        return f"{self.group_id} {self.kind} at {self.at:%Y-%m-%d %H:%M:%S}"


# "Failing" in SQL, as history.is_failing_outcome says it in Python (a test holds the two
# together). Failing attempts are a small share of all attempts: partial indexes keep their
# lists cheap. (A list, as the migrations' index conditions spell it.)
FAILING = ~Q(outcome__in=list(NOT_FAILING_OUTCOMES))
# Calls that ended (history.is_finished_outcome in Python): a rate's denominator and latency
# count only these; aborted calls are counted beside them (CUT_OFF).
FINISHED = ~Q(outcome__in=list(UNFINISHED_OUTCOMES))
CUT_OFF = Q(outcome=OUTCOME_ABORTED)
# The attempt columns free-text search reads (executions/search.py), in one trigram index.
ATTEMPT_TEXT_FIELDS = ("error", "cause", "url", "response_body")


class HttpAttemptQuerySet(models.QuerySet["HttpAttempt"]):
    def visible_to(self, user: Any) -> HttpAttemptQuerySet:
        return self.filter(account__in=AwsAccount.objects.visible_to(user))

    def failing(self) -> HttpAttemptQuerySet:
        return self.filter(FAILING)

    def for_connection(self, arn: str) -> HttpAttemptQuerySet:
        return self.filter(connection_arn=arn)

    def successes_before(self, at: Any) -> HttpAttemptQuerySet:
        """Successful calls before `at` (a time or OuterRef), newest first. On one endpoint:
        the baseline a failure is compared with, by the classifier's context (StoredContext)
        and the execution page alike."""
        return self.filter(outcome=Outcome.SUCCEEDED, occurred_at__lt=at).order_by(
            "-occurred_at", "-id"
        )

    def successes_after(self, at: Any, *, inclusive: bool = False) -> HttpAttemptQuerySet:
        """Successful calls after `at` (or at it, when `inclusive`), oldest first. On one
        endpoint: where a last-success answer stops holding."""
        after = Q(occurred_at__gte=at) if inclusive else Q(occurred_at__gt=at)
        return self.filter(after, outcome=Outcome.SUCCEEDED).order_by("occurred_at", "id")


class HttpAttempt(models.Model):
    """One HTTP call attempt of an HTTP task (retries, Map iterations and branches each count).

    Request and response are stored redacted; the classification says why it failed.
    """

    account = models.ForeignKey(AwsAccount, on_delete=models.CASCADE, related_name="attempts")
    execution = models.ForeignKey(Execution, on_delete=models.CASCADE, related_name="attempts")
    state_name = models.CharField(max_length=80)
    branch_path = models.CharField(max_length=200, blank=True)
    attempt_number = models.PositiveIntegerField(default=1)
    # The event that identifies the attempt (TaskScheduled, else the failure event).
    key_event_id = models.BigIntegerField()
    entered_event_id = models.BigIntegerField(null=True, blank=True)
    scheduled_event_id = models.BigIntegerField(null=True, blank=True)
    closed_event_id = models.BigIntegerField(null=True, blank=True)
    redrive_count = models.PositiveIntegerField(default=0)
    scheduled_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    # Never null: the list pages sort on it (scheduled, else closed, else execution start).
    occurred_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField(null=True, blank=True)

    method = models.CharField(max_length=10, blank=True)
    url = models.TextField(blank=True)
    endpoint = models.ForeignKey(
        Endpoint, null=True, blank=True, on_delete=models.SET_NULL, related_name="attempts"
    )
    connection_arn = models.CharField(max_length=1600, blank=True)
    connection = models.ForeignKey(
        Connection, null=True, blank=True, on_delete=models.SET_NULL, related_name="attempts"
    )
    request_headers = models.JSONField(default=dict, blank=True)
    request_query = models.JSONField(null=True, blank=True)
    request_body = models.JSONField(null=True, blank=True)

    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response_headers = models.JSONField(default=dict, blank=True)
    response_body = models.TextField(blank=True)
    response_truncated = models.BooleanField(default=False)
    error = models.CharField(max_length=256, blank=True)
    cause = models.TextField(blank=True)
    outcome = models.CharField(max_length=12, choices=Outcome.choices)
    # The event that closed the attempt (TaskFailed, TaskTimedOut, ExecutionFailed…) and the
    # state's TimeoutSeconds: the classifier needs both again when reclassifying.
    closed_event_type = models.CharField(max_length=40, blank=True)
    timeout_seconds = models.PositiveIntegerField(null=True, blank=True)
    caught = models.BooleanField(default=False)
    final_attempt = models.BooleanField(default=True)

    category = models.CharField(max_length=20, choices=Category.choices, blank=True)
    subcategory = models.CharField(max_length=64, blank=True)
    evidence = models.JSONField(default=dict, blank=True)
    hint = models.TextField(blank=True)
    classifier_version = models.CharField(max_length=20, blank=True)
    failure_group = models.ForeignKey(
        FailureGroup, null=True, blank=True, on_delete=models.SET_NULL, related_name="attempts"
    )
    problems = models.JSONField(default=list, blank=True)
    # The call succeeded and the state then failed (ResultSelector, ResultPath, OutputPath, a
    # JSONata Output): the definition's error, kept apart from the call's own (issue 15 item
    # 9). Error and cause are redacted like the call's; the classification of that error is
    # rebuilt by `reclassify` like the call's.
    state_error = models.CharField(max_length=256, blank=True)
    state_cause = models.TextField(blank=True)
    state_subcategory = models.CharField(max_length=64, blank=True)
    state_hint = models.TextField(blank=True)
    # Which workflow variable supplied the URL or a header: {"url": "$base (assigned by S)"}.
    variable_sources = models.JSONField(default=dict, blank=True)
    # An aborted call: the sibling failure its abort named ("GetCustomer failed (…) in
    # Items[0]") or the error of the execution that failed around it; kept so `reclassify`
    # can rebuild evidence.aborted_by. Redacted like the cause.
    aborted_by = models.CharField(max_length=300, blank=True, default="")

    objects = HttpAttemptQuerySet.as_manager()

    class Meta:
        ordering = ["occurred_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["execution", "key_event_id"], name="uniq_attempt_event")
        ]
        # Shaped for the dashboard at 1M attempts: every list/timeline query is a range scan
        # on one of these, newest first, with the id as keyset tie-breaker.
        indexes = [
            # Covering: the overview's per-category/connection/endpoint counts over a window
            # are answered from the index alone, without visiting the (wide) table rows.
            models.Index(
                fields=["account", "-occurred_at", "-id"],
                condition=FAILING,
                include=["category", "connection", "endpoint"],
                name="att_fail_acct",
            ),
            models.Index(
                fields=["connection_arn", "-occurred_at", "-id"],
                condition=FAILING,
                name="att_fail_conn",
            ),
            models.Index(
                fields=["endpoint", "-occurred_at", "-id"], condition=FAILING, name="att_fail_endp"
            ),
            models.Index(
                fields=["category", "-occurred_at", "-id"], condition=FAILING, name="att_fail_cat"
            ),
            # Search (executions/search.py) over the failing attempts' text, as lists show them.
            GinIndex(
                fields=list(ATTEMPT_TEXT_FIELDS),
                opclasses=["gin_trgm_ops"] * len(ATTEMPT_TEXT_FIELDS),
                condition=FAILING,
                name="att_fail_text",
            ),
            models.Index(fields=["failure_group", "-occurred_at"], name="att_group"),
            # The last success before a failure, and the next one after it (the classifier's
            # stored context, `affected_by`, the execution page's diff): on att_endpoint_all
            # those read every attempt of the endpoint and dropped the failures, which on a
            # 25,000-event Map history's endpoint was thousands of rows per lookup. Scanned in
            # either direction, so one index serves "newest before" and "oldest after".
            models.Index(
                fields=["endpoint", "occurred_at", "id"],
                condition=Q(outcome=Outcome.SUCCEEDED),
                name="att_success_endp",
            ),
            models.Index(fields=["endpoint", "-occurred_at"], name="att_endpoint_all"),
            models.Index(fields=["connection", "-occurred_at"], name="att_connection_all"),
        ]

    def __str__(self) -> str:
        return f"{self.state_name} #{self.attempt_number} ({self.outcome})"

    @property
    def is_failure(self) -> bool:
        return is_failing_outcome(self.outcome)

    @property
    def category_colour(self) -> str:
        return Category(self.category).colour if self.category else "#BBBBBB"


class VariableAssignment(models.Model):
    """The variables one state assigned as it exited (`assignedVariables`, issue 15 item 4).

    Values may carry tokens taken from earlier responses: they are redacted like a request
    before they are stored, and bounded (MAX_ASSIGNMENTS per execution, values cut).
    """

    account = models.ForeignKey(AwsAccount, on_delete=models.CASCADE, related_name="+")
    execution = models.ForeignKey(
        Execution, on_delete=models.CASCADE, related_name="variable_assignments"
    )
    state_name = models.CharField(max_length=80)
    event_id = models.BigIntegerField()
    assigned_at = models.DateTimeField(null=True, blank=True)
    variables = models.JSONField(default=dict, blank=True)
    truncated = models.BooleanField(default=False)

    class Meta:
        ordering = ["execution", "event_id"]
        constraints = [
            models.UniqueConstraint(fields=["execution", "event_id"], name="uniq_assignment_event")
        ]

    def __str__(self) -> str:
        return f"{self.state_name} @ {self.event_id}"


class SavedView(models.Model):
    """A named filter set of the executions page (its query string), one user's or shared.

    A shared view is listed to users who can see one of the accounts it was saved over; opening
    it runs the filters through the viewer's own visible accounts, so sharing never widens
    access — a view over accounts someone cannot see shows them nothing of those accounts.
    """

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="saved_views"
    )
    name = models.CharField(max_length=100)
    querystring = models.CharField(max_length=2000, blank=True)
    shared = models.BooleanField(default=False)
    accounts = models.ManyToManyField(AwsAccount, related_name="+", blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["owner", "name"], name="uniq_saved_view_name")
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        query = f"?{self.querystring}" if self.querystring else ""
        return reverse("executions:list") + query
