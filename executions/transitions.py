"""Failure-group state changes recorded as outbox rows (GroupTransition).

Called inside the transaction that creates or reopens the group, so the change and its record
commit together: the alerts app announces each once, and a rolled-back write announces nothing.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.utils import timezone

from executions.choices import GroupTransitionKind
from executions.models import FailureGroup, GroupTransition


def record_group_transition(
    groups: Iterable[FailureGroup], kind: GroupTransitionKind, *, announce: bool = True
) -> None:
    """`announce=False` (regrouping after a rules change, `manage.py reclassify`): the change is
    kept in the group's history but recorded as already dispatched, so no alert announces it."""
    now = timezone.now()
    GroupTransition.objects.bulk_create(
        GroupTransition(
            group=g,
            account_id=g.account_id,
            kind=kind,
            at=now,
            dispatched_at=None if announce else now,
        )
        for g in groups
    )
