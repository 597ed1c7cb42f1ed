"""The listing half of the Standard reader: ListExecutions down to the cursor, counted at once.

In a failure storm the histories are what AWS meters hardest (GetExecutionHistory's refill is a
few calls a second at our share), while one ListExecutions call names a thousand executions. So
the whole listing is taken first and every failed execution not stored yet is saved from it at
once, a page at a time, as a LISTING row ("failed — not yet inspected"); its history, read
later, upgrades that same row in place. The histories are then read failures first.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from connections.aws import ListedExecution
from executions.choices import FAILED_STATUSES, HistorySource
from executions.columns import pg_safe
from executions.models import Execution
from executions.sync import map_runs

if TYPE_CHECKING:
    from executions.sync.readers import StandardReader

# The statuses saved from the listing before their history is read: what on-call counts first.
COUNTED_AT_ONCE = FAILED_STATUSES
# What reading a stored execution again needs of its row (no deferred field loaded one by one).
READ_AGAIN_FIELDS = (
    "pk", "arn", "status", "redrive_count", "history_complete", "has_failed_attempt",
    "source", "last_event_id", "parse_problems",
)  # fmt: skip

Listed = tuple[ListedExecution, Execution | None]


def listed_pages(reader: StandardReader, cursor: datetime | None) -> Iterator[list[Listed]]:
    """Pages of executions newer than the cursor, each with its stored row (one query a page)."""
    for items in reader.api.execution_pages(reader.machine.arn):
        reader.sync.beat()
        known = {
            e.arn: e
            for e in Execution.objects.filter(arn__in=[i.arn for i in items]).only(
                *READ_AGAIN_FIELDS
            )
        }
        page: list[Listed] = []
        for item in items:
            # ListExecutions is eventually consistent: keep a minute of overlap.
            if cursor is not None and item.start_date < cursor - timedelta(minutes=1):
                yield page
                return
            page.append((item, known.get(item.arn)))
        yield page


def listed_values(reader: StandardReader, item: ListedExecution) -> dict[str, Any]:
    """A new row from what ListExecutions says of an execution: status and times only."""
    return {
        **_listed_state(item),
        "account": reader.sync.account,
        "state_machine": reader.machine,
        "name": pg_safe(item.name[:256]),
        "start_date": item.start_date,
        "source": HistorySource.LISTING,
        "history_complete": False,
        **map_runs.links_for(reader.sync.account.pk, item.arn, item.start_date, reader.child_links),
    }


def _listed_state(item: ListedExecution) -> dict[str, Any]:
    """What ListExecutions says that changes over an execution's life."""
    return {"status": item.status, "stop_date": item.stop_date, "redrive_count": item.redrive_count}


def count_at_once(reader: StandardReader, page: list[Listed]) -> None:
    """The page's failed executions not stored yet, saved in one INSERT (a row already there,
    by a race or a repeated page, is left as it is: the ARN is unique)."""
    new = [
        item
        for item, stored in page
        if stored is None and item.status in COUNTED_AT_ONCE and item.arn not in reader.counted
    ]
    if not new:
        return
    Execution.objects.bulk_create(
        [Execution(arn=item.arn, **listed_values(reader, item)) for item in new],
        ignore_conflicts=True,
    )
    reader.counted.update(item.arn for item in new)
    reader.sync.summary.executions_added += len(new)


def save_listed(reader: StandardReader, item: ListedExecution, stored: Execution | None) -> None:
    """An execution whose history cannot be read: what ListExecutions says of it."""
    listed = _listed_state(item)
    if stored is not None:  # what its history gave before (if anything) stays
        if stored.status != listed["status"] or stored.redrive_count != listed["redrive_count"]:
            Execution.objects.filter(pk=stored.pk).update(**listed)
            reader.sync.summary.executions_updated += 1
        return
    if item.arn in reader.counted:
        return  # saved from the listing already
    _, created = Execution.objects.get_or_create(arn=item.arn, defaults=listed_values(reader, item))
    reader.sync.summary.executions_added += int(created)


def failures_first(wanted: list[Listed]) -> list[Listed]:
    """The order histories are read in: failures (newest first, as listed) before the rest, so
    what broke is known before what went well; the sort is stable, the listing's order stays."""
    return sorted(wanted, key=lambda pair: pair[0].status not in COUNTED_AT_ONCE)
