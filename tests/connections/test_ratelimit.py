"""The shared token bucket against the real Redis: burst, refill, Redis's clock, concurrent
takers on threads and in processes, the per-attempt hook, the settings and their check."""

from __future__ import annotations

import multiprocessing
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

import boto3
import pytest
import redis
import requests
from botocore.config import Config
from botocore.exceptions import ClientError
from django.conf import settings
from django.core.checks import run_checks
from django.test import override_settings

from connections.models import AwsAccount
from connections.ratelimit import (
    RateLimiter,
    pace_calls_of,
    pacing,
    parse_quota_settings,
    quota_scope,
)
from sandbox.server import Sandbox


def quota(**values: str) -> Any:
    """Override the quota settings (raw strings, as the environment gives them)."""
    return override_settings(STEPSCOPE={**settings.STEPSCOPE, **values})


def limiter(region: str = "eu-central-1") -> RateLimiter:
    return RateLimiter(scope=uuid.uuid4().hex, region=region)


def assert_within_bucket(stamps: list[float], size: float, rate: float, slack: float) -> None:
    """The token-bucket invariant: from the first grant to any later one, no more than the
    bucket plus its refill over that time was granted."""
    stamps = sorted(stamps)
    for index, stamp in enumerate(stamps):
        allowed = size + rate * (stamp - stamps[0]) + slack
        assert index + 1 <= allowed, (index + 1, allowed, stamp - stamps[0])


def test_a_fresh_bucket_grants_its_burst_then_makes_the_caller_wait() -> None:
    # FilterLogEvents: 5 / 5 per s; at the default half share 2.5 tokens refilling at 2.5/s.
    first = limiter()
    second = RateLimiter(first.scope, first.region)
    waits = [lim.acquire("FilterLogEvents") for lim in (first, second, first, second)]
    assert waits[:2] == [0.0, 0.0]
    assert 0.1 < sum(waits) < 1.5, waits
    assert limiter().acquire("FilterLogEvents") == 0.0, "another account has its own bucket"


def test_the_bucket_refills_at_the_share_of_the_rate_and_never_beyond_its_size() -> None:
    with quota(AWS_QUOTA_SHARE="1", AWS_QUOTA_TIME_SCALE="4"):
        lim = limiter()
        assert lim.bucket("FilterLogEvents") == (5.0, 20.0)
        for _ in range(5):
            assert lim.acquire("FilterLogEvents") == 0.0
        started = time.monotonic()
        lim.acquire("FilterLogEvents")  # one token at 20/s: ~0.05 s
        assert 0.02 < time.monotonic() - started < 0.5
        time.sleep(1.0)  # 20 tokens' worth of refill; the bucket holds 5
        granted = 0
        while lim.acquire("FilterLogEvents") == 0.0:
            granted += 1
        assert granted == 5


def test_the_per_api_share_overrides_the_default() -> None:
    with quota(AWS_QUOTA_SHARE="0.5", AWS_QUOTA_SHARES="GetExecutionHistory=0.25"):
        lim = limiter("us-east-1")
        assert lim.bucket("GetExecutionHistory") == (100.0, 5.0)
        assert lim.bucket("DescribeExecution") == (150.0, 7.5)
        assert limiter("eu-central-1").bucket("DescribeExecution") == (125.0, 5.0)


def test_the_clock_is_redis_not_the_callers() -> None:
    """Two machines whose clocks disagree by an hour share one bucket truly: neither gets
    refill from the other's clock (with the caller's clock, the one ahead would see an hour of
    refill and a full bucket)."""
    with quota(AWS_QUOTA_SHARE="1"):
        lim = limiter()
        for _ in range(5):
            lim.acquire("FilterLogEvents")
        with mock.patch("time.time", return_value=time.time() + 3600):
            started = time.monotonic()
            lim.acquire("FilterLogEvents")
            assert time.monotonic() - started > 0.1
        client = redis.Redis.from_url(settings.REDIS_URL)
        stamp = float(client.hget(lim.key("FilterLogEvents"), "s") or 0)
        seconds, micros = client.time()
        assert abs(seconds + micros / 1e6 - stamp) < 5


