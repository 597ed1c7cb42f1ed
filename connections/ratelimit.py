"""One token bucket in Redis per AWS account + region + API, shared by every worker.

AWS throttles per account and region with a token bucket per API; if each worker kept its own
budget, N workers (on any number of machines) would spend N times the quota and drown in
ThrottlingException. One Lua script makes "refill, then take one if available" atomic, and it
reads the clock from Redis (`TIME`), so the workers' own clocks never enter the sum.

Stepscope takes a share of each quota (`AWS_QUOTA_SHARE`, default 0.5, per API in
`AWS_QUOTA_SHARES`): the account's own workloads call the same APIs and must not be throttled
because a dashboard is reading. The share applies to the bucket (the burst) and to its refill.
`AWS_QUOTA_TIME_SCALE` speeds the refill up, for the sandbox's time-scaled quota mode only.
`stepscope.E010` / `W010` (dashboard/checks.py) report bad values; at run time a bad value falls
back to its default so a worker never stops on it.

Every HTTP attempt the AWS boundary sends takes a token, botocore's own retries included:
`AwsApi._call` names the limiter and operation in `pacing(...)` (a contextvar, like the throttle
counting of connections/throttles.py) and `pace`, hooked on each client's `before-send`, waits.
"""

from __future__ import annotations

import contextvars
import hashlib
import logging
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

import redis
from django.conf import settings

if TYPE_CHECKING:
    from connections.models import AwsAccount

log = logging.getLogger(__name__)

# (bucket size, refill per second). Step Functions' and FilterLogEvents' figures are those of
# ../shared/docs/aws-http-task-reference.md §7 (the sandbox's quota mode enforces the same);
# DescribeStateMachine and EventBridge's have no published figure and are our guesses.
HIGH_QUOTA_REGIONS = frozenset({"us-east-1", "us-west-2", "eu-west-1"})
QUOTAS: dict[str, tuple[float, float]] = {
    "GetExecutionHistory": (400, 20),
    "DescribeExecution": (250, 10),
    "ListExecutions": (100, 2),
    "ListStateMachines": (100, 5),
    "RedriveExecution": (800, 150),
    "FilterLogEvents": (5, 5),
    "DescribeStateMachine": (200, 20),
    "ListConnections": (20, 5),
    "DescribeConnection": (20, 5),
    # Two versions of AWS's quota page disagree (1 TPS hard, or 50 / 10): the lower one.
    "TestState": (1, 1),
}
HIGH_QUOTAS: dict[str, tuple[float, float]] = {
    "ListExecutions": (200, 5),
    "DescribeExecution": (300, 15),
    "RedriveExecution": (1300, 300),
}
DEFAULT_QUOTA = (20.0, 5.0)

DEFAULT_SHARE = 0.5
# Above this the account's own callers are left little room: allowed, with a warning.
GREEDY_SHARE = 0.8
# A sleep is cut into slices this long at most, so a refill that others left is seen soon.
MAX_SLEEP_SECONDS = 2.0

# KEYS[1] the bucket; ARGV size, refill per second. Returns the seconds to wait ("0": taken).
_TAKE = """
local size = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 't', 's')
local tokens = tonumber(state[1]) or size
local stamp = tonumber(state[2]) or now
tokens = math.min(size, tokens + math.max(0, now - stamp) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
redis.call('HSET', KEYS[1], 't', string.format('%.6f', tokens), 's', string.format('%.6f', now))
redis.call('EXPIRE', KEYS[1], math.ceil(size / rate) + 1)
return string.format('%.6f', wait)
"""


def quota_for(operation: str, region: str) -> tuple[float, float]:
    """AWS's (bucket size, refill per second) for `operation` in `region`."""
    if region in HIGH_QUOTA_REGIONS and operation in HIGH_QUOTAS:
        return HIGH_QUOTAS[operation]
    return QUOTAS.get(operation, DEFAULT_QUOTA)


# ---------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class QuotaSettings:
    share: float = DEFAULT_SHARE
    shares: tuple[tuple[str, float], ...] = ()
    time_scale: float = 1.0

    def share_for(self, operation: str) -> float:
        return dict(self.shares).get(operation, self.share)


def _number(name: str, raw: str, problems: list[str], *, upper: float | None) -> float | None:
    try:
        value = float(raw)
    except ValueError:
        problems.append(f"{name} {raw!r} is not a number")
        return None
    if not math.isfinite(value) or value <= 0 or (upper is not None and value > upper):
        bound = f"above 0 and at most {upper:g}" if upper is not None else "above 0"
        problems.append(f"{name} {raw!r} must be {bound}")
        return None
    return value


