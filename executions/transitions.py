"""Failure-group state changes recorded as outbox rows (GroupTransition).

Called inside the transaction that creates or reopens the group, so the change and its record
commit together: the alerts app announces each once, and a rolled-back write announces nothing.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.utils import timezone

from executions.choices import GroupTransitionKind
from executions.models import FailureGroup, GroupTransition


def record_group_transition(groups: Iterable[FailureGroup], kind: GroupTransitionKind) -> None:
    now = timezone.now()
    GroupTransition.objects.bulk_create(
        GroupTransition(group=g, account_id=g.account_id, kind=kind, at=now) for g in groups
    )