def test_an_idle_bucket_expires_once_it_would_be_full_again() -> None:
    lim = limiter()
    lim.acquire("FilterLogEvents")
    ttl = redis.Redis.from_url(settings.REDIS_URL).ttl(lim.key("FilterLogEvents"))
    assert 0 < ttl <= 2  # 2.5 tokens at 2.5/s: full after 1 s


def test_threads_taking_at_once_get_no_more_than_the_bucket_allows() -> None:
    with quota(AWS_QUOTA_SHARES="GetExecutionHistory=0.025", AWS_QUOTA_TIME_SCALE="20"):
        lim = limiter()
        size, rate = lim.bucket("GetExecutionHistory")
        assert (size, rate) == (10.0, 10.0)
        stamps: list[float] = []
        lock = threading.Lock()

        def take() -> None:
            for _ in range(6):
                lim.acquire("GetExecutionHistory")
                with lock:
                    stamps.append(time.monotonic())

        threads = [threading.Thread(target=take) for _ in range(6)]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert len(stamps) == 36
        assert time.monotonic() - started >= (36 - size) / rate * 0.9
        assert_within_bucket(stamps, size, rate, slack=1)


def _take_in_process(scope: str, count: int, out: Any) -> None:
    from django.db import connections

    connections.close_all()  # the parent's connections are not ours to use
    lim = RateLimiter(scope, "eu-central-1")
    for _ in range(count):
        lim.acquire("FilterLogEvents")
        out.put(time.time())


def test_processes_taking_at_once_share_one_bucket() -> None:
    scope = uuid.uuid4().hex
    context = multiprocessing.get_context("fork")
    out = context.Queue()
    with quota(AWS_QUOTA_SHARE="1", AWS_QUOTA_TIME_SCALE="4"):  # 5 tokens, 20/s
        processes = [
            context.Process(target=_take_in_process, args=(scope, 8, out)) for _ in range(4)
        ]
        for process in processes:
            process.start()
        stamps = [out.get(timeout=30) for _ in range(32)]
        for process in processes:
            process.join(timeout=10)
            assert process.exitcode == 0
    assert max(stamps) - min(stamps) >= (32 - 5) / 20 * 0.9
    assert_within_bucket(stamps, 5, 20, slack=1)


@dataclass(frozen=True)
class CountingLimiter(RateLimiter):
    taken: list[str] = field(default_factory=list, compare=False)

    def acquire(self, operation: str) -> float:
        self.taken.append(operation)
        return 0.0


@pytest.fixture
def throttled_listing(sync_sandbox: Sandbox) -> Iterator[str]:
    url = f"{sync_sandbox.endpoint_url}/_sandbox/faults"
    requests.post(url, json={"ListStateMachines": {"throttle": 1.0}}, timeout=5)
    try:
        yield url
    finally:
        requests.delete(url, timeout=5)


def test_every_http_attempt_takes_a_token_botocores_retries_included(
    sync_sandbox: Sandbox, throttled_listing: str
) -> None:
    make: Any = boto3.client
    sfn = make(
        "stepfunctions",
        endpoint_url=sync_sandbox.endpoint_url,
        region_name=sync_sandbox.region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"mode": "standard", "total_max_attempts": 3}),
    )
    pace_calls_of(sfn)
    counting = CountingLimiter("scope", "us-east-1")
    with pacing(counting, "ListStateMachines"), pytest.raises(ClientError):
        sfn.list_state_machines()
    assert counting.taken == ["ListStateMachines"] * 3
    with pacing(None, "ListStateMachines"), pytest.raises(ClientError):
        sfn.list_state_machines()  # unpaced: nothing taken
    assert len(counting.taken) == 3


