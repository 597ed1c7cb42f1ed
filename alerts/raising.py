"""The outbox drain: state-change rows of the lower layers become alerts, exactly once.

Sources, each written in the transaction that changed the state it records:
`executions.GroupTransition` (a group opened or regressed), `connections.ConnectionStateChange`
(a connection became DEAUTHORIZED or FAILED_CONNECTIVITY) and `connections.SyncRun` (a run
failed, or was abandoned: stalled). Rate crossings are computed here from the attempts (the
threshold is the rule's, which the lower layers do not know); see `_drain_rates`. Each batch is locked (SKIP LOCKED: drains run side by side),
turned into Alert + Delivery rows and marked dispatched in one transaction; the alert key
(source row × rule) is unique, so even a repeated drain raises nothing twice.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Count, F
from django.utils import timezone

from alerts import messages
from alerts.choices import AlertKind, Event
from alerts.models import Alert, AlertRule, Delivery, RateWatch
from connections.choices import ConnectionState, SyncStatus
from connections.models import ConnectionStateChange, SyncRun
from executions.choices import GroupTransitionKind
from executions.models import FailureGroup, GroupTransition, HttpAttempt

BATCH = 200
CONNECTION_EVENTS = {
    ConnectionState.DEAUTHORIZED: Event.CONNECTION_DEAUTHORIZED,
    ConnectionState.FAILED_CONNECTIVITY: Event.CONNECTION_FAILED_CONNECTIVITY,
}
GROUP_EVENTS = {
    GroupTransitionKind.OPENED: Event.NEW_GROUP,
    GroupTransitionKind.REGRESSED: Event.REGRESSION,
    GroupTransitionKind.WORSENED: Event.WORSENED,
}


@dataclass(frozen=True)
class Facts:
    """What the filters of a rule look at. A filter applies to the events that have its
    dimension: categories, endpoints and final attempts to groups, region and connection to
    groups and connections; a sync event is about its account only."""

    event: Event
    account_id: int
    region: str = ""
    connection_id: int | None = None
    endpoint_id: int | None = None
    category: str = ""
    final: bool = True
    about_group: bool = False
    about_connection: bool = False


@dataclass
class RuleView:
    """A rule with its many-to-many filters loaded once per drain."""

    rule: AlertRule
    accounts: frozenset[int]
    connections: frozenset[int]
    endpoints: frozenset[int]

    def matches(self, f: Facts) -> bool:
        r = self.rule
        if not r.wants(f.event) or (self.accounts and f.account_id not in self.accounts):
            return False
        located = f.about_group or f.about_connection
        if located and (
            (r.regions and f.region not in r.regions)
            or (self.connections and f.connection_id not in self.connections)
        ):
            return False
        return not f.about_group or (
            (not self.endpoints or f.endpoint_id in self.endpoints)
            and (not r.categories or f.category in r.categories)
            and (f.final or not r.final_attempts_only)
        )


def load_rules() -> list[RuleView]:
    rules = AlertRule.objects.filter(enabled=True).prefetch_related(
        "accounts", "connections", "endpoints"
    )
    return [
        RuleView(
            rule,
            frozenset(a.pk for a in rule.accounts.all()),
            frozenset(c.pk for c in rule.connections.all()),
            frozenset(e.pk for e in rule.endpoints.all()),
        )
        for rule in rules
    ]


def raise_pending(now: datetime | None = None) -> int:
    """Drain every source of the outbox, then close the quiet periods that are over (digests).
    Returns how many alerts were raised."""
    now = now or timezone.now()
    rules = load_rules()
    raised = 0
    for drain in (_drain_groups, _drain_connections, _drain_sync_runs, _drain_rates):
        while True:
            count, more = drain(rules, now)
            raised += count
            if not more:
                break
    return raised + raise_digests(now)


def _quiet(rule: AlertRule, subject: str, event: Event, now: datetime) -> bool:
    """The same event about this subject was announced within the rule's quiet period (a
    flapping group or connection): the digest sums it up. A different event is news."""
    since = now - timedelta(seconds=rule.quiet_period_seconds)
    return Alert.objects.filter(
        rule=rule, subject=subject, event=event, created_at__gte=since
    ).exists()


def _raise(
    view: RuleView,
    key: str,
    payload: dict[str, Any],
    now: datetime,
    *,
    event: Event | str,
    subject: str,
    kind: AlertKind = AlertKind.EVENT,
    **links: Any,
) -> Alert | None:
    rule = view.rule
    alert, created = Alert.objects.get_or_create(
        key=key,
        defaults=dict(rule=rule, kind=kind, event=event, subject=subject, payload=payload, **links),
    )
    if not created:
        return None
    Delivery.objects.bulk_create(
        Delivery(alert=alert, channel=channel, next_attempt_at=now) for channel in rule.channels
    )
    return alert


def _fan_out(
    rules: Iterable[RuleView],
    facts: Facts,
    subject: str,
    key: str,
    payload: Any,
    now: datetime,
    **links: Any,
) -> int:
    raised = 0
    for view in rules:
        if not view.matches(facts) or _quiet(view.rule, subject, facts.event, now):
            continue
        made = _raise(
            view,
            f"{key}:rule:{view.rule.pk}",
            payload(),
            now,
            event=facts.event,
            subject=subject,
            account_id=facts.account_id,
            **links,
        )
        raised += made is not None
    return raised


def _drain_groups(rules: list[RuleView], now: datetime) -> tuple[int, bool]:
    raised = 0
    with transaction.atomic():
        batch = list(
            GroupTransition.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(dispatched_at__isnull=True)
            .select_related("group__account", "group__connection", "group__endpoint")
            .order_by("at", "id")[:BATCH]
        )
        for t in batch:
            group: FailureGroup = t.group
            if group.silenced(now):
                continue  # snoozed or muted: dispatched with nothing raised
            event = GROUP_EVENTS[GroupTransitionKind(t.kind)]
            facts = Facts(
                event=event,
                account_id=group.account_id,
                region=group.connection.region if group.connection else "",
                connection_id=group.connection_id,
                endpoint_id=group.endpoint_id,
                category=group.category,
                final=HttpAttempt.objects.filter(failure_group=group, final_attempt=True).exists(),
                about_group=True,
            )
            raised += _fan_out(
                rules,
                facts,
                f"group:{group.pk}",
                f"group-transition:{t.pk}",
                lambda g=group, e=event: messages.group_payload(e, g),
                now,
                group=group,
                count_at_raise=group.count,
            )
        GroupTransition.objects.filter(pk__in=[t.pk for t in batch]).update(dispatched_at=now)
    return raised, len(batch) == BATCH


def _drain_connections(rules: list[RuleView], now: datetime) -> tuple[int, bool]:
    raised = 0
    with transaction.atomic():
        batch = list(
            ConnectionStateChange.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(dispatched_at__isnull=True)
            .select_related("connection__account")
            .order_by("observed_at", "id")[:BATCH]
        )
        for change in batch:
            event = CONNECTION_EVENTS.get(ConnectionState(change.state))
            if event is None:
                continue  # a state no rule announces: dispatched with nothing to say
            conn = change.connection
            facts = Facts(
                event=event,
                account_id=conn.account_id,
                region=conn.region,
                connection_id=conn.pk,
                about_connection=True,
            )
            raised += _fan_out(
                rules,
                facts,
                f"connection:{conn.pk}",
                f"connection-change:{change.pk}",
                lambda c=conn, e=event, why=change.reason: messages.connection_payload(e, c, why),
                now,
            )
        ConnectionStateChange.objects.filter(pk__in=[c.pk for c in batch]).update(dispatched_at=now)
    return raised, len(batch) == BATCH


def _drain_sync_runs(rules: list[RuleView], now: datetime) -> tuple[int, bool]:
    raised = 0
    with transaction.atomic():
        batch = list(
            SyncRun.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(dispatched_at__isnull=True, status=SyncStatus.FAILED, finished_at__isnull=False)
            .select_related("account")
            .order_by("finished_at", "id")[:BATCH]
        )
        for run in batch:
            if _failing_already(run):
                continue  # one alert per change of state, not one per failed run
            facts = Facts(event=Event.SYNC_FAILED, account_id=run.account_id)
            raised += _fan_out(
                rules,
                facts,
                f"account:{run.account_id}",
                f"sync-run:{run.pk}",
                lambda r=run: messages.sync_payload(r, stalled=r.progress == "abandoned"),
                now,
                sync_run=run,
            )
        SyncRun.objects.filter(pk__in=[r.pk for r in batch]).update(dispatched_at=now)
    return raised, len(batch) == BATCH


def _drain_rates(rules: list[RuleView], now: datetime) -> tuple[int, bool]:
    raised = sum(_rate_crossings(view, now) for view in rules if view.rule.wants(Event.RATE))
    return raised, False


def _rate_crossings(view: RuleView, now: datetime) -> int:
    """One alert per crossing of the rule's rate by a group: from below to at least N failures
    in the last M minutes. Cheap at any size: only groups seen within the window are counted,
    each by a range scan of index att_group (failure_group, -occurred_at). Several drains agree
    through RateWatch: only the one whose conditional UPDATE flips the group above raises, with
    the crossing number in the key; falling below re-arms it."""
    rule = view.rule
    since = now - timedelta(minutes=rule.rate_minutes)
    candidates = FailureGroup.objects.filter(last_seen_at__gte=since)
    if view.accounts:
        candidates = candidates.filter(account_id__in=view.accounts)
    attempts = HttpAttempt.objects.filter(
        failure_group__in=candidates.values("pk"), occurred_at__gte=since, occurred_at__lte=now
    )
    if rule.final_attempts_only:
        attempts = attempts.filter(final_attempt=True)
    counts = attempts.order_by().values("failure_group_id").annotate(n=Count("id"))
    above = {c["failure_group_id"] for c in counts if c["n"] >= rule.rate_failures}
    raised = 0
    with transaction.atomic():
        RateWatch.objects.filter(rule=rule, above=True).exclude(group_id__in=above).update(
            above=False
        )
        if not above:
            return 0
        RateWatch.objects.bulk_create(
            [RateWatch(rule=rule, group_id=pk) for pk in above], ignore_conflicts=True
        )
        groups = FailureGroup.objects.filter(pk__in=above).select_related(
            "account", "connection", "endpoint"
        )
        for group in groups.order_by("pk"):
            facts = Facts(
                event=Event.RATE,
                account_id=group.account_id,
                region=group.connection.region if group.connection else "",
                connection_id=group.connection_id,
                endpoint_id=group.endpoint_id,
                category=group.category,
                about_group=True,
            )
            if not view.matches(facts):
                continue
            watch = RateWatch.objects.filter(rule=rule, group=group, above=False)
            if not watch.update(above=True, crossings=F("crossings") + 1):
                continue  # still above since its last crossing, or another drain took it
            if group.silenced(now):
                continue  # crossed while snoozed or muted: nothing to say
            crossing = RateWatch.objects.get(rule=rule, group=group).crossings
            raised += _fan_out(
                [view],
                facts,
                f"group:{group.pk}",
                f"rate:{crossing}:group:{group.pk}",
                lambda g=group: messages.group_payload(Event.RATE, g, rule.rate_text),
                now,
                group=group,
                count_at_raise=group.count,
            )
    return raised


def _failing_already(run: SyncRun) -> bool:
    """The account's previous finished run failed too: its syncs were already failing."""
    previous = (
        SyncRun.objects.filter(
            account_id=run.account_id, finished_at__isnull=False, started_at__lt=run.started_at
        )
        .order_by("-started_at")
        .values_list("status", flat=True)
        .first()
    )
    return previous == SyncStatus.FAILED


def raise_digests(now: datetime) -> int:
    """Close the quiet periods that are over: a group that kept failing after its alert gets
    one digest (which opens the next quiet period); the rest close with nothing to say."""
    raised = 0
    with transaction.atomic():
        due = (
            Alert.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(digest_done=False, kind__in=[AlertKind.EVENT, AlertKind.DIGEST])
            .select_related("rule", "group__account")
            .order_by("created_at")[:BATCH]
        )
        done = []
        for alert in due:
            if alert.created_at > now - timedelta(seconds=alert.rule.quiet_period_seconds):
                continue
            done.append(alert.pk)
            group = alert.group
            if group is None or group.count <= alert.count_at_raise or not alert.rule.enabled:
                continue
            view = RuleView(alert.rule, frozenset(), frozenset(), frozenset())
            made = _raise(
                view,
                f"digest:{alert.pk}",
                messages.digest_payload(alert.payload, group.count - alert.count_at_raise, group),
                now,
                event=alert.event,
                subject=alert.subject,
                kind=AlertKind.DIGEST,
                account_id=alert.account_id,
                group=group,
                count_at_raise=group.count,
            )
            raised += made is not None
        Alert.objects.filter(pk__in=done).update(digest_done=True)
    return raised
