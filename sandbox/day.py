"""`sandbox day`: the demo's day — executions spread over the last 24 hours and a few days before.

The plan, hour by hour before now:

- 25 to 96 hours ago: one everyday execution every 6 hours (the days before);
- QUIET_HOURS ago (the night): a trickle of everyday executions, nothing fails;
- every other hour of the last 24: `per_hour` everyday executions (mostly successes, the odd
  404, missing header or flaky call that retries);
- INCIDENT_HOURS_AGO (its first half-hour, 6 to 6½ hours ago): the incident — the CRM's rotated password de-authorizes its connection
  and every CRM call after it fails (the cascade), the webhook's partner answers 5xx, /slow
  slows to over a second, OAuth refunds are refused; `per_hour` × INCIDENT_FACTOR executions;
- the hours after it: recovery, everyday traffic again (the CRM connection stays
  de-authorized until someone re-authorizes it, as on AWS).

Every execution runs now, for real, on the sandbox; sandbox.clock shifts what AWS reports by its
planned offset, so Stepscope's normal sync reads the day as it would from AWS. Names are fixed
by the plan (`day-<case>-<index>`): a second run on a fresh sandbox names the same executions,
so Stepscope stores them once.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass
from typing import Any

import requests

from sandbox import account, scenarios
from sandbox.scenarios import Case, CaseContext

INCIDENT_HOURS_AGO = 6
INCIDENT_FACTOR = 5
QUIET_HOURS = frozenset(range(14, 20))  # hours ago: the night
DAYS_BEFORE_HOURS = range(25, 97, 6)
DEFAULT_PER_HOUR = 8

_SLOW_CASES = (
    Case("hook-slow", "webhook-dispatcher", 0, scenarios._hook("/slow?seconds=0.05")),
    Case("hook-slowed", "webhook-dispatcher", 0, scenarios._hook("/slow?seconds=1.2")),
)
_CASES = {case.name: case for case in (*scenarios.CASES, *_SLOW_CASES)}

EVERYDAY: dict[str, int] = {
    "hook-ok": 8,
    "hook-echo": 3,
    "hook-order": 6,
    "hook-slow": 3,
    "orders-ok": 6,
    "inventory-ok": 4,
    "payment-capture": 4,
    "notify-ok": 4,
    "hook-flaky": 1,
    "hook-404": 1,
    "hook-missing-header": 1,
    "orders-warehouse-retried": 1,
}
QUIET: dict[str, int] = {"hook-ok": 3, "orders-ok": 2, "notify-ok": 1, "hook-slow": 1}
INCIDENT: dict[str, int] = {
    "crm-rotated": 6,
    "hook-500": 4,
    "hook-502": 2,
    "hook-503": 4,
    "hook-504": 1,
    "notify-503": 3,
    "hook-slowed": 5,
    "payment-refund-revoked": 2,
    "orders-warehouse-down": 2,
    "hook-ok": 2,
}


@dataclass(frozen=True)
class Planned:
    name: str
    case: Case
    seconds_ago: int


def plan(per_hour: int = DEFAULT_PER_HOUR, seed: int = 7) -> list[Planned]:
    """The day, oldest first: the same arguments always give the same executions and names."""
    rng = random.Random(seed)  # noqa: S311 — a reproducible demo, not a secret
    drawn: list[tuple[str, int]] = []
    for hours_ago in DAYS_BEFORE_HOURS:
        drawn += [(name, hours_ago) for name in _draw(rng, EVERYDAY, 1)]
    for hours_ago in range(24):
        if hours_ago == INCIDENT_HOURS_AGO:
            drawn += [(name, hours_ago) for name in _shares(INCIDENT, per_hour * INCIDENT_FACTOR)]
            continue
        if hours_ago in QUIET_HOURS:
            mix, count = QUIET, max(1, per_hour // 4)
        else:
            mix, count = EVERYDAY, per_hour
        drawn += [(name, hours_ago) for name in _draw(rng, mix, count)]
    planned = [(hours_ago * 3600 + _second(rng, hours_ago), name) for name, hours_ago in drawn]
    planned.sort(key=lambda item: -item[0])
    return [
        Planned(f"day-{name}-{i:04d}", _CASES[name], seconds_ago)
        for i, (seconds_ago, name) in enumerate(planned)
    ]


def _second(rng: random.Random, hours_ago: int) -> int:
    """A random second within its hour; the incident's first half-hour, the current hour's
    first half (a minute or more ago)."""
    return rng.randrange(60, 1800 if hours_ago in (0, INCIDENT_HOURS_AGO) else 3600)


def _shares(mix: dict[str, int], count: int) -> list[str]:
    """Each case of `mix` its share of `count`, at least one: every part of the incident shows."""
    total = sum(mix.values())
    return [
        name for name, weight in mix.items() for _ in range(max(1, round(weight * count / total)))
    ]


def _draw(rng: random.Random, mix: dict[str, int], count: int) -> list[str]:
    return rng.choices(list(mix), weights=list(mix.values()), k=count)


def run(
    endpoint_url: str,
    region: str = "us-east-1",
    per_hour: int = DEFAULT_PER_HOUR,
    concurrency: int = scenarios.DEFAULT_CONCURRENCY,
) -> scenarios.Summary:
    """Set up the account, register the plan's offsets, start its executions oldest first and
    wait for them. On a sandbox that already ran this plan, starts nothing."""
    began = time.monotonic()
    info = scenarios.sandbox_info(endpoint_url)
    day = plan(per_hour)
    if _register(endpoint_url, day) == len(day):
        # Ran here before: setting the account up again would re-authorize the CRM connection.
        return scenarios.Summary(executions=0, by_status={}, by_error={})
    partner_url = str(info["partner_url"])
    clients = scenarios._clients(endpoint_url, region)
    acct = account.ensure_account(clients, partner_url, region)
    # The connections existed before the day's first execution (an hour before it).
    _register(
        endpoint_url, [], {arn: day[0].seconds_ago + 3600 for arn in acct.connections.values()}
    )
    timeout = float(info.get("http_timeout_seconds", 60.0))
    started: list[scenarios.Started] = []
    running: set[str] = set()
    for item in day:
        scenarios._wait_for_room(endpoint_url, running, concurrency)
        started.append(_start(clients, acct, item, partner_url, timeout))
        running.add(started[-1].arn)
    scenarios._wait_until_done(endpoint_url, running)
    summary = scenarios._summarise(clients, acct, started)
    summary.elapsed_seconds = time.monotonic() - began
    return summary


def _register(
    endpoint_url: str, day: list[Planned], connections: dict[str, int] | None = None
) -> int:
    """POST the plan's shifts (and its connections'); how many of its names this sandbox
    already knew."""
    response = requests.post(
        f"{endpoint_url.rstrip('/')}/_sandbox/clock",
        json={
            "shifts": {item.name: item.seconds_ago for item in day},
            "connections": connections or {},
        },
        timeout=30,
    )
    response.raise_for_status()
    return int(response.json()["known"])


def _start(
    clients: Any, acct: account.Account, item: Planned, partner_url: str, timeout: float
) -> scenarios.Started:
    ctx = CaseContext(partner_url, item.name, timeout)
    arn = clients.stepfunctions.start_execution(
        stateMachineArn=acct.state_machines[item.case.state_machine],
        name=item.name,
        input=json.dumps(item.case.make_input(ctx)),
    )["executionArn"]
    return scenarios.Started(arn, item.case.name, item.case.state_machine in acct.express)
