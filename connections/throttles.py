"""Throttled AWS answers, counted per operation for the sync run (and /metrics).

Part of the AWS boundary with connections/aws/ (the only other module that reads botocore's
answers). botocore answers every HTTP attempt, those its own retries absorb included, through
its `response-received` event. `AwsApi` hooks `count_throttle` onto each client it builds
(`count_throttles_of`) and wraps each call in `counting(...)`, which names the counter and
operation the answers of that call are credited to: a contextvar, so history prefetch threads,
each with its own call in progress, never credit another's.
"""

from __future__ import annotations

import contextvars
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

# The error codes that say "slow down" (a subset of the transient ones in connections/aws/).
THROTTLE_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "RateExceeded",
        "KmsThrottlingException",
        "ProvisionedThroughputExceededException",
    }
)

_current: contextvars.ContextVar[tuple[Counter[str], threading.Lock, str] | None] = (
    contextvars.ContextVar("stepscope_aws_call", default=None)
)


@contextmanager
def counting(throttles: Counter[str], lock: threading.Lock, operation: str) -> Iterator[None]:
    """Credit the throttled answers of the call made in this block to `throttles[operation]`."""
    token = _current.set((throttles, lock, operation))
    try:
        yield
    finally:
        _current.reset(token)


def count_throttle(parsed_response: Any = None, **_: Any) -> None:
    """botocore `response-received` handler (every HTTP attempt, retries included)."""
    current = _current.get()
    error = parsed_response.get("Error") if isinstance(parsed_response, dict) else None
    if current is not None and isinstance(error, dict) and error.get("Code") in THROTTLE_CODES:
        throttles, lock, operation = current
        with lock:
            throttles[operation] += 1


def count_throttles_of(client: Any) -> Any:
    """Count the throttles this botocore client receives; returns the client."""
    client.meta.events.register("response-received", count_throttle)
    return client
