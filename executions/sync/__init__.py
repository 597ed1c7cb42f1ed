"""Sync one account: discover state machines and connections, pull new executions, store attempts.

Modules: `run` (the run lifecycle: claim, begin, finish, the accounts due), `step` (SyncStep: one
unit of a run, its error policy and what it records), `machines` (state machine discovery),
`readers` (the Standard and Express readers on one base), `prefetch` (histories fetched ahead),
`account` (the steps of one account, and all of them in one process). The sync only moves data:
what events mean is `executions.history`'s business. Import the public names from this package.

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

from executions.sync.account import (
    discover_region,
    sync_account_by_id,
    sync_machine,
    sync_one_execution,
)
from executions.sync.readers import ExpressLogReader, StandardReader
from executions.sync.run import (
    ALREADY_RUNNING,
    ClaimLostError,
    SyncSummary,
    begin_sync,
    due_account_ids,
    finish_sync,
)
from executions.sync.step import SyncStep

__all__ = [
    "ALREADY_RUNNING",
    "ClaimLostError",
    "ExpressLogReader",
    "StandardReader",
    "SyncStep",
    "SyncSummary",
    "begin_sync",
    "discover_region",
    "due_account_ids",
    "finish_sync",
    "sync_account_by_id",
    "sync_machine",
    "sync_one_execution",
]
