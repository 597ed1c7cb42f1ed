"""The Sync page's backlog: per account and region, the listed executions whose history is still
to be read, and how long reading them takes at the GetExecutionHistory rate our share allows.

AWS's quota, not our code, sets the pace in a failure storm (docs/performance.md), so the ETA is
the backlog divided by the bucket's refill rate at our share: the floor, if nothing else calls.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import Count

from connections.models import AwsAccount
from connections.ratelimit import RateLimiter, quota_for, quota_scope, quota_settings
from executions import charts
from executions.models import Execution

HISTORY_CALL = "GetExecutionHistory"


@dataclass(frozen=True)
class Backlog:
    region: str
    waiting: int  # executions listed whose history is not read yet
    rate: float  # histories a second our share of the quota allows
    aws_rate: float  # AWS's refill rate for the whole account and region
    share: float

    @property
    def eta(self) -> str:
        # One history call each (most histories are one page): the floor, not a promise.
        return charts.duration_label(self.waiting / self.rate) if self.rate > 0 else "unknown"

    @property
    def share_percent(self) -> str:
        return f"{self.share * 100:g}"


def backlogs(accounts: Iterable[AwsAccount]) -> dict[int, list[Backlog]]:
    """Each account's regions with a backlog (one query for all of them)."""
    by_pk = {account.pk: account for account in accounts}
    rows = (
        Execution.objects.awaiting_history()
        .filter(account_id__in=list(by_pk))
        .values_list("account_id", "state_machine__region")
        .annotate(waiting=Count("id"))
        .order_by("account_id", "state_machine__region")
    )
    share = quota_settings().share_for(HISTORY_CALL)
    found: dict[int, list[Backlog]] = defaultdict(list)
    for account_id, region, waiting in rows:
        limiter = RateLimiter(quota_scope(by_pk[account_id]), region)
        _, rate = limiter.bucket(HISTORY_CALL)
        aws_rate = quota_for(HISTORY_CALL, region)[1]
        found[account_id].append(Backlog(region, waiting, rate, aws_rate, share))
    return found
