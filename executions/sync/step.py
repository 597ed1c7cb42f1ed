"""One step of a sync run: its error policy, its heartbeat, and what it records on the run."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from django.db import DatabaseError, InterfaceError, OperationalError, connection, transaction
from django.utils import timezone

from connections.aws import AwsApi, AwsError
from connections.models import AwsAccount, SyncRun, sync_stale_after
from connections.unreadable import Unreadable
from executions.ingest import AttemptWriter
from executions.logs import bound
from executions.sync.run import ClaimLostError, Progress, SyncSummary

log = logging.getLogger(__name__)
T = TypeVar("T")


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

    def execution_failed(self, arn: str, exc: Exception) -> None:
        """One execution could not be stored: say why, and make sure the next one can be."""
        self.note_error(f"{arn}: {exc}")
        # Its transaction was rolled back: an endpoint the writer created there is gone.
        self.writer.forget_uncommitted()
        if isinstance(exc, DatabaseError | InterfaceError):
            reconnect_if_broken()

    def carry_out(self, api: AwsApi, work: Callable[[], T]) -> T | None:
        """The step's work; errors are recorded on the run, never raised (but a permanent AWS
        error fails the run), and the step's counts are recorded whatever happened."""
        try:
            with bound(sync_run_id=self.run_id, account=self.account.name):
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
            with bound(sync_run_id=self.run_id, account=self.account.name):
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
            reconnect_if_broken()
            return work()

    def lost_database(self, exc: Exception) -> None:
        """A dropped connection (failover, restart, a killed backend) outside any execution
        ends this step like a transient error: cursors have not moved, the next run resumes."""
        self.note_error(f"database: {exc}")
        reconnect_if_broken()

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
        log.debug("sync %s: %s", self.account.name, message)
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
            run.throttles = dict(Counter(run.throttles) + api.throttles)
            run.executions_added += s.executions_added
            run.executions_updated += s.executions_updated
            run.attempts_added += self.writer.added
            run.errors = (list(run.errors) + s.errors)[:100]
            run.unreadable = (list(run.unreadable) + s.unreadable)[:100]
            run.fatal = run.fatal or self.fatal
            run.save(
                update_fields=[
                    "api_calls",
                    "throttles",
                    "executions_added",
                    "executions_updated",
                    "attempts_added",
                    "errors",
                    "unreadable",
                    "fatal",
                ]
            )


def reconnect_if_broken() -> None:
    # Django reconnects only between requests or tasks; the rest of this run needs it now.
    if not connection.in_atomic_block and not connection.is_usable():
        connection.close()