@cache
def parse_quota_settings(
    share: str, shares: str, time_scale: str
) -> tuple[QuotaSettings, tuple[str, ...], tuple[str, ...]]:
    """(the settings, errors, warnings) from the raw environment strings; what is in error
    keeps its default."""
    errors: list[str] = []
    warnings: list[str] = []
    parsed_share = _number("AWS_QUOTA_SHARE", share.strip() or "0.5", errors, upper=1)
    overrides: list[tuple[str, float]] = []
    for item in (entry.strip() for entry in shares.split(",")):
        if not item:
            continue
        api, sep, raw = item.partition("=")
        api = api.strip()
        if not (sep and api and raw.strip()):
            errors.append(f"AWS_QUOTA_SHARES entry {item!r} is not API=share")
            continue
        value = _number(f"AWS_QUOTA_SHARES {api}", raw.strip(), errors, upper=1)
        if value is None:
            continue
        if api not in QUOTAS:
            warnings.append(
                f"AWS_QUOTA_SHARES names {api!r}, which Stepscope does not call with a quota "
                f"of its own (known: {', '.join(sorted(QUOTAS))})"
            )
        overrides.append((api, value))
    scale = _number("AWS_QUOTA_TIME_SCALE", time_scale.strip() or "1", errors, upper=None)
    result = QuotaSettings(
        share=DEFAULT_SHARE if parsed_share is None else parsed_share,
        shares=tuple(overrides),
        time_scale=1.0 if scale is None else scale,
    )
    named = [("AWS_QUOTA_SHARE", result.share)]
    named += [(f"AWS_QUOTA_SHARES {api}", value) for api, value in overrides]
    for name, value in named:
        if value > GREEDY_SHARE:
            warnings.append(
                f"{name} is {value:g}: the account's own callers of that API are left little "
                "of its quota"
            )
    if result.time_scale != 1:
        warnings.append(
            f"AWS_QUOTA_TIME_SCALE is {result.time_scale:g}: Stepscope paces as if AWS refilled "
            "its quotas that much faster, which only the sandbox's quota mode does"
        )
    return result, tuple(errors), tuple(warnings)


_warned: set[tuple[str, ...]] = set()


def quota_settings() -> QuotaSettings:
    conf = settings.STEPSCOPE
    parsed, errors, _ = parse_quota_settings(
        str(conf.get("AWS_QUOTA_SHARE", "0.5")),
        str(conf.get("AWS_QUOTA_SHARES", "")),
        str(conf.get("AWS_QUOTA_TIME_SCALE", "1")),
    )
    if errors and errors not in _warned:  # once per process, not once per AWS call
        _warned.add(errors)
        log.warning("quota settings in error, their defaults apply: %s", "; ".join(errors))
    return parsed


def quota_problems() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(errors, warnings) about the configured quota settings, for the system check."""
    conf = settings.STEPSCOPE
    _, errors, warnings = parse_quota_settings(
        str(conf.get("AWS_QUOTA_SHARE", "0.5")),
        str(conf.get("AWS_QUOTA_SHARES", "")),
        str(conf.get("AWS_QUOTA_TIME_SCALE", "1")),
    )
    return errors, warnings


# ----------------------------------------------------------------------------- buckets


def quota_scope(account: AwsAccount) -> str:
    """What AWS meters by: the account id. An account read through another endpoint (the
    sandbox, a local emulator) is another AWS, so its buckets are kept apart."""
    if not account.endpoint_url:
        return str(account.account_id)
    endpoint = hashlib.sha256(account.endpoint_url.encode()).hexdigest()[:12]
    return f"{account.account_id}@{endpoint}"


@cache
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)


@dataclass(frozen=True)
class RateLimiter:
    """Blocks until the shared bucket for (scope, region, operation) grants one call; `scope`
    is `quota_scope(account)`."""

    scope: str
    region: str
    # A caller with a share of its own (a redrive batch takes REDRIVE_QUOTA_PERCENT) sets it;
    # otherwise the configured share of the operation applies.
    share: float | None = None

    def bucket(self, operation: str) -> tuple[float, float]:
        """(size, refill per second) of our share of the quota."""
        size, rate = quota_for(operation, self.region)
        conf = quota_settings()
        share = conf.share_for(operation) if self.share is None else self.share
        return max(1.0, size * share), rate * share * conf.time_scale

    def key(self, operation: str) -> str:
        return f"stepscope:quota:{self.scope}:{self.region}:{operation}"

    def acquire(self, operation: str) -> float:
        """Take one token, sleeping while the bucket is empty; returns seconds waited."""
        size, rate = self.bucket(operation)
        key = self.key(operation)
        waited = 0.0
        while True:
            try:
                wait = float(_client(settings.REDIS_URL).eval(_TAKE, 1, key, size, rate))
            except redis.RedisError:
                # Redis down: fall back to botocore's own adaptive retry rather than stop.
                return waited
            if wait <= 0:
                return waited
            nap = min(wait, MAX_SLEEP_SECONDS)
            time.sleep(nap)
            waited += nap


# ------------------------------------------------------- one token per HTTP attempt

_pacing: contextvars.ContextVar[tuple[RateLimiter, str] | None] = contextvars.ContextVar(
    "stepscope_aws_pacing", default=None
)


@contextmanager
def pacing(limiter: RateLimiter | None, operation: str) -> Iterator[None]:
    """Every HTTP attempt of the call made in this block waits for a token of `operation`
    (None: unpaced, as the benchmarks' raw fetch)."""
    token = _pacing.set(None if limiter is None else (limiter, operation))
    try:
        yield
    finally:
        _pacing.reset(token)


def pace(**_: Any) -> None:
    """botocore `before-send` handler (every attempt, retries included). Returns None: a value
    would be taken as the response."""
    current = _pacing.get()
    if current is not None:
        limiter, operation = current
        limiter.acquire(operation)


def pace_calls_of(client: Any) -> Any:
    """Make this botocore client wait for tokens; returns the client."""
    client.meta.events.register("before-send", pace)
    return client