def test_accounts_share_buckets_by_aws_account_id_and_endpoint() -> None:
    def scope(account_id: str, endpoint: str = "") -> str:
        return quota_scope(AwsAccount(account_id=account_id, endpoint_url=endpoint))

    assert scope("123456789012") == scope("123456789012") == "123456789012"
    assert scope("123456789012") != scope("210987654321")
    sandbox = scope("123456789012", "http://127.0.0.1:4566")
    assert sandbox == scope("123456789012", "http://127.0.0.1:4566")
    assert sandbox not in {scope("123456789012"), scope("123456789012", "http://127.0.0.1:4567")}


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"AWS_QUOTA_SHARE": "half"}, "AWS_QUOTA_SHARE 'half' is not a number."),
        ({"AWS_QUOTA_SHARE": "0"}, "AWS_QUOTA_SHARE '0' must be above 0 and at most 1."),
        ({"AWS_QUOTA_SHARE": "1.5"}, "AWS_QUOTA_SHARE '1.5' must be above 0 and at most 1."),
        ({"AWS_QUOTA_SHARE": "nan"}, "AWS_QUOTA_SHARE 'nan' must be above 0 and at most 1."),
        (
            {"AWS_QUOTA_SHARES": "GetExecutionHistory"},
            "AWS_QUOTA_SHARES entry 'GetExecutionHistory' is not API=share.",
        ),
        (
            {"AWS_QUOTA_SHARES": "FilterLogEvents=-1"},
            "AWS_QUOTA_SHARES FilterLogEvents '-1' must be above 0 and at most 1.",
        ),
        ({"AWS_QUOTA_TIME_SCALE": "0"}, "AWS_QUOTA_TIME_SCALE '0' must be above 0."),
    ],
)
def test_a_bad_value_is_error_e010_and_its_default_applies(
    values: dict[str, str], message: str
) -> None:
    with quota(**values):
        errors = [m for m in run_checks() if m.id == "stepscope.E010"]
        assert [e.msg for e in errors] == [message]
        lim = limiter("us-east-1")
        assert lim.bucket("GetExecutionHistory") == (200.0, 10.0)


@pytest.mark.parametrize(
    ("values", "start"),
    [
        ({"AWS_QUOTA_SHARE": "0.9"}, "AWS_QUOTA_SHARE is 0.9: the account's own callers"),
        ({"AWS_QUOTA_SHARES": "ListExecution=0.2"}, "AWS_QUOTA_SHARES names 'ListExecution'"),
        ({"AWS_QUOTA_TIME_SCALE": "10"}, "AWS_QUOTA_TIME_SCALE is 10: Stepscope paces as if"),
    ],
)
def test_a_doubtful_value_is_warning_w010(values: dict[str, str], start: str) -> None:
    with quota(**values):
        messages = [m for m in run_checks() if m.id in ("stepscope.E010", "stepscope.W010")]
    assert [m.id for m in messages] == ["stepscope.W010"]
    assert messages[0].msg.startswith(start)


def test_the_defaults_raise_nothing_and_blank_means_default() -> None:
    assert not [m for m in run_checks() if m.id in ("stepscope.E010", "stepscope.W010")]
    parsed, errors, warnings = parse_quota_settings("", " , ", "")
    assert (parsed.share, parsed.shares, parsed.time_scale) == (0.5, (), 1.0)
    assert errors == warnings == ()


def test_a_bad_value_is_logged_once_not_on_every_call(caplog: pytest.LogCaptureFixture) -> None:
    with quota(AWS_QUOTA_SHARE="0.5 please"), caplog.at_level("WARNING", "connections.ratelimit"):
        lim = limiter()
        for _ in range(3):
            assert lim.bucket("GetExecutionHistory") == (200.0, 10.0)
    assert [r.getMessage() for r in caplog.records] == [
        "quota settings in error, their defaults apply: AWS_QUOTA_SHARE '0.5 please' is not a "
        "number"
    ]
