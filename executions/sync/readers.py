"""Readers: one state machine's new executions, from AWS into the database.

StandardReader lists executions and reads their histories (after the machine's CloudWatch
log, when it logs: what the log holds whole needs no history, logged.py); ExpressLogReader
reads the machine's CloudWatch execution log. What the events mean is `executions.history`'s business
(HistoryParser for the attempts, the summaries for the execution itself); these only move data.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import DatabaseError, InterfaceError, transaction

from connections.aws import AwsApi, AwsError, HistoryPage, ListedExecution
from connections.unreadable import HISTORIES, unreadable
from executions.choices import TERMINAL_STATUSES, ExecutionStatus, HistorySource
from executions.columns import pg_safe
from executions.history import (
    Assignment,
    ExecutionSummary,
    HistoryParser,
    HttpStateInfo,
    MapRun,
    ParsedAttempt,
    is_failing_outcome,
    map_runs_in,
)
from executions.models import Execution, StateMachine
from executions.models import MapRun as MapRunRow
from executions.sync import listing, logged, map_runs, triage
from executions.sync.listing import READ_AGAIN_FIELDS, Listed
from executions.sync.prefetch import HistoryPrefetcher, HistoryStream
from executions.sync.run import ClaimLostError
from executions.sync.step import SyncStep, reconnect_if_broken

log = logging.getLogger(__name__)

# Attempts of one history held before they are written (with the execution still incomplete).
STREAM_BATCH = 500
# New executions read whole are written this many to a transaction (one INSERT of executions and
# one of attempts): per-execution commits were most of the write cost. Should one of them be
# refused, the batch is written again one execution at a time, so only that one is lost.
WRITE_BATCH = 25


@dataclass
class ReadExecution:
    """One execution's history, read and parsed, not yet written."""

    item: ListedExecution
    summary: ExecutionSummary  # the execution's own error and newest event id
    problems: list[str]
    attempts: list[ParsedAttempt]
    assignments: list[Assignment] = field(default_factory=list)  # what states assigned
    map_runs: list[MapRun] = field(default_factory=list)  # the Distributed Map runs it started


def reads_on(stored: Execution) -> bool:
    """Whether the stored history is whole up to `last_event_id`, so AWS need only be asked
    for the events after it."""
    return (
        stored.source == HistorySource.HISTORY
        and stored.history_complete
        and stored.last_event_id > 0
    )


class MachineReader:
    """What both readers share: the step they count in, the machine and its HTTP states."""

    def __init__(
        self,
        sync: SyncStep,
        api: AwsApi,
        machine: StateMachine,
        states: dict[str, HttpStateInfo],
    ) -> None:
        self.sync, self.api, self.machine, self.states = sync, api, machine, states

    def run(self) -> None:
        raise NotImplementedError

    def _row_values(self, error: str, cause: str) -> dict[str, Any]:
        """The Execution fields both readers set alike: owner, machine, its own error redacted."""
        return {
            "account": self.sync.account,
            "state_machine": self.machine,
            **self.stored_error(error, cause),
        }

    def stored_error(self, error: str, cause: str) -> dict[str, str]:
        """An execution's own error and cause as stored, whoever read them (its history, its
        log, DescribeExecution): redacted, the error cut to its column, PostgreSQL-safe."""
        redactor = self.sync.writer.account_redactor()
        return {
            "error": pg_safe(redactor.text(error)[:256]),
            "cause": pg_safe(redactor.text(cause)),
        }


