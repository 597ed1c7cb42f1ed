"""Counts and seen times that move in memory during a sync and reach the database in batches.

One UPDATE per endpoint and flush instead of one per attempt; group counts are recomputed
from the stored attempts (`refresh_groups`), so they are exact whatever happened before.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import F, Value
from django.db.models.functions import Greatest, Least

from connections.models import Endpoint
from executions.grouping import refresh_groups


@dataclass
class PendingCounts:
    """Endpoint seen times and touched failure groups, not yet written."""

    _endpoint_seen: dict[int, tuple[datetime, datetime]] = field(default_factory=dict)
    _touched_groups: set[int] = field(default_factory=set)

    def saw_endpoint(self, endpoint_id: int, at: datetime) -> None:
        first, last = self._endpoint_seen.get(endpoint_id, (at, at))
        self._endpoint_seen[endpoint_id] = (min(first, at), max(last, at))

    def touch_groups(self, group_ids: Iterable[int | None]) -> None:
        self._touched_groups.update(g for g in group_ids if g)

    def flush(self) -> None:
        """Bring touched endpoints and failure groups up to date, a few statements for all."""
        for endpoint_id, (first, last) in self._endpoint_seen.items():
            Endpoint.objects.filter(pk=endpoint_id).update(
                first_seen_at=Least(F("first_seen_at"), Value(first)),
                last_seen_at=Greatest(F("last_seen_at"), Value(last)),
            )
        self._endpoint_seen.clear()
        if self._touched_groups:
            refresh_groups(self._touched_groups)
            self._touched_groups.clear()
