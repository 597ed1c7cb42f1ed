"""Quota mode: AWS's API token buckets, per account + region + API, on the sandbox endpoint.

AWS meters each control-plane API with a token bucket per account and region: a call takes a
token, tokens come back at the refill rate up to the bucket size, and a call that finds the
bucket empty is answered `ThrottlingException` "Rate exceeded" (HTTP 400, the JSON error shape
of the service's protocol). The buckets below are the ones ../shared/docs/aws-http-task-reference.md
§7 lists; APIs it gives no figure for (EventBridge's, DescribeStateMachine, STS…) are answered
without a bucket and only counted. A time scale multiplies every refill rate, so a benchmark can
run a storm of an hour in minutes; bucket sizes stay as AWS's.

Configured over HTTP on the sandbox endpoint: `GET /_sandbox/quota` shows the mode and, per
account + region + API, how many calls were answered and how many throttled; `POST` sets
`{"enabled": bool, "time_scale": number}` (and resets); `DELETE` resets the counters and fills
every bucket. Counting goes on with the mode off, so a run can also just measure its calls.
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sandbox import ACCOUNT_ID, DEFAULT_REGION

# Regions with the higher Step Functions quotas (reference §7, first column).
HIGH_QUOTA_REGIONS = frozenset({"us-east-1", "us-west-2", "eu-west-1"})
# API: ((bucket, refill per second) in HIGH_QUOTA_REGIONS, (bucket, refill) elsewhere).
QUOTAS: dict[str, tuple[tuple[float, float], tuple[float, float]]] = {
    "GetExecutionHistory": ((400, 20), (400, 20)),
    "DescribeExecution": ((300, 15), (250, 10)),
    "ListExecutions": ((200, 5), (100, 2)),
    "ListStateMachines": ((100, 5), (100, 5)),
    "RedriveExecution": ((1300, 300), (800, 150)),
    # "5 TPS per account/region (hard)": no burst figure is published, so the bucket holds one
    # second of calls.
    "FilterLogEvents": ((5, 5), (5, 5)),
}
THROTTLE_BODY = {"__type": "ThrottlingException", "message": "Rate exceeded"}
# The JSON protocol version each service speaks (botocore's models: Step Functions awsJson1_0,
# CloudWatch Logs and EventBridge awsJson1_1); the error answer carries the same content type.
TARGET_PREFIX_JSON_VERSION = {"AWSStepFunctions": "1.0", "Logs_20140328": "1.1", "AWSEvents": "1.1"}
_CREDENTIAL = re.compile(r"Credential=([^/\s,]+)/[^/\s,]+/([^/\s,]+)/")


def bucket_for(operation: str, region: str) -> tuple[float, float] | None:
    """(bucket size, refill per second) AWS meters `operation` with in `region`; None: none known."""
    quota = QUOTAS.get(operation)
    if quota is None:
        return None
    return quota[0] if region in HIGH_QUOTA_REGIONS else quota[1]


def caller_of(environ: dict[str, Any], default_region: str = DEFAULT_REGION) -> tuple[str, str]:
    """(account id, region) of a signed request: the region from SigV4's credential scope, the
    account from the access key as moto maps it (the sandbox account unless moto knows it)."""
    match = _CREDENTIAL.search(str(environ.get("HTTP_AUTHORIZATION", "")))
    if match is None:
        return ACCOUNT_ID, default_region
    access_key, region = match.group(1), match.group(2)
    try:
        from moto.iam.models import get_account_id_from

        account = str(get_account_id_from(access_key))
    except Exception:  # moto's internals moved: the bucket is still per region and API
        account = ACCOUNT_ID
    return account, region


@dataclass
class _Bucket:
    tokens: float
    stamp: float


@dataclass
class _Count:
    answered: int = 0
    throttled: int = 0
    first_at: float = 0.0
    last_at: float = 0.0


class QuotaBuckets:
    """The buckets and the counters; thread-safe (moto's server answers on many threads)."""

    def __init__(
        self,
        enabled: bool = False,
        time_scale: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._clock = clock
        self._lock = threading.Lock()
        self._enabled = False
        self._time_scale = 1.0
        self._buckets: dict[tuple[str, str, str], _Bucket] = {}
        self._counts: dict[tuple[str, str, str], _Count] = {}
        self.configure({"enabled": enabled, "time_scale": time_scale})

    def configure(self, spec: dict[str, Any]) -> None:
        """Set the mode and scale from `{"enabled": bool, "time_scale": number > 0}` (either
        may be left out) and reset. Raises ValueError on a bad spec, changing nothing."""
        if not isinstance(spec, dict):
            raise ValueError("expected a JSON object")
        unknown = set(spec) - {"enabled", "time_scale"}
        if unknown:
            raise ValueError(f"unknown quota settings: {sorted(unknown)}")
        enabled = spec.get("enabled", self._enabled)
        if not isinstance(enabled, bool):
            raise ValueError("enabled must be true or false")
        scale = spec.get("time_scale", self._time_scale)
        if isinstance(scale, bool) or not isinstance(scale, int | float):
            raise ValueError("time_scale must be a number")
        if not (math.isfinite(scale) and 0 < scale <= 10_000):
            raise ValueError("time_scale must be above 0 and at most 10000")
        with self._lock:
            self._enabled = enabled
            self._time_scale = float(scale)
            self._reset()

    def reset(self) -> None:
        """Zero the counters and fill every bucket."""
        with self._lock:
            self._reset()

    def _reset(self) -> None:
        self._buckets.clear()
        self._counts.clear()

    def take(self, account: str, region: str, operation: str) -> bool:
        """One call of `operation`: True if it is answered, False if throttled."""
        key = (account, region, operation)
        quota = bucket_for(operation, region)
        with self._lock:
            now = self._clock()
            allowed = True
            if self._enabled and quota is not None:
                allowed = self._take_token(key, quota, now)
            count = self._counts.get(key)
            if count is None:
                count = self._counts[key] = _Count(first_at=now)
            if allowed:
                count.answered += 1
                count.last_at = now
            else:
                count.throttled += 1
            return allowed

    def _take_token(
        self, key: tuple[str, str, str], quota: tuple[float, float], now: float
    ) -> bool:
        size, rate = quota
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(tokens=size, stamp=now)
        bucket.tokens = min(size, bucket.tokens + (now - bucket.stamp) * rate * self._time_scale)
        bucket.stamp = now
        if bucket.tokens < 1:
            return False
        bucket.tokens -= 1
        return True

    def snapshot(self) -> dict[str, Any]:
        """The mode, the buckets of reference §7, and the counters, one row per account +
        region + API (`window_s`: real seconds from its first call to its last answered one;
        `aws_window_s`: that window times the time scale, what it stands for at AWS's refill)."""
        with self._lock:
            counts = [
                {
                    "account": account,
                    "region": region,
                    "operation": operation,
                    "answered": count.answered,
                    "throttled": count.throttled,
                    "window_s": round(max(0.0, count.last_at - count.first_at), 6),
                    # The same calls at AWS's own refill: the unscaled floor of the window.
                    "aws_window_s": round(
                        max(0.0, count.last_at - count.first_at) * self._time_scale, 6
                    ),
                    "bucket": list(bucket_for(operation, region) or ()) or None,
                }
                for (account, region, operation), count in sorted(self._counts.items())
            ]
            return {
                "enabled": self._enabled,
                "time_scale": self._time_scale,
                "quotas": {
                    operation: {"high_quota_regions": list(high), "other_regions": list(other)}
                    for operation, (high, other) in QUOTAS.items()
                },
                "high_quota_regions": sorted(HIGH_QUOTA_REGIONS),
                "counts": counts,
            }


def throttle_response(environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
    """WSGI status line, headers and body of AWS's ThrottlingException for this request."""
    payload = json.dumps(THROTTLE_BODY).encode()
    target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
    version = TARGET_PREFIX_JSON_VERSION.get(target.split(".", 1)[0], "1.1")
    headers = [
        ("Content-Type", f"application/x-amz-json-{version}"),
        ("Content-Length", str(len(payload))),
        ("x-amzn-RequestId", str(uuid.uuid4())),
    ]
    return "400 Bad Request", headers, payload
