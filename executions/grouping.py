"""Failure groups: where a group is created, and where a resolved one reopens as a regression.

`FailureGroups.group_for` is the one place a group is created (opened); `refresh_groups` the
one place a group's counts move and a resolved group reopens; `drop_empty_open` the one rule
for when a group goes. Whatever must happen when a group opens or regresses (an outbox row, an
alert) goes next to those.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import cast

from django.db import models, transaction
from django.db.models import Count, Exists, F, ForeignObjectRel, OuterRef, Q, QuerySet
from django.utils import timezone

from connections.models import AwsAccount
from executions.choices import GroupStatus, GroupTransitionKind
from executions.classify import Classification, fingerprint, group_title
from executions.models import FailureGroup, HttpAttempt
from executions.transitions import record_group_transition

# Snoozed "until it gets worse" ends when the failures of the last hour exceed this many times
# the failures of the hour before the snooze (none then: any failure is worse).
WORSE_FACTOR = 2
WORSE_WINDOW = timedelta(hours=1)


def failures_last_hour(group_ids: Iterable[int], now: datetime) -> dict[int, int]:
    """Failures per group in the hour up to `now` (index att_group: a range scan per group)."""
    rows = (
        HttpAttempt.objects.filter(
            failure_group_id__in=list(group_ids), occurred_at__gt=now - WORSE_WINDOW
        )
        .order_by()
        .values("failure_group_id")
        .annotate(n=Count("id"))
    )
    return {r["failure_group_id"]: r["n"] for r in rows}


@dataclass
class FailureGroups:
    """The failure groups of one account, looked up (or created) once per sync."""

    account: AwsAccount
    # False when regrouping stored rows after a rules change: a group that only exists because
    # the rules moved is not news to announce (executions/transitions.py).
    announce: bool = True
    _groups: dict[str, FailureGroup] = field(default_factory=dict)

    def group_for(self, row: HttpAttempt, c: Classification) -> FailureGroup:
        """The group of a classified failure, created when it is the first of its kind."""
        template = row.endpoint.url_template if row.endpoint else ""
        fp = fingerprint(row.connection_arn, row.method, template, c, row.status_code, row.error)
        if fp in self._groups:
            return self._groups[fp]
        # One transaction for the group and its "opened" record (the alerts outbox).
        with transaction.atomic():
            group, created = FailureGroup.objects.get_or_create(
                account=self.account,
                fingerprint=fp,
                defaults={
                    "connection": row.connection,
                    "connection_arn": row.connection_arn,
                    "endpoint": row.endpoint,
                    "method": row.method,
                    "category": c.category or "unknown",
                    "subcategory": c.subcategory[:64],
                    "status_code": row.status_code,
                    "error": row.error,
                    "title": group_title(
                        method=row.method,
                        template=template,
                        status_code=row.status_code,
                        error=row.error,
                        category=c.category or "unknown",
                        subcategory=c.subcategory,
                        evidence=c.evidence,
                        connection_arn=row.connection_arn,
                        state_name=row.state_name,
                        account_name=self.account.name,
                    )[:500],
                    "hint": row.hint,
                    "first_seen_at": row.occurred_at,
                    "last_seen_at": row.occurred_at,
                },
            )
            if created:
                record_group_transition([group], GroupTransitionKind.OPENED, announce=self.announce)
        self._groups[fp] = group
        return group

    def forget(self) -> None:
        """After a rolled-back write: a cached group may have been created there and be gone."""
        self._groups.clear()


def drop_empty_open(groups: QuerySet[FailureGroup]) -> int:
    """Delete those of `groups` that are open and no attempt is in any more (a reclassification
    moved them, retention pruned them, a history replaced what the log said): they show
    nothing. Kept: resolved and ignored groups (a triage decision: a recurrence is still a
    regression, or still muted), groups someone wrote notes on or took, and groups a record
    that outlives them names (every nullable reverse FK but the attempts': a raised alert, a
    redrive batch and its audit), whose link the delete would erase. Returns groups deleted.
    Called where no sync step still writing can hold one in its cache: a run's end
    (finish_sync), `manage.py reclassify` while no sync runs, retention, and the log row's
    upgrade (its own groups, in its own transaction)."""
    empty = groups.filter(status=GroupStatus.OPEN, notes="", assignee__isnull=True).exclude(
        Exists(HttpAttempt.objects.filter(failure_group=OuterRef("pk")))
    )
    # include_hidden: the alerts' and redrive batches' links have related_name "+".
    for relation in FailureGroup._meta.get_fields(include_hidden=True):
        if not isinstance(relation, ForeignObjectRel):
            continue
        model = cast("type[models.Model]", relation.related_model)
        if relation.on_delete is models.SET_NULL and model is not HttpAttempt:
            named = Q(**{relation.field.name: OuterRef("pk")})
            empty = empty.exclude(Exists(model._base_manager.filter(named)))
    return empty.delete()[1].get(FailureGroup._meta.label, 0)


def refresh_groups(group_ids: Iterable[int], *, announce: bool = True) -> None:
    """Exact counts of the groups from their attempts; a resolved group that failed again
    after it was resolved reopens as a regression (announced unless `announce` is False).
    A group emptied here stays, at count 0, until a point where no sync step can hold it in its
    cache (`drop_empty_open`'s callers): deleted under a step still writing to it, that step's
    rows would fail their foreign key."""
    ids = sorted(set(group_ids))
    FailureGroup.objects.filter(pk__in=ids).recount()
    with transaction.atomic():
        # Locked, then re-checked by PostgreSQL: of two concurrent refreshes only one reopens a
        # group, so it is recorded (for the alerts outbox) once.
        regressed = list(
            FailureGroup.objects.select_for_update()
            .filter(
                pk__in=ids, status=GroupStatus.RESOLVED, status_changed_at__lt=F("last_seen_at")
            )
            .only("pk", "account_id")
        )
        if regressed:
            FailureGroup.objects.filter(pk__in=[g.pk for g in regressed]).update(
                status=GroupStatus.OPEN, regressed_at=timezone.now()
            )
            record_group_transition(regressed, GroupTransitionKind.REGRESSED, announce=announce)
    _end_worsened_snoozes(ids)


def _end_worsened_snoozes(ids: list[int]) -> None:
    """A group snoozed until it gets worse, whose last hour now exceeds WORSE_FACTOR × its rate
    when snoozed, is unsnoozed and recorded (outbox) in one transaction; the rows are locked, so
    of two concurrent refreshes only one records it."""
    with transaction.atomic():
        snoozed = list(
            FailureGroup.objects.select_for_update()
            .filter(pk__in=ids, snoozed_rate__isnull=False)
            .only("pk", "account_id", "snoozed_rate")
        )
        if not snoozed:
            return
        counts = failures_last_hour([g.pk for g in snoozed], timezone.now())
        worse = [g for g in snoozed if counts.get(g.pk, 0) > WORSE_FACTOR * (g.snoozed_rate or 0)]
        if worse:
            FailureGroup.objects.filter(pk__in=[g.pk for g in worse]).update(snoozed_rate=None)
            record_group_transition(worse, GroupTransitionKind.WORSENED)


def refresh_account_groups(account: AwsAccount, *, announce: bool = True) -> None:
    refresh_groups(
        FailureGroup.objects.filter(account=account).values_list("pk", flat=True),
        announce=announce,
    )