class StandardReader(MachineReader):
    """ListExecutions newest first down to the cursor, then each new history, streamed."""

    def __init__(
        self,
        sync: SyncStep,
        api: AwsApi,
        machine: StateMachine,
        states: dict[str, HttpStateInfo],
    ) -> None:
        super().__init__(sync, api, machine, states)
        self.succeeded_budget = int(settings.STEPSCOPE["SUCCEEDED_PER_SYNC"])
        # At most this many histories a sync (0: no limit); the rest wait for the next one.
        self.histories_cap = int(settings.STEPSCOPE.get("HISTORIES_PER_SYNC", 0))
        self.histories_read = 0
        self.capped = False
        # Saved from this sync's listing, history unread: its read updates that row.
        self.counted: set[str] = set()
        self.failed = False
        # Listed in this sync: their status is fresh, no DescribeExecution needed.
        self.listed: set[str] = set()
        # New executions read whole, waiting to be written WRITE_BATCH at a time.
        self.unwritten: list[ReadExecution] = []
        # Set when a history of this machine could not be read (a KMS key the reader may not use,
        # a policy denying its histories): the others share the cause, so they are not asked for.
        self.unreadable_histories = False
        # Map Runs stored in this sync whose children are still to be listed, and the run each
        # child was listed under.
        self.new_runs: list[MapRunRow] = []
        self.child_links: dict[str, MapRunRow] = {}

    def run(self) -> None:
        # The log first (when the machine logs): what it holds whole needs no history call.
        logged.standard_logs_first(self, self._owns)
        cursor = self.machine.newest_start_seen
        if self.sync.since and (cursor is None or self.sync.since < cursor):
            cursor = self.sync.since
        newest = cursor
        try:
            # The whole listing first, its failures saved as they are listed (listing.py).
            wanted: list[Listed] = []
            for page in listing.listed_pages(self, cursor):
                listing.count_at_once(self, page)
                for item, stored in page:
                    if item.arn in self.listed:
                        continue  # a listing restarted after an expired token repeats its pages
                    self.listed.add(item.arn)
                    start = item.start_date
                    newest = start if newest is None or start > newest else newest
                    if self._wants_history(item, stored):
                        wanted.append((item, stored))
            # Failures first, one exemplar of each kind before the rest (triage.py).
            self._read_histories(triage.read_order(self, wanted))
        except (AwsError, DatabaseError, InterfaceError):
            # What was read is kept (on a new connection if that one died); the cursor stays
            # for the rest.
            reconnect_if_broken()
            self._write_unwritten()
            raise
        self._write_unwritten()
        map_runs.read_children(self)
        self._revisit_running()
        # A capped sync keeps the cursor: the next one lists the same executions again (cheap,
        # a thousand a call) and reads the histories this one left.
        if not self.failed and not self.capped and newest is not None:
            StateMachine.objects.filter(pk=self.machine.pk).update(newest_start_seen=newest)

    def _owns(self, arn: str) -> bool:
        """An execution of this machine (a log group may be shared; a Map Run's children,
        `<machine>/<label>:<id>`, are read through their run)."""
        machine = self.machine.arn.replace(":stateMachine:", ":execution:", 1)
        return arn.startswith(f"{machine}:")

    def _read_histories(self, wanted: list[Listed]) -> None:
        """The wanted histories in the order given, at most HISTORIES_PER_SYNC of them."""
        with HistoryPrefetcher(self.api) as prefetch:
            # Histories of the next few executions are fetched while this one is written.
            ahead: deque[tuple[ListedExecution, Execution | None, HistoryStream]] = deque()
            for item, stored in wanted:
                if self.unreadable_histories:
                    self._save_listed(item, stored)
                    continue
                if self.histories_cap and self.histories_read >= self.histories_cap:
                    self.capped = True
                    break
                self.histories_read += 1
                if stored is not None and reads_on(stored):
                    self._read_again(item, stored)  # redriven: only its new events
                else:
                    ahead.append((item, stored, prefetch.open(item.arn)))
                if len(ahead) >= prefetch.depth:
                    self._execution(*ahead.popleft())
            while ahead:
                self._execution(*ahead.popleft())

    def _wants_history(self, item: ListedExecution, stored: Execution | None) -> bool:
        """New, changed or incomplete executions need their history; SUCCEEDED ones only
        within the per-sync budget."""
        redrives, status = item.redrive_count, item.status
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
        self,
        item: ListedExecution,
        stored: Execution | None,
        pages: Iterable[HistoryPage],
        read_on_from: int = 0,
    ) -> None:
        arn = item.arn
        try:
            self._ingest(item, stored, pages, read_on_from)
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
        self,
        item: ListedExecution,
        stored: Execution | None,
        pages: Iterable[HistoryPage],
        read_on_from: int = 0,
    ) -> None:
        is_new = stored is None
        parser = HistoryParser(self.states)
        attempts: list[ParsedAttempt] = []
        # Read on: the events before `read_on_from` are stored; the execution's own error is
        # the new events' (a redrive that succeeded has none).
        summary = ExecutionSummary(last_event_id=read_on_from)
        map_events: list[Any] = []
        if read_on_from and stored is not None:
            map_events = map_runs.stored_starts(stored)
        for page in pages:
            self.sync.beat()
            events = page.events
            summary = summary.after(events)
            map_events.extend(map_runs.map_events(events))
            attempts.extend(parser.feed(events))
            # Stream: write what closed on this page instead of holding the history.
            if len(attempts) >= STREAM_BATCH:
                so_far = ReadExecution(item, summary, [], attempts)
                # A row stored from the log loses its logged attempts with the first batch.
                with transaction.atomic(), logged.replacing_logged(self.sync.writer, stored):
                    execution = self._save_execution(so_far, stored, complete=False)
                    self.sync.writer.write(execution, attempts, self.states, fresh_execution=is_new)
                stored = execution
                attempts = []
        attempts.extend(parser.finish())
        problems = list(parser.problems)
        if read_on_from and stored is not None:
            problems = [*stored.parse_problems, *problems]
        read = ReadExecution(item, summary, problems, attempts, parser.variables.assignments)
        read.map_runs = map_runs_in(map_events, item.arn)
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

    def _save_listed(self, item: ListedExecution, stored: Execution | None) -> None:
        listing.save_listed(self, item, stored)

    def _write_alone(self, read: ReadExecution, stored: Execution | None, *, is_new: bool) -> None:
        with transaction.atomic(), logged.replacing_logged(self.sync.writer, stored):
            execution = self._save_execution(read, stored, complete=True)
            self.sync.writer.write(execution, read.attempts, self.states, fresh_execution=is_new)
            self.sync.writer.write_assignments(execution, read.assignments)
            self._record_map_runs(execution, read)
        if is_new and read.item.arn not in self.counted:
            self.sync.summary.executions_added += 1
        else:
            self.sync.summary.executions_updated += 1

    def _write_unwritten(self) -> None:
        """The new executions read so far, in one transaction; one at a time if it fails."""
        batch, self.unwritten = self.unwritten, []
        if not batch:
            return
        runs_before = len(self.new_runs)
        upgrades = sum(read.item.arn in self.counted for read in batch)
        values = [self._read_values(read, None, complete=True) for read in batch]
        try:
            with transaction.atomic():
                executions = Execution.objects.bulk_create(
                    [
                        Execution(arn=read.item.arn, **row, **self._links(read))
                        for read, row in zip(batch, values, strict=True)
                    ],
                    # Rows saved from the listing are upgraded in place with what the history
                    # read sets (no attempts yet, so the writer's fresh path still holds);
                    # their Map Run links were set then. synced_at is auto_now: named too.
                    update_conflicts=bool(upgrades),
                    unique_fields=["arn"] if upgrades else None,
                    update_fields=[*values[0], "synced_at"] if upgrades else None,
                )
                self.sync.writer.write_many(
                    [(e, read.attempts) for e, read in zip(executions, batch, strict=True)],
                    self.states,
                    fresh_executions=True,
                )
                for execution, read in zip(executions, batch, strict=True):
                    self.sync.writer.write_assignments(execution, read.assignments)
                    self._record_map_runs(execution, read)
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
            del self.new_runs[runs_before:]  # rolled back with the batch
            reconnect_if_broken()
            for read in batch:
                try:
                    self._write_alone(read, None, is_new=True)
                except Exception as exc:  # this one is refused; its neighbours are stored
                    self.failed = True
                    self.sync.execution_failed(read.item.arn, exc)
            return
        self.sync.summary.executions_added += len(batch) - upgrades
        self.sync.summary.executions_updated += upgrades

    def _record_map_runs(self, execution: Execution, read: ReadExecution) -> None:
        if read.map_runs:
            redactor = self.sync.writer.account_redactor()
            self.new_runs.extend(map_runs.record_map_runs(execution, read.map_runs, redactor))

    def _save_execution(
        self, read: ReadExecution, stored: Execution | None, *, complete: bool
    ) -> Execution:
        arn = read.item.arn
        values = self._execution_values(read, stored, complete=complete)
        if stored is None and arn not in self.counted:
            return Execution.objects.create(arn=arn, **values)
        execution, _ = Execution.objects.update_or_create(arn=arn, defaults=values)
        return execution

    def _execution_values(
        self, read: ReadExecution, stored: Execution | None, *, complete: bool
    ) -> dict[str, Any]:
        return {**self._read_values(read, stored, complete=complete), **self._links(read)}

    def _links(self, read: ReadExecution) -> dict[str, Any]:
        item = read.item
        return map_runs.links_for(self.sync.account.pk, item.arn, item.start_date, self.child_links)

    def _read_values(
        self, read: ReadExecution, stored: Execution | None, *, complete: bool
    ) -> dict[str, Any]:
        """What a history read sets on the row, its Map Run links aside."""
        item, summary, attempts = read.item, read.summary, read.attempts
        # Known before the attempts are written, so no UPDATE is needed after them.
        failed = any(is_failing_outcome(a.outcome) for a in attempts) or bool(
            stored and stored.has_failed_attempt
        )
        return {
            **self._row_values(summary.error, summary.cause),
            "name": pg_safe(item.name[:256]),
            "status": item.status,
            "start_date": item.start_date,
            "stop_date": item.stop_date,
            "redrive_count": item.redrive_count,
            "source": HistorySource.HISTORY,
            "last_event_id": summary.last_event_id,
            "history_complete": complete and item.status in TERMINAL_STATUSES,
            "has_failed_attempt": failed,
            "parse_problems": pg_safe(read.problems[:50]),
        }

    def read_one(self, execution: Execution) -> None:
        """One stored execution read again from AWS (after a redrive): its status now and its
        history, whatever the listing cursor says (a redriven execution keeps its old start)."""
        self.listed.add(execution.arn)
        item = self.api.describe_execution(execution.arn)
        self._read_again(item, execution)
        self._write_unwritten()

    def _read_again(self, item: ListedExecution, stored: Execution) -> None:
        """A stored execution whose status moved on. Stored whole (terminal, every attempt
        closed), it is read on from its stored event id: a redrive appends ExecutionRedriven and
        what follows to the same history, so the stored events are not asked for again. While it
        still runs only its status is stored, so the id stays at a point where nothing was open
        (an attempt begun but not finished would be cut in two by a later read-on)."""
        if not reads_on(stored):
            self._execution(item, stored, self.api.history_pages(item.arn))
            return
        if item.status not in TERMINAL_STATUSES:
            self._save_running(item, stored)
            return
        after = stored.last_event_id
        self._execution(item, stored, self._newer_pages(item.arn, after), read_on_from=after)

    def _newer_pages(self, arn: str, after: int) -> Iterator[HistoryPage]:
        # Lazy, so an AWS error is raised inside _execution's handling like a full read's.
        yield self.api.history_after(arn, after)

    def _save_running(self, item: ListedExecution, stored: Execution) -> None:
        Execution.objects.filter(pk=stored.pk).update(
            status=item.status, stop_date=item.stop_date, redrive_count=item.redrive_count
        )
        self.sync.summary.executions_updated += 1

    def read_children(self, items: list[ListedExecution], run: MapRunRow) -> None:
        """One page of a Map Run's child executions (executions/sync/map_runs.py): linked, and
        read like listed executions of the machine; their stored rows in one query a page, as
        `_listing` does, since a run may have thousands of children."""
        fresh = [item.arn for item in items if item.arn not in self.listed]
        known = {e.arn: e for e in Execution.objects.filter(arn__in=fresh).only(*READ_AGAIN_FIELDS)}
        if known:
            Execution.objects.filter(
                pk__in=[e.pk for e in known.values()], map_run__isnull=True
            ).update(map_run=run, parent_execution_id=run.parent_execution_id)
        for item in items:
            if item.arn in self.listed:
                continue
            self.listed.add(item.arn)
            self.child_links[item.arn] = run
            stored = known.get(item.arn)
            if not self._wants_history(item, stored):
                continue
            if self.unreadable_histories:
                self._save_listed(item, stored)
            elif stored is not None and reads_on(stored):
                self._read_again(item, stored)
            else:
                self._execution(item, stored, self.api.history_pages(item.arn))

    def _revisit_running(self) -> None:
        """Executions stored while RUNNING, older than this listing reached: ask each once."""
        running = (
            Execution.objects.filter(state_machine=self.machine, status=ExecutionStatus.RUNNING)
            .exclude(arn__in=self.listed)
            .only(*READ_AGAIN_FIELDS)[:200]
        )
        for execution in running:
            # Status and times are all it needs (the boundary asks for METADATA_ONLY).
            item = self.api.describe_execution(execution.arn)
            if item.status != ExecutionStatus.RUNNING:
                if not self._wants_history(item, execution):
                    continue
                if self.unreadable_histories:
                    self._save_listed(item, execution)
                else:
                    self._read_again(item, execution)


class ExpressLogReader(MachineReader):
    """FilterLogEvents from the millisecond cursor; events regrouped per execution ARN."""

    def run(self) -> None:
        try:
            collected = logged.log_pass(self)
        except AwsError as exc:
            if not exc.about_one_resource:
                raise  # throttled or failing: the step's policy (the next sync resumes)
            logged.note_log_unreadable(self, exc, logged.EXPRESS_LOG_MISSING)
            return
        ok = True
        for arn, events in collected.executions():
            created = logged.store_logged(self, arn, events, complete=None)
            if created:
                self.sync.summary.executions_added += 1
            ok = created is not None and ok
        if ok:
            logged.move_cursor(self.machine, collected.newest_ms)
