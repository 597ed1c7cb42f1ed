"""A token bucket in Redis, shared by every worker, per account + region + API.

AWS throttles per account and region with token buckets; if each worker kept its own budget,
N workers would spend N times the quota and drown in ThrottlingException. One Lua script makes
"refill, then take one if available" atomic across workers.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import cache

import redis
from django.conf import settings

# (bucket size, refill per second), from the quotas in the AWS reference. Regions with the
# higher ListExecutions quota are listed; all others get the lower one.
HIGH_QUOTA_REGIONS = frozenset({"us-east-1", "us-west-2", "eu-west-1"})
QUOTAS: dict[str, tuple[float, float]] = {
    "GetExecutionHistory": (400, 20),
    "DescribeExecution": (250, 10),
    "ListExecutions": (100, 2),
    "ListStateMachines": (100, 5),
    "DescribeStateMachine": (200, 20),
    "FilterLogEvents": (5, 5),
    "ListConnections": (20, 5),
    "DescribeConnection": (20, 5),
}
HIGH_QUOTAS: dict[str, tuple[float, float]] = {
    "ListExecutions": (200, 5),
    "DescribeExecution": (300, 15),
}
DEFAULT_QUOTA = (20.0, 5.0)

_TAKE = """
local tokens = tonumber(redis.call('HGET', KEYS[1], 't') or ARGV[1])
local stamp = tonumber(redis.call('HGET', KEYS[1], 's') or ARGV[3])
local now = tonumber(ARGV[3])
tokens = math.min(tonumber(ARGV[1]), tokens + math.max(0, now - stamp) * tonumber(ARGV[2]))
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / tonumber(ARGV[2]) end
redis.call('HSET', KEYS[1], 't', tokens, 's', now)
redis.call('EXPIRE', KEYS[1], 3600)
return tostring(wait)
"""


def quota_for(operation: str, region: str) -> tuple[float, float]:
    if region in HIGH_QUOTA_REGIONS and operation in HIGH_QUOTAS:
        return HIGH_QUOTAS[operation]
    return QUOTAS.get(operation, DEFAULT_QUOTA)


@cache
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)


@dataclass(frozen=True)
class RateLimiter:
    """Blocks until the shared bucket for (account, region, operation) grants one call."""

    scope: str
    region: str
    # A share of the quota: the dashboard must leave room for the account's own workloads.
    share: float = 0.5

    def acquire(self, operation: str) -> float:
        """Take one token, sleeping while the bucket is empty; returns seconds waited."""
        size, rate = quota_for(operation, self.region)
        size, rate = max(1.0, size * self.share), rate * self.share
        key = f"stepscope:rl:{self.scope}:{self.region}:{operation}"
        waited = 0.0
        while True:
            try:
                wait = float(
                    _client(settings.REDIS_URL).eval(_TAKE, 1, key, size, rate, time.time())
                )
            except redis.RedisError:
                # Redis down: fall back to botocore's own adaptive retry rather than stop.
                return waited
            if wait <= 0:
                return waited
            time.sleep(min(wait, 2.0))
            waited += min(wait, 2.0)
