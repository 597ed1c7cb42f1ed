"""Spend history calls where they teach the most: the Standard reader's order of reads.

A storm is one failure repeated thousands of times with a few rarer ones beside it, and
GetExecutionHistory is metered hardest. When the failures waiting for their history are more
than this sync reads or more than the history bucket's burst (TRIAGE_ABOVE) they are triaged;
fewer are all read within seconds, in any order, and are not described. DescribeExecution
draws on a bucket of its own and answers a failed execution's own error and cause, which tell which executions failed alike. So
before the histories, each failed execution this sync found not yet inspected (a LISTING row) is
described — at most DESCRIBES_PER_SYNC a machine a sync, newest first — its error and cause
stored (redacted) on that row, so the pages name the failure at once; then the histories are
read one exemplar per kind first, then the kinds in turn, then the successes
(`executions.classify.exemplars`). A row whose error is already stored (described by an
earlier sync, or outlined by the machine's log) is not described again. An execution that could
not be described (refused, beyond the budget, answered without an error) keeps its place among
the unknown ones, in listing order; a describe never fails the sync, and one still throttled
after every retry ends the describes of this machine's sync (the rest keep the listing's order).
"""

from __future__ import annotations

import logging
from collections.abc import Hashable
from typing import TYPE_CHECKING

from django.conf import settings

from connections.aws import AwsError
from connections.aws.executions import describe_error
from executions.choices import ExecutionStatus, HistorySource
from executions.classify import exemplars_first, likeness_key
from executions.models import Execution
from executions.sync.listing import COUNTED_AT_ONCE, Listed, failures_first

if TYPE_CHECKING:
    from executions.sync.readers import StandardReader

log = logging.getLogger(__name__)

# FAILED executions answered without an error before the machine's describes stop for this sync
# (none of them with one): DescribeExecution with METADATA_ONLY evidently leaves error and
# cause out there, so asking on would spend the bucket for nothing.
MISSES_BEFORE_GIVING_UP = 5
# Rows whose stored error and cause give their kind without a describe.
_KNOWN_FROM_ROW = (HistorySource.LISTING, HistorySource.LOGS)


def read_order(reader: StandardReader, wanted: list[Listed]) -> list[Listed]:
    """`wanted` in the order its histories are read: failures by breadth, then the rest."""
    ordered = failures_first(wanted)
    failures = [pair for pair in ordered if pair[0].status in COUNTED_AT_ONCE]
    if not failures or not _order_matters(reader, len(failures)):
        return ordered
    kinds = _kinds(reader, failures)
    return [
        *exemplars_first(failures, lambda pair: kinds.get(pair[0].arn)),
        *ordered[len(failures) :],
    ]


def _order_matters(reader: StandardReader, failures: int) -> bool:
    """Whether some of these failures' histories wait long enough for the order to matter:
    more than this sync reads (HISTORIES_PER_SYNC), or more than our share of
    GetExecutionHistory's burst reads in seconds (TRIAGE_ABOVE). Below that every history is
    read at once whatever the order, and a describe would only cost a call."""
    cap = reader.histories_cap
    return bool(cap and failures > cap) or failures > int(settings.STEPSCOPE.get("TRIAGE_ABOVE", 0))


def _kinds(reader: StandardReader, failures: list[Listed]) -> dict[str, Hashable]:
    """The likeness key of each failure known or learnt now, by ARN."""
    uninspected = [
        (item, stored)
        for item, stored in failures
        if stored is None or (stored.source in _KNOWN_FROM_ROW and not stored.history_complete)
    ]
    stored_pks = [stored.pk for _, stored in uninspected if stored is not None]
    kinds: dict[str, Hashable] = {}
    if stored_pks:  # one query for the error and cause an earlier sync or the log stored
        rows = Execution.objects.filter(pk__in=stored_pks).exclude(error="")
        for arn, error, cause in rows.values_list("arn", "error", "cause"):
            kinds[arn] = likeness_key(error, cause)
    budget = int(settings.STEPSCOPE.get("DESCRIBES_PER_SYNC", 0))
    misses = hits = 0
    for item, stored in uninspected:
        if item.arn in kinds or (stored is not None and stored.source != HistorySource.LISTING):
            continue
        if budget <= 0 or (misses >= MISSES_BEFORE_GIVING_UP and not hits):
            break  # the rest keep the listing's order
        budget -= 1
        reader.sync.beat()
        try:
            described = describe_error(reader.api, item.arn)
        except AwsError as exc:  # costs only this execution its place among its kind
            log.info("DescribeExecution %s: %s; read in listing order", item.arn, exc)
            if exc.transient:
                # Throttled (or failing) through every retry, a minute spent: the histories
                # should not wait for more of the same; the rest keep the listing's order.
                break
            continue
        if described.error is None:
            misses += described.status == ExecutionStatus.FAILED
            continue
        hits += 1
        kinds[item.arn] = _store(reader, item.arn, described.error, described.cause or "")
    return kinds


def _store(reader: StandardReader, arn: str, error: str, cause: str) -> Hashable:
    """The described error and cause on the LISTING row, redacted like a history's (a cause
    can carry a secret the endpoint echoed); the key is of what is stored, so a later sync
    finds the same key on the row."""
    stored = reader.stored_error(error, cause)
    # Only a row still waiting for its history: one read meanwhile has the history's own.
    Execution.objects.filter(arn=arn, source=HistorySource.LISTING).update(**stored)
    return likeness_key(stored["error"], stored["cause"])
