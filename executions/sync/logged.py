"""The log pass both readers share: a machine's CloudWatch execution log read from its
millisecond cursor, regrouped per execution, and each execution stored from its logged events.

Express machines have no other record. A Standard machine that logs (ALL or ERROR) is read here
first (`standard_logs_first`): one FilterLogEvents call holds up to 10,000 events, from a quota
of its own, where GetExecutionHistory costs a call per execution. What the logs hold whole is
stored complete and never asked of GetExecutionHistory; a failure the logs only outline (level
ERROR, no execution data, a gap in the ids) is stored at once and its history read later
upgrades the same row (StandardReader).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from django.db import InterfaceError, OperationalError, transaction
from django.utils import timezone

from connections.arn import log_group_name
from connections.aws import AwsError
from connections.unreadable import LOG, unreadable
from executions.choices import (
    ExecutionStatus,
    HistorySource,
    LoggingLevel,
    StateMachineType,
)
from executions.columns import pg_safe
from executions.grouping import drop_empty_open
from executions.history import (
    EXECUTION_TERMINAL,
    HistoryParser,
    LogEventsByExecution,
    LoggedExecution,
    summarize_logged,
)
from executions.models import (
    Execution,
    FailureGroup,
    HttpAttempt,
    StateMachine,
    VariableAssignment,
)
from executions.sync.listing import READ_AGAIN_FIELDS
from executions.sync.step import reconnect_if_broken

if TYPE_CHECKING:
    from executions.ingest import AttemptWriter
    from executions.sync.readers import MachineReader

log = logging.getLogger(__name__)

# Express executions last at most 5 minutes: re-reading that much of the log window lets an
# execution whose events straddled two syncs be reassembled whole. A Standard one that straddles
# it is not whole in the logs and is read from its history instead.
LOG_OVERLAP_MS = 5 * 60 * 1000
# Events a log holds that GetExecutionHistory tells better: a redrive (its status and count
# come from the listing) and a Distributed Map (its runs and children are linked from history).
_HISTORY_ONLY = frozenset({"ExecutionRedriven", "MapRunStarted"})
# What an unreadable log costs, as the run says it.
EXPRESS_LOG_MISSING = "its executions (an Express machine's are recorded only in its log)"
STANDARD_LOG_MISSING = (
    "the log is not read first: each execution's history is read instead (a GetExecutionHistory"
    " call each)"
)


def log_pass(reader: MachineReader) -> LogEventsByExecution:
    """FilterLogEvents from the machine's cursor (less the overlap), regrouped per ARN."""
    machine = reader.machine
    start = max(0, machine.logs_cursor_ms - LOG_OVERLAP_MS)
    collected = LogEventsByExecution(newest_ms=machine.logs_cursor_ms)
    group = log_group_name(machine.log_group_arn) or machine.log_group_arn
    for page in reader.api.log_pages(group, start):
        reader.sync.beat()
        for raw in page.events:
            collected.add(raw)
    return collected


def note_log_unreadable(reader: MachineReader, exc: AwsError, missing: str) -> None:
    """A log group gone or denied costs its machine's log, named on the run with what to do."""
    machine = reader.machine
    reader.sync.note_unreadable(
        unreadable(LOG, machine.name, machine.log_group_arn, machine.region, exc, missing)
    )


def move_cursor(machine: StateMachine, newest_ms: int) -> None:
    StateMachine.objects.filter(pk=machine.pk).update(logs_cursor_ms=newest_ms)


def store_logged(
    reader: MachineReader, arn: str, events: list[dict[str, Any]], *, complete: bool | None
) -> bool | None:
    """One execution from its log events: parsed like a history, stored by ARN with
    source LOGS (`complete` None: complete when the events end it, as an Express execution's
    log is its whole history). Returns whether its row was created, None if it was refused
    (recorded).
    A connection lost in the write is the connection's fault, not the execution's: written
    once more on a new one (its transaction rolled back whole), as a refused batch is."""
    reader.sync.beat()
    for last_try in (False, True):
        try:
            return _store_logged(reader, arn, events, complete)
        except (OperationalError, InterfaceError) as exc:
            log.warning(
                "sync %s: %s: the write lost its connection (%s)%s",
                reader.sync.account.name,
                arn,
                exc,
                "" if last_try else "; once more",
            )
            if last_try:
                raise  # the step's own retry, on a new connection, takes it from here
            # Cached endpoints and groups may have been created in the rolled-back write.
            reader.sync.writer.forget_uncommitted()
            reconnect_if_broken()
        except Exception as exc:  # one bad execution never stops the batch
            reader.sync.execution_failed(arn, exc)
            return None
    return None  # not reached: the last try returns or raises


def _store_logged(
    reader: MachineReader, arn: str, events: list[dict[str, Any]], complete: bool | None
) -> bool:
    parser = HistoryParser(reader.states)
    attempts = list(parser.feed(events))
    attempts.extend(parser.finish())
    logged = summarize_logged(arn, events)
    whole = logged.finished if complete is None else complete
    with transaction.atomic():
        execution, created = _save(reader, arn, logged, list(parser.problems), whole)
        writer = reader.sync.writer
        writer.write(execution, attempts, reader.states, fresh_execution=created)
        writer.write_assignments(execution, parser.variables.assignments)
    return created


