"""Sync one account: discover state machines and connections, pull new executions, store attempts.

Safety rules that make a killed worker or a lost broker harmless:
- one sync per account at a time: the run claims the account with a conditional UPDATE (a second
  trigger is a no-op), every step renews the claim while it works (a heartbeat), and a run silent
  for SYNC_STALE_AFTER_SECONDS is closed by the next trigger, which takes over; a step of a closed
  run (redelivered late, or still working when it was taken over) stops without writing more;
- executions are keyed by ARN and attempts by (execution, event id); new executions are written
  a batch to a transaction, and a refused batch again one execution per transaction, so a bad
  execution costs only itself;
- a step whose database connection fails runs once more on a new one (it skips what is stored);
- cursors move only after everything they cover is committed, and not at all past a failure,
  so a re-run re-lists what was not finished and skips what is stored.
"""

from __future__ import annotations

import logging
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, connection, transaction
from django.utils import timezone

from connections.aws import AwsApi, AwsError
from connections.choices import SyncStatus
from connections.discovery import sync_connections
from connections.models import AwsAccount, SyncRun, owned_elsewhere, sync_stale_after
from connections.unreadable import (
    HISTORIES,
    STATE_MACHINE,
    Unreadable,
    key_of,
    line_of,
    unreadable,
)
from executions.choices import (
    TERMINAL_STATUSES,
    ExecutionStatus,
    HistorySource,
    LoggingLevel,
    Outcome,
    StateMachineType,
)
from executions.history import (
    HistoryParser,
    HttpStateInfo,
    ParsedAttempt,
    as_int,
    http_states_from_definition,
    normalize_log_event,
)
from executions.ingest import (
    BIGINT_MAX,
    INT_MAX,
    AttemptWriter,
    in_range,
    pg_safe,
    refresh_groups,
)
from executions.models import Execution, FailureGroup, StateMachine
from executions.prefetch import HistoryPrefetcher, HistoryStream, history_pages
from executions.scrub import rescrub_new_secret_names, secret_names_by_connection

log = logging.getLogger(__name__)
T = TypeVar("T")

# Express executions last at most 5 minutes: re-reading that much of the log window lets an
# execution whose events straddled two syncs be reassembled whole.
EXPRESS_OVERLAP_MS = 5 * 60 * 1000
FAILED_OUTCOMES = frozenset({Outcome.FAILED, Outcome.TIMED_OUT})
# Attempts of one history held before they are written (with the execution still incomplete).
STREAM_BATCH = 500
# New executions read whole are written this many to a transaction (one INSERT of executions and
# one of attempts): per-execution commits were most of the write cost. Should one of them be
# refused, the batch is written again one execution at a time, so only that one is lost.
WRITE_BATCH = 25
Progress = Callable[[str], None]


@dataclass
class SyncSummary:
    account: str
    status: str = SyncStatus.OK
    api_calls: Counter[str] = field(default_factory=Counter)
    executions_added: int = 0
    executions_updated: int = 0
    attempts_added: int = 0
    errors: list[str] = field(default_factory=list)
    unreadable: list[dict[str, str]] = field(default_factory=list)
    skipped: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "account": self.account,
            "status": self.status,
            "api_calls": dict(self.api_calls),
            "executions_added": self.executions_added,
            "executions_updated": self.executions_updated,
            "attempts_added": self.attempts_added,
            "errors": self.errors,
            "unreadable": self.unreadable,
            "skipped": self.skipped,
        }


def due_account_ids(now: datetime | None = None) -> list[int]:
    """Enabled accounts whose own interval has passed since their last sync, unless a live
    run holds them (a stale run is due: the trigger takes it over)."""
    now = now or timezone.now()
    due = []
    for account in (
        AwsAccount.objects.enabled()
        .claimable(now)
        .only("pk", "last_synced_at", "sync_interval_seconds")
    ):
        last = account.last_synced_at
        if last is None or (now - last).total_seconds() >= account.sync_interval_seconds:
            due.append(account.pk)
    return due


class ClaimLostError(Exception):
    """This step's run no longer holds the account (closed, or taken over as stale)."""


