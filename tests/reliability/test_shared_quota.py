"""Many workers, one quota: three real Celery workers syncing two registrations of the
sandbox's AWS account (one per region, as the account form allows) stay, together, within the
configured share of each API's quota in each region.

The sandbox runs in quota mode (AWS's buckets, refill time-scaled) and counts, per account +
region + API, what it answered and what it throttled; the workers (processes of their own, as
on separate machines, sharing only our Redis and the test database) pace with
AWS_QUOTA_SHARE at the same time scale. A sync fans out one task per state machine, so the
three workers read one region at once; a small share makes the bound tight: workers pacing
on buckets of their own, or at another share than the configured one, are answered more than
the share lets through, and this fails.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from connections.models import AwsAccount, SyncRun
from connections.ratelimit import quota_for
from sandbox import ACCOUNT_ID, scenarios
from sandbox.server import Sandbox
from tests.aws_sandbox import register
from tests.reliability.conftest import RedisServer, Worker, finished_run, trigger_sync, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.worker]

SHARE = 0.02
TIME_SCALE = 10.0
WORKERS = 3
# Executions seeded in a second region (the reliability sandbox has its own in us-east-1).
SECOND_REGION = "us-west-2"
SECOND_REGION_EXECUTIONS = 12
# Timing between the sandbox's clock and Redis's (one machine, threads of busy processes).
SLACK_TOKENS = 2.0


@pytest.fixture
def quota_mode(reliability_sandbox: Sandbox) -> Iterator[str]:
    scenarios.run(
        reliability_sandbox.endpoint_url,
        region=SECOND_REGION,
        executions=SECOND_REGION_EXECUTIONS,
        seed=31,
    )
    url = f"{reliability_sandbox.endpoint_url}/_sandbox/quota"
    requests.post(
        url, json={"enabled": True, "time_scale": TIME_SCALE}, timeout=5
    ).raise_for_status()
    try:
        yield url
    finally:
        requests.post(url, json={"enabled": False, "time_scale": 1}, timeout=5)


def _allowed(row: dict[str, Any]) -> float:
    """The most our share lets through in the row's window: the share of the bucket (at least
    one call) plus the share of the scaled refill over the time it was called."""
    size, rate = quota_for(row["operation"], row["region"])
    window = float(row["window_s"])
    return max(1.0, size * SHARE) + rate * SHARE * TIME_SCALE * window + SLACK_TOKENS


def test_three_workers_together_stay_within_the_share_of_each_quota(
    reliability_sandbox: Sandbox,
    quota_mode: str,
    redis_server: RedisServer,
    workers: Callable[..., Worker],
) -> None:
    env = {"AWS_QUOTA_SHARE": str(SHARE), "AWS_QUOTA_TIME_SCALE": str(TIME_SCALE)}
    started = [workers(redis_server.url, env) for _ in range(WORKERS)]
    west = register(reliability_sandbox, name="quota-west")  # then moved to its region
    AwsAccount.objects.filter(pk=west.pk).update(regions=[SECOND_REGION])
    accounts = [AwsAccount.objects.get(pk=west.pk), register(reliability_sandbox, "quota-east")]
    requests.delete(quota_mode, timeout=5)  # count only the workers' calls from here
    for account in accounts:
        trigger_sync(redis_server.url, started[0].queue, account.pk)

    class Alive:
        def check(self) -> None:
            for worker in started:
                worker.check()

        def tail(self) -> str:
            return started[0].tail()

    def finished(account: AwsAccount) -> Callable[[], SyncRun | None]:
        return lambda: finished_run(account.pk)

    runs = [wait_for(finished(a), f"the sync of {a.name}", alive=Alive()) for a in accounts]
    assert [r.status for r in runs] == ["ok"] * len(accounts), [r.errors for r in runs]

    rows = requests.get(quota_mode, timeout=5).json()["counts"]
    assert {r["account"] for r in rows} == {ACCOUNT_ID}
    assert {r["region"] for r in rows} == {reliability_sandbox.region, SECOND_REGION}
    metered = [r for r in rows if r["bucket"] is not None]
    history = next(
        r
        for r in metered
        if r["operation"] == "GetExecutionHistory" and r["region"] == reliability_sandbox.region
    )
    # Otherwise everything fitted in the first burst and nothing was paced: a vacuous pass.
    assert history["answered"] > 2 * max(1.0, 400 * SHARE), history
    for row in metered:
        assert row["answered"] <= _allowed(row), (row, _allowed(row))
    assert sum(r["throttled"] for r in rows) == 0, rows
    assert "Traceback" not in started[0].log(), started[0].tail()