def _save(
    reader: MachineReader,
    arn: str,
    logged: LoggedExecution,
    problems: list[str],
    complete: bool,
) -> tuple[Execution, bool]:
    return Execution.objects.update_or_create(
        arn=pg_safe(arn[:2048]) or f"{reader.machine.arn}:unknown",
        defaults={
            **reader._row_values(logged.error, logged.cause),
            "name": pg_safe(logged.name[:256]),
            "status": logged.status,
            "start_date": logged.start or timezone.now(),
            "stop_date": logged.stop,
            "redrive_count": logged.redrive_count,
            "source": HistorySource.LOGS,
            "last_event_id": logged.last_event_id,
            "history_complete": complete,
            "parse_problems": pg_safe(problems[:50]),
        },
    )


# ------------------------------------------------------------------ Standard machines


def reads_logs_first(machine: StateMachine) -> bool:
    """A Standard machine whose log says more than its terminal event (FATAL does not)."""
    return (
        machine.type == StateMachineType.STANDARD
        and bool(machine.log_group_arn)
        and machine.logging_level in (LoggingLevel.ALL, LoggingLevel.ERROR)
    )


def logs_whole(machine: StateMachine) -> bool:
    """Whether the log holds every event with its data, as GetExecutionHistory would."""
    return machine.logging_level == LoggingLevel.ALL and machine.include_execution_data


def covered(events: list[dict[str, Any]]) -> bool:
    """The logged events are the whole history: ids 1, 2, … with none missing (the log's
    `id` fields), the last one ending the execution, nothing only the history tells well."""
    if not events or str(events[-1].get("type")) not in EXECUTION_TERMINAL:
        return False
    if any(str(e.get("type")) in _HISTORY_ONLY for e in events):
        return False
    return [e.get("id") for e in events] == list(range(1, len(events) + 1))


def standard_logs_first(reader: MachineReader, own: Callable[[str], bool]) -> None:
    """Before the listing: the machine's log pass, each execution it holds stored once.

    Whole (ALL with execution data, ids contiguous to the terminal event): stored complete,
    so the listing finds it unchanged and reads no history. A finished failure the log only
    outlines: stored incomplete (its failures counted and classified from what the log holds),
    and the listing reads its history, which replaces those attempts. Anything else (running,
    a success the log does not cover) is left to the listing. A log that cannot be read
    (denied, deleted, throttled) costs nothing but the shortcut: the listing reads as before.
    """
    machine = reader.machine
    if not reads_logs_first(machine):
        return
    try:
        collected = log_pass(reader)
    except AwsError as exc:
        if exc.about_one_resource:  # gone or denied: said on the run, it will not fix itself
            note_log_unreadable(reader, exc, STANDARD_LOG_MISSING)
        else:  # throttled or failing: the next sync tries the log again
            log.info("%s: its log is not read first (%s); histories only", machine.arn, exc)
        return
    whole = logs_whole(machine)
    logged = [(arn, events) for arn, events in collected.executions() if own(arn)]
    stored = _stored([arn for arn, _ in logged])
    ok = True
    for arn, events in logged:
        complete = whole and covered(events)
        if not complete and not _failed_outline(events):
            continue
        row = stored.get(arn)
        if row is not None and (row.history_complete or row.source == HistorySource.HISTORY):
            continue  # stored from its history or whole already: the log adds nothing
        created = store_logged(reader, arn, events, complete=complete)
        if created is None:
            ok = False
        elif created:
            reader.sync.summary.executions_added += 1
        else:
            reader.sync.summary.executions_updated += 1
    if ok:
        move_cursor(machine, collected.newest_ms)


def _failed_outline(events: list[dict[str, Any]]) -> bool:
    last = str(events[-1].get("type")) if events else ""
    return EXECUTION_TERMINAL.get(last, ExecutionStatus.SUCCEEDED) != ExecutionStatus.SUCCEEDED


def _stored(arns: Iterable[str]) -> dict[str, Execution]:
    wanted = list(arns)
    if not wanted:
        return {}
    rows = Execution.objects.filter(arn__in=wanted).only(*READ_AGAIN_FIELDS)
    return {e.arn: e for e in rows}


@contextmanager
def replacing_logged(writer: AttemptWriter, stored: Execution | None) -> Iterator[None]:
    """Around the write of a history read (inside its transaction): a row stored from the log
    loses its logged attempts first. Their keys differ from the history's (an ERROR-level log
    keys a failure by its TaskFailed, the history by its TaskScheduled), so writing on top would
    count one call twice. The groups they were in are recounted from what stays; one left empty
    and open existed only for what the log could not say (no URL, no request) and goes
    (`drop_empty_open`, the rule retention and a run's end follow too)."""
    if stored is None or stored.source != HistorySource.LOGS:
        yield
        return
    attempts = HttpAttempt.objects.filter(execution_id=stored.pk)
    groups = {g for g in attempts.values_list("failure_group_id", flat=True) if g}
    attempts.delete()
    VariableAssignment.objects.filter(execution_id=stored.pk).delete()
    stored.source, stored.has_failed_attempt = HistorySource.HISTORY, False
    yield
    if not groups:
        return
    if drop_empty_open(FailureGroup.objects.filter(pk__in=groups)):
        writer.groups.forget()  # the cache may hold one of them
    writer.counts.touch_groups(groups)