def sync_account_by_id(
    account_id: int,
    trigger: str = "schedule",
    regions: list[str] | None = None,
    since: datetime | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """The whole sync in this process (the command, tests); Celery runs the same steps fanned out."""
    account = AwsAccount.objects.filter(pk=account_id).first()
    if account is None:
        return {"skipped": "account gone"}
    run = begin_sync(account, trigger)
    if run is None:
        return SyncSummary(account.name, skipped=ALREADY_RUNNING).as_dict()
    for region in regions or list(account.regions):
        for machine_id in discover_region(run.pk, region, progress):
            sync_machine(run.pk, machine_id, since, progress)
    return finish_sync(run.pk)


ALREADY_RUNNING = "a sync of this account is already running"


def begin_sync(account: AwsAccount, trigger: str) -> SyncRun | None:
    """Open a SyncRun holding the account's claim; None when a live run holds it."""
    now = timezone.now()
    with transaction.atomic():
        run = SyncRun.objects.create(account=account, trigger=trigger)
        # The UPDATE locks the account row until commit: a concurrent trigger waits, then sees
        # the fresh heartbeat and takes nothing.
        taken = (
            AwsAccount.objects.claimable(now)
            .filter(pk=account.pk)
            .update(sync_run=run, sync_heartbeat_at=now, sync_status=SyncStatus.RUNNING)
        )
        if not taken:
            transaction.set_rollback(True)
            return None
        # Holding the claim, no other run is live: unfinished ones lost their worker or steps.
        abandoned = (
            SyncRun.objects.filter(account=account, finished_at=None)
            .exclude(pk=run.pk)
            .update(
                finished_at=now,
                status=SyncStatus.FAILED,
                errors=[
                    f"no progress for {_minutes(sync_stale_after())}: its worker stopped or"
                    " its queued steps were lost (e.g. a broker restart); the next run resumed"
                    " from the stored cursors"
                ],
                progress="abandoned",
            )
        )
    if abandoned:
        # Its writer died before flushing: groups it added attempts to have stale counts.
        refresh_groups(FailureGroup.objects.filter(account=account).values_list("pk", flat=True))
    return run


def _minutes(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    return f"{seconds // 60} min" if seconds >= 120 else f"{seconds} s"


def discover_region(run_id: int, region: str, progress: Progress | None = None) -> list[int]:
    """Connections and state machines of one region; returns the machines to sync."""
    step = SyncStep(run_id, progress)
    api = AwsApi(step.account, region)

    def discover() -> list[int]:
        step.say(f"{region}: connections")
        known = secret_names_by_connection(step.account)
        sync_connections(api, step.account, step.note_unreadable, on_skip=step.note_error)
        # Rows stored before a connection's secret names were known are redacted again.
        rescrub_new_secret_names(step.account, known, step.writer.redactor)
        step.say(f"{region}: state machines")
        return [m.pk for m in step.machines(api, region)]

    return step.carry_out(api, discover) or []


def sync_machine(
    run_id: int, machine_id: int, since: datetime | None = None, progress: Progress | None = None
) -> None:
    """New executions of one state machine; errors are recorded on the run, never raised."""
    step = SyncStep(run_id, progress)
    machine = StateMachine.objects.filter(pk=machine_id).first()
    if machine is None:
        return
    api = AwsApi(step.account, machine.region)
    step.since = since
    states = http_states_from_definition(machine.definition)

    def read() -> None:
        step.say(f"{machine.region}: {machine.name}")
        # A new reader each time: one cut short holds listed-but-unread executions.
        if machine.type == StateMachineType.EXPRESS:
            if machine.log_group_arn:
                ExpressLogReader(step, api, machine, states).run()
        else:
            StandardReader(step, api, machine, states).run()
        StateMachine.objects.filter(pk=machine.pk).update(last_synced_at=timezone.now())

    step.carry_out(api, read)


def finish_sync(run_id: int) -> dict[str, Any]:
    """Close the run, set the account's status and release the claim.

    A run already closed (taken over as stale, its callback redelivered late) keeps the status
    it was closed with and touches neither the account nor the claim of the run that took over.
    """
    run = SyncRun.objects.select_related("account").get(pk=run_id)
    problems = list(run.errors) + [line_of(p) for p in run.unreadable]
    # A resource that could not be read costs itself, not the run: partial, as for other errors.
    status = SyncStatus.FAILED if run.fatal else SyncStatus.PARTIAL if problems else SyncStatus.OK
    now = timezone.now()
    closed = SyncRun.objects.filter(pk=run_id, finished_at=None).update(
        finished_at=now, status=status, progress="done"
    )
    if closed:
        AwsAccount.objects.filter(pk=run.account_id, sync_run=run_id).update(
            sync_run=None,
            sync_heartbeat_at=None,
            sync_status=status,
            last_synced_at=now,
            last_error="; ".join(problems[:3])[:2000] if status != SyncStatus.OK else "",
        )
    else:
        status = SyncStatus(run.status)
    return SyncSummary(
        account=run.account.name,
        status=status,
        api_calls=Counter(run.api_calls),
        executions_added=run.executions_added,
        executions_updated=run.executions_updated,
        attempts_added=run.attempts_added,
        # The unreadable resources as sentences too, for whoever reads only the errors.
        errors=problems,
        unreadable=list(run.unreadable),
    ).as_dict()


class SyncStep:
    """One unit of a sync run (a region's discovery, or one state machine).

    It counts in its own summary and merges it into the SyncRun row when it ends, under a row
    lock, so steps running on several workers at once add up correctly.
    """

    def __init__(self, run_id: int, progress: Progress | None = None) -> None:
        self.run_id = run_id
        self.account = SyncRun.objects.select_related("account").get(pk=run_id).account
        self.progress = progress or (lambda _msg: None)
        self.summary = SyncSummary(self.account.name)
        self.writer = AttemptWriter(self.account)
        self.since: datetime | None = None
        self.fatal = False
        # Ten beats per stale window: one slow AWS call or a long history never looks dead.
        self.beat_every = sync_stale_after().total_seconds() / 10
        self.last_beat = float("-inf")

    def beat(self, *, now: bool = False) -> None:
        """Renew the run's claim (at most every `beat_every` seconds unless `now`); raises
        ClaimLostError when the run no longer holds the account, so the step stops writing."""
        if not now and time.monotonic() - self.last_beat < self.beat_every:
            return
        held = AwsAccount.objects.filter(pk=self.account.pk, sync_run=self.run_id).update(
            sync_heartbeat_at=timezone.now()
        )
        if not held:
            raise ClaimLostError(f"run {self.run_id} no longer holds account {self.account.name}")
        self.last_beat = time.monotonic()

    def machines(self, api: AwsApi, region: str) -> Iterator[StateMachine]:
        seen: set[str] = set()  # a listing restarted after an expired token repeats machines
        for page in api.pages("stepfunctions", "ListStateMachines", maxResults=1000):
            for item in page.get("stateMachines", []):
                self.beat()
                if item.get("stateMachineArn") in seen:
                    continue
                seen.add(str(item.get("stateMachineArn")))
                machine = self._describe_machine(api, region, item)
                if machine is not None:
                    yield machine

    def _describe_machine(
        self, api: AwsApi, region: str, item: dict[str, Any]
    ) -> StateMachine | None:
        arn = str(item["stateMachineArn"])
        # Another registration of this AWS account owns it: an upsert by ARN would take it over
        # (and strand its executions). Forms refuse the overlap; this covers rows forced past them.
        owner = StateMachine.objects.filter(arn=arn).exclude(account=self.account)
        owner_name = owner.values_list("account__name", flat=True).first()
        if owner_name is not None:
            self.note_error(owned_elsewhere("state machine", arn, owner_name))
            return None
        detail, problem = self._readable_description(api, region, item)
        if detail is None:
            return None
        if not http_states_from_definition(detail.get("definition")) and problem is None:
            return None  # no HTTP task: nothing for us here
        # Definitions carry literal headers, bodies and URLs: redacted like any request, with
        # the account's connection secret names; the HTTP states are read from what is stored.
        definition = self.writer.account_redactor().embedded(str(detail.get("definition", "")))
        http_states = http_states_from_definition(definition)
        logging_conf = detail.get("loggingConfiguration") or {}
        destinations = logging_conf.get("destinations") or [{}]
        log_group = (destinations[0].get("cloudWatchLogsLogGroup") or {}).get("logGroupArn", "")
        defaults: dict[str, Any] = {
            "region": region,
            "name": str(detail.get("name", item.get("name", "")))[:80],
            "type": str(detail.get("type", item.get("type", StateMachineType.STANDARD))),
            "logging_level": str(logging_conf.get("level", LoggingLevel.OFF)),
            "include_execution_data": bool(logging_conf.get("includeExecutionData", False)),
            "log_group_arn": str(log_group),
            "kms_key_id": key_of(detail)[:2048],
            "read_problem": f"{problem.missing}. {problem.hint}" if problem else "",
        }
        if (
            problem is None
            and StateMachine.objects.filter(arn=arn).exclude(read_problem="").exists()
        ):
            # Readable again: list it from the start, so that the executions stored from the
            # listing only (their histories were unreadable) are read whole.
            defaults["newest_start_seen"] = None
        if problem is None:  # else a definition read before is kept, not replaced by "{}"
            defaults["definition"] = definition
            defaults["http_states"] = {n: _state_dict(i) for n, i in http_states.items()}
        # The account is in the lookup, not the defaults: a row of another account is never
        # re-parented (a concurrent one makes this fail on the unique ARN instead).
        machine, _ = StateMachine.objects.update_or_create(
            arn=arn, account=self.account, defaults=defaults
        )
        return machine

    def _readable_description(
        self, api: AwsApi, region: str, item: dict[str, Any]
    ) -> tuple[dict[str, Any] | None, Unreadable | None]:
        """DescribeStateMachine, and what could not be read of it.

        A definition encrypted with a KMS key the reader may not use: described again with
        METADATA_ONLY (everything but the definition), kept with the problem. Another answer about
        this one machine (deleted, denied by a policy on its ARN): (None, problem), it is skipped.
        """
        arn, name = str(item["stateMachineArn"]), str(item.get("name", ""))
        try:
            return api.call("stepfunctions", "DescribeStateMachine", stateMachineArn=arn), None
        except AwsError as exc:
            if not exc.about_one_resource:
                raise
            if not exc.kms:
                missing = "skipped: its definition, executions and attempts are not read"
                self.note_unreadable(unreadable(STATE_MACHINE, name, arn, region, exc, missing))
                return None, None
            error = exc
        detail = api.call(
            "stepfunctions",
            "DescribeStateMachine",
            stateMachineArn=arn,
            includedData="METADATA_ONLY",
        )
        problem = unreadable(
            STATE_MACHINE,
            str(detail.get("name", name)),
            arn,
            region,
            error,
            "definition and execution histories unreadable: its executions are listed (status and"
            " times) but its HTTP states, endpoints, connections and attempts are unknown",
            key_of(detail),
        )
        self.note_unreadable(problem)
        return detail, problem

    def execution_failed(self, arn: str, exc: Exception) -> None:
        """One execution could not be stored: say why, and make sure the next one can be."""
        self.note_error(f"{arn}: {exc}")
        # Its transaction was rolled back: an endpoint the writer created there is gone.
        self.writer.forget_uncommitted()
        if isinstance(exc, DatabaseError | InterfaceError):
            _reconnect_if_broken()

    def carry_out(self, api: AwsApi, work: Callable[[], T]) -> T | None:
        """The step's work; errors are recorded on the run, never raised (but a permanent AWS
        error fails the run), and the step's counts are recorded whatever happened."""
        try:
            return self._on_a_live_connection(work)
        except ClaimLostError:
            # What it stored is committed and keyed; its cursors did not move: the run that
            # took over reads the rest.
            log.info("sync %s: run %s was taken over; step stopped", self.account.name, self.run_id)
        except AwsError as exc:
            self.fail(exc)
        except (DatabaseError, InterfaceError) as exc:
            self.lost_database(exc)
        finally:
            self.record(api)
        return None

    def _on_a_live_connection(self, work: Callable[[], T]) -> T:
        """`work`, and once more if the database connection failed under it (a failover, a
        restart, a killed backend; also a cancelled statement). Steps are idempotent, so the
        second pass skips what the first stored; without it one dropped connection costs a
        whole state machine (or region) until the next run."""
        try:
            return work()
        except (OperationalError, InterfaceError) as exc:
            # Data and integrity errors are not retried: they would fail the same way.
            log.warning(
                "sync %s: database connection failed (%s); once more", self.account.name, exc
            )
            _reconnect_if_broken()
            return work()

    def lost_database(self, exc: Exception) -> None:
        """A dropped connection (failover, restart, a killed backend) outside any execution
        ends this step like a transient error: cursors have not moved, the next run resumes."""
        self.note_error(f"database: {exc}")
        _reconnect_if_broken()

    def note_error(self, message: str) -> None:
        message = self.writer.redactor.text(message)  # stored on the run: URLs redacted too
        log.warning("sync %s: %s", self.account.name, message)
        self.summary.errors.append(message)

    def note_unreadable(self, problem: Unreadable) -> None:
        log.warning("sync %s: unreadable %s", self.account.name, problem.line)
        self.summary.unreadable.append(problem.as_dict())

    def fail(self, exc: AwsError) -> None:
        """A transient error ends this step (the next sync resumes at the cursor), as does one
        about the one resource a call named (a state machine deleted or denied to us since
        discovery); any other permanent one (credentials, access) fails the whole run."""
        self.fatal = self.fatal or not (exc.transient or exc.about_one_resource)
        self.note_error(str(exc))

    def say(self, message: str) -> None:
        self.beat(now=True)
        self.progress(message)
        # Only while open: a run closed under a working step keeps saying why it was closed.
        SyncRun.objects.filter(pk=self.run_id, finished_at=None).update(progress=message[:200])

    def record(self, api: AwsApi) -> None:
        """Bring touched groups up to date and merge this step's counts and errors into the run;
        on a new connection if that one died: else the counts are lost, the chord waiting for
        this step never closes the run, and the groups stay short for good (the next run does
        not touch attempts already stored)."""

        def flush_and_record() -> None:
            self.writer.flush()
            self._record(api)

        self._on_a_live_connection(flush_and_record)

    def _record(self, api: AwsApi) -> None:
        s = self.summary
        with transaction.atomic():
            run = SyncRun.objects.select_for_update().get(pk=self.run_id)
            calls = Counter(run.api_calls)
            calls.update(api.calls)
            run.api_calls = dict(calls)
            run.executions_added += s.executions_added
            run.executions_updated += s.executions_updated
            run.attempts_added += self.writer.added
            run.errors = (list(run.errors) + s.errors)[:100]
            run.unreadable = (list(run.unreadable) + s.unreadable)[:100]
            run.fatal = run.fatal or self.fatal
            run.save(
                update_fields=[
                    "api_calls",
                    "executions_added",
                    "executions_updated",
                    "attempts_added",
                    "errors",
                    "unreadable",
                    "fatal",
                ]
            )


@dataclass
class ReadExecution:
    """One execution's history, read and parsed, not yet written."""

    item: dict[str, Any]  # as ListExecutions (or DescribeExecution) gave it
    error: dict[str, str]
    last_id: int
    problems: list[str]
    attempts: list[ParsedAttempt]


class StandardReader:
    """ListExecutions newest first down to the cursor, then each new history, streamed."""

    def __init__(
        self,
        sync: SyncStep,
        api: AwsApi,
        machine: StateMachine,
        states: dict[str, HttpStateInfo],
    ) -> None:
        self.sync, self.api, self.machine, self.states = sync, api, machine, states
        self.succeeded_budget = int(settings.STEPSCOPE["SUCCEEDED_PER_SYNC"])
        self.failed = False
        # Listed in this sync: their status is fresh, no DescribeExecution needed.
        self.listed: set[str] = set()
        # New executions read whole, waiting to be written WRITE_BATCH at a time.
        self.unwritten: list[ReadExecution] = []
        # Set when a history of this machine could not be read (a KMS key the reader may not use,
        # a policy denying its histories): the others share the cause, so they are not asked for.
        self.unreadable_histories = False

    def run(self) -> None:
        cursor = self.machine.newest_start_seen
        if self.sync.since and (cursor is None or self.sync.since < cursor):
            cursor = self.sync.since
        newest = cursor
        try:
            with HistoryPrefetcher(self.api) as prefetch:
                # Histories of the next few executions are fetched while this one is written.
                ahead: deque[tuple[dict[str, Any], Execution | None, HistoryStream]] = deque()
                for item, stored in self._listing(cursor):
                    if str(item["executionArn"]) in self.listed:
                        continue  # a listing restarted after an expired token repeats its pages
                    self.listed.add(str(item["executionArn"]))
                    start = item["startDate"]
                    newest = start if newest is None or start > newest else newest
                    if not self._wants_history(item, stored):
                        continue
                    if self.unreadable_histories:
                        self._save_listed(item, stored)
                    else:
                        ahead.append((item, stored, prefetch.open(str(item["executionArn"]))))
                    if len(ahead) >= prefetch.depth:
                        self._execution(*ahead.popleft())
                while ahead:
                    self._execution(*ahead.popleft())
        except (AwsError, DatabaseError, InterfaceError):
            # What was read is kept (on a new connection if that one died); the cursor stays
            # for the rest.
            _reconnect_if_broken()
            self._write_unwritten()
            raise
        self._write_unwritten()
        self._revisit_running()
        if not self.failed and newest is not None:
            StateMachine.objects.filter(pk=self.machine.pk).update(newest_start_seen=newest)

    def _listing(
        self, cursor: datetime | None
    ) -> Iterator[tuple[dict[str, Any], Execution | None]]:
        """Listed executions newer than the cursor, each with its stored row (one query a page)."""
        pages = self.api.pages(
            "stepfunctions", "ListExecutions", stateMachineArn=self.machine.arn, maxResults=1000
        )
        for page in pages:
            self.sync.beat()
            items = page.get("executions", [])
            known = {
                e.arn: e
                for e in Execution.objects.filter(
                    arn__in=[str(i.get("executionArn", "")) for i in items]
                ).only(
                    "pk", "arn", "status", "redrive_count", "history_complete", "has_failed_attempt"
                )
            }
            for item in items:
                # ListExecutions is eventually consistent: keep a minute of overlap.
                if cursor is not None and item["startDate"] < cursor - timedelta(minutes=1):
                    return
                yield item, known.get(str(item.get("executionArn", "")))

    def _wants_history(self, item: dict[str, Any], stored: Execution | None) -> bool:
        """New, changed or incomplete executions need their history; SUCCEEDED ones only
        within the per-sync budget."""
        redrives = int(item.get("redriveCount", 0) or 0)
        status = str(item.get("status", ""))
        if (
            stored
            # A history cut short (batches streamed, then an error or a kill) is read again.
            and stored.history_complete
            and stored.status in TERMINAL_STATUSES
            and stored.redrive_count == redrives
            and stored.status == status
        ):
            return False  # unchanged and complete: no history call
        if stored is None and status == ExecutionStatus.SUCCEEDED:
            if self.succeeded_budget <= 0:
                return False
            self.succeeded_budget -= 1
        return True

    def _execution(
        self, item: dict[str, Any], stored: Execution | None, pages: Iterable[dict[str, Any]]
    ) -> None:
        arn = str(item["executionArn"])
        try:
            self._ingest(item, stored, pages)
        except AwsError as exc:
            if exc.about_one_resource and exc.code != "ExecutionDoesNotExist":
                self._history_unreadable(exc)  # the machine's key or policy: all its histories
                self._save_listed(item, stored)
                return
            if not (exc.transient or exc.about_one_resource):
                raise
            self.failed = True
            self.sync.execution_failed(arn, exc)
        except ClaimLostError:
            raise
        except Exception as exc:  # one bad execution never stops the batch
            self.failed = True
            self.sync.execution_failed(arn, exc)

    def _ingest(
        self, item: dict[str, Any], stored: Execution | None, pages: Iterable[dict[str, Any]]
    ) -> None:
        is_new = stored is None
        parser = HistoryParser(self.states)
        attempts: list[ParsedAttempt] = []
        last_id = 0
        execution_error = {"error": "", "cause": ""}
        for page in pages:
            self.sync.beat()
            events = page.get("events", [])
            last_id, execution_error = _scan_events(events, last_id, execution_error)
            attempts.extend(parser.feed(events))
            # Stream: write what closed on this page instead of holding the history.
            if len(attempts) >= STREAM_BATCH:
                so_far = ReadExecution(item, execution_error, last_id, [], attempts)
                execution = self._save_execution(so_far, stored, complete=False)
                stored = execution
                self.sync.writer.write(execution, attempts, self.states, fresh_execution=is_new)
                attempts = []
        attempts.extend(parser.finish())
        read = ReadExecution(item, execution_error, last_id, list(parser.problems), attempts)
        if stored is None:  # new, and nothing of it streamed: batched with its neighbours
            self.unwritten.append(read)
            if len(self.unwritten) >= WRITE_BATCH:
                self._write_unwritten()
            return
        self._write_alone(read, stored, is_new=is_new)

    def _history_unreadable(self, exc: AwsError) -> None:
        """Name the cause once per machine. The cursor still moves (the listing is stored);
        once the machine reads whole again, discovery resets it, so that every execution stored
        from the listing only is listed again and gets its history."""
        if self.unreadable_histories:
            return
        self.unreadable_histories = True
        machine = self.machine
        problem = unreadable(
            HISTORIES,
            machine.name,
            machine.arn,
            machine.region,
            exc,
            "executions stored from ListExecutions only (status and times): their HTTP attempts,"
            " errors and causes are unknown",
            machine.kms_key_id,
        )
        self.sync.note_unreadable(problem)
        if not machine.read_problem:
            machine.read_problem = f"{problem.missing}. {problem.hint}"
            StateMachine.objects.filter(pk=machine.pk).update(read_problem=machine.read_problem)

    def _save_listed(self, item: dict[str, Any], stored: Execution | None) -> None:
        """An execution whose history cannot be read: what ListExecutions says of it."""
        listed = {
            "status": str(item.get("status", "")),
            "stop_date": item.get("stopDate"),
            "redrive_count": int(item.get("redriveCount", 0) or 0),
        }
        if stored is not None:  # what its history gave before (if anything) stays
            if stored.status != listed["status"] or stored.redrive_count != listed["redrive_count"]:
                Execution.objects.filter(pk=stored.pk).update(**listed)
                self.sync.summary.executions_updated += 1
            return
        _, created = Execution.objects.get_or_create(
            arn=str(item["executionArn"]),
            defaults={
                **listed,
                "account": self.sync.account,
                "state_machine": self.machine,
                "name": pg_safe(str(item.get("name", ""))[:256]),
                "start_date": item["startDate"],
                "source": HistorySource.LISTING,
                "history_complete": False,
            },
        )
        self.sync.summary.executions_added += int(created)

    def _write_alone(self, read: ReadExecution, stored: Execution | None, *, is_new: bool) -> None:
        with transaction.atomic():
            execution = self._save_execution(read, stored, complete=True)
            self.sync.writer.write(execution, read.attempts, self.states, fresh_execution=is_new)
        if is_new:
            self.sync.summary.executions_added += 1
        else:
            self.sync.summary.executions_updated += 1

    def _write_unwritten(self) -> None:
        """The new executions read so far, in one transaction; one at a time if it fails."""
        batch, self.unwritten = self.unwritten, []
        if not batch:
            return
        try:
            with transaction.atomic():
                executions = Execution.objects.bulk_create(
                    [
                        Execution(
                            arn=str(read.item["executionArn"]),
                            **self._execution_values(read, None, complete=True),
                        )
                        for read in batch
                    ]
                )
                self.sync.writer.write_many(
                    [(e, read.attempts) for e, read in zip(executions, batch, strict=True)],
                    self.states,
                    fresh_executions=True,
                )
        except Exception as exc:
            # Rolled back as a whole: an endpoint or group created in it is gone too. Nothing is
            # lost yet, so the run's errors get only what the one-by-one writes refuse.
            log.warning(
                "sync %s: a batch of %d executions was refused (%s); writing them one by one",
                self.sync.account.name,
                len(batch),
                exc,
            )
            self.sync.writer.forget_uncommitted()
            _reconnect_if_broken()
            for read in batch:
                try:
                    self._write_alone(read, None, is_new=True)
                except Exception as exc:  # this one is refused; its neighbours are stored
                    self.failed = True
                    self.sync.execution_failed(str(read.item["executionArn"]), exc)
            return
        self.sync.summary.executions_added += len(batch)

    def _save_execution(
        self, read: ReadExecution, stored: Execution | None, *, complete: bool
    ) -> Execution:
        arn = str(read.item["executionArn"])
        values = self._execution_values(read, stored, complete=complete)
        if stored is None:
            return Execution.objects.create(arn=arn, **values)
        execution, _ = Execution.objects.update_or_create(arn=arn, defaults=values)
        return execution

    def _execution_values(
        self, read: ReadExecution, stored: Execution | None, *, complete: bool
    ) -> dict[str, Any]:
        item, error, attempts = read.item, read.error, read.attempts
        redactor = self.sync.writer.account_redactor()
        # Known before the attempts are written, so no UPDATE is needed after them.
        failed = any(a.outcome in FAILED_OUTCOMES for a in attempts) or bool(
            stored and stored.has_failed_attempt
        )
        return {
            "account": self.sync.account,
            "state_machine": self.machine,
            "name": pg_safe(str(item.get("name", ""))[:256]),
            "status": str(item.get("status", "")),
            "start_date": item["startDate"],
            "stop_date": item.get("stopDate"),
            "error": pg_safe(redactor.text(str(error.get("error") or ""))[:256]),
            "cause": pg_safe(redactor.text(str(error.get("cause") or ""))),
            "redrive_count": int(item.get("redriveCount", 0) or 0),
            "source": HistorySource.HISTORY,
            "last_event_id": read.last_id,
            "history_complete": complete and str(item.get("status")) in TERMINAL_STATUSES,
            "has_failed_attempt": failed,
            "parse_problems": pg_safe(read.problems[:50]),
        }

    def _revisit_running(self) -> None:
        """Executions stored while RUNNING, older than this listing reached: ask each once."""
        running = (
            Execution.objects.filter(state_machine=self.machine, status=ExecutionStatus.RUNNING)
            .exclude(arn__in=self.listed)
            .only("pk", "arn", "status", "redrive_count", "history_complete", "has_failed_attempt")[
                :200
            ]
        )
        for execution in running:
            # Status and times are all it needs: METADATA_ONLY also answers for an execution
            # encrypted with a KMS key the reader may not use.
            detail = self.api.call(
                "stepfunctions",
                "DescribeExecution",
                executionArn=execution.arn,
                includedData="METADATA_ONLY",
            )
            if detail.get("status") != ExecutionStatus.RUNNING:
                item = {
                    "executionArn": execution.arn,
                    "name": detail.get("name", ""),
                    "status": detail.get("status", ""),
                    "startDate": detail["startDate"],
                    "stopDate": detail.get("stopDate"),
                    "redriveCount": detail.get("redriveCount", 0),
                }
                if not self._wants_history(item, execution):
                    continue
                if self.unreadable_histories:
                    self._save_listed(item, execution)
                else:
                    self._execution(item, execution, history_pages(self.api, execution.arn))


class ExpressLogReader:
    """FilterLogEvents from the millisecond cursor; events regrouped per execution ARN."""

    def __init__(
        self,
        sync: SyncStep,
        api: AwsApi,
        machine: StateMachine,
        states: dict[str, HttpStateInfo],
    ) -> None:
        self.sync, self.api, self.machine, self.states = sync, api, machine, states

    def run(self) -> None:
        start = max(0, self.machine.logs_cursor_ms - EXPRESS_OVERLAP_MS)
        by_execution: dict[str, dict[int, dict[str, Any]]] = {}
        seen_ids: set[str] = set()
        newest_ms = self.machine.logs_cursor_ms
        group = _log_group_name(self.machine.log_group_arn)
        for page in self.api.pages(
            "logs", "FilterLogEvents", logGroupName=group, startTime=start, limit=10000
        ):
            self.sync.beat()
            for raw in page.get("events", []):
                event_id = str(raw.get("eventId", ""))
                if event_id in seen_ids:
                    continue
                seen_ids.add(event_id)
                newest_ms = max(newest_ms, int(raw.get("timestamp", 0) or 0))
                event = normalize_log_event(raw.get("message", ""))
                if event is None:
                    continue
                arn = str(event.get("_execution_arn", ""))
                by_execution.setdefault(arn, {})[int(event.get("id", 0) or 0)] = event
        ok = True
        for arn, events in by_execution.items():
            ok = self._execution(arn, [events[k] for k in sorted(events)]) and ok
        if ok:
            StateMachine.objects.filter(pk=self.machine.pk).update(logs_cursor_ms=newest_ms)

    def _execution(self, arn: str, events: list[dict[str, Any]]) -> bool:
        self.sync.beat()
        try:
            parser = HistoryParser(self.states)
            attempts = list(parser.feed(events))
            attempts.extend(parser.finish())
            with transaction.atomic():
                execution, created = self._save(arn, events, list(parser.problems))
                self.sync.writer.write(execution, attempts, self.states, fresh_execution=created)
        except Exception as exc:  # one bad execution never stops the batch
            self.sync.execution_failed(arn, exc)
            return False
        if created:
            self.sync.summary.executions_added += 1
        return True

    def _save(
        self, arn: str, events: list[dict[str, Any]], problems: list[str]
    ) -> tuple[Execution, bool]:
        status, stop, error, cause = ExecutionStatus.RUNNING, None, "", ""
        start = events[0].get("timestamp") or timezone.now()
        for event in events:
            kind = str(event.get("type", ""))
            terminal = _EXECUTION_TERMINAL.get(kind)
            if terminal:
                status, stop = terminal, event.get("timestamp")
                details = next(
                    (
                        v
                        for k, v in event.items()
                        if k.endswith("EventDetails") and isinstance(v, dict)
                    ),
                    {},
                )
                error, cause = str(details.get("error", "")), str(details.get("cause", ""))
            if kind == "ExecutionStarted":
                start = event.get("timestamp") or start
        redactor = self.sync.writer.account_redactor()
        return Execution.objects.update_or_create(
            arn=pg_safe(arn[:2048]) or f"{self.machine.arn}:unknown",
            defaults={
                "account": self.sync.account,
                "state_machine": self.machine,
                "name": pg_safe((arn.rsplit(":", 2)[-2] if arn.count(":") >= 8 else arn)[:256]),
                "status": status,
                "start_date": start,
                "stop_date": stop,
                "error": pg_safe(redactor.text(error)[:256]),
                "cause": pg_safe(redactor.text(cause)),
                "redrive_count": max(
                    (in_range(e.get("_redrive_count"), INT_MAX) or 0 for e in events), default=0
                ),
                "source": HistorySource.LOGS,
                "last_event_id": max(
                    (in_range(e.get("id"), BIGINT_MAX) or 0 for e in events), default=0
                ),
                "history_complete": status != ExecutionStatus.RUNNING,
                "parse_problems": pg_safe(problems[:50]),
            },
        )


_EXECUTION_TERMINAL = {
    "ExecutionSucceeded": ExecutionStatus.SUCCEEDED,
    "ExecutionFailed": ExecutionStatus.FAILED,
    "ExecutionTimedOut": ExecutionStatus.TIMED_OUT,
    "ExecutionAborted": ExecutionStatus.ABORTED,
}


def _reconnect_if_broken() -> None:
    # Django reconnects only between requests or tasks; the rest of this run needs it now.
    if not connection.in_atomic_block and not connection.is_usable():
        connection.close()


def _scan_events(events: Any, last_id: int, error: dict[str, str]) -> tuple[int, dict[str, str]]:
    """The highest event id and the execution's own error so far; whatever the parser would
    flag as unreadable (not an object, an id that is no integer) is skipped here."""
    for event in events if isinstance(events, list) else ():
        if not isinstance(event, dict):
            continue
        last_id = max(last_id, in_range(as_int(event.get("id")), BIGINT_MAX) or 0)
        detail = next(
            (
                event[key]
                for key in _EXECUTION_ERROR_DETAILS
                if isinstance(event.get(key), dict) and event[key]
            ),
            None,
        )
        if detail is not None:
            error = {"error": _text(detail.get("error")), "cause": _text(detail.get("cause"))}
    return last_id, error


_EXECUTION_ERROR_DETAILS = (
    "executionFailedEventDetails",
    "executionTimedOutEventDetails",
    "executionAbortedEventDetails",
)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else "" if value is None else str(value)


def _log_group_name(arn: str) -> str:
    # arn:aws:logs:region:acct:log-group:NAME:*  → NAME
    parts = arn.split(":")
    if len(parts) >= 7 and parts[5] == "log-group":
        return parts[6]
    return arn


def _state_dict(info: HttpStateInfo) -> dict[str, Any]:
    return {
        "endpoint": info.endpoint,
        "method": info.method,
        "connection_arn": info.connection_arn,
        "header_names": sorted(info.header_names),
    }
