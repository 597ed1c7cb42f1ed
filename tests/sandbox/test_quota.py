"""Quota mode: AWS's token buckets on the sandbox endpoint, answered and counted as AWS would.

Against the session's real sandbox over HTTP, with real botocore clients: the throttle must be
one botocore itself classifies as throttling (its standard retry mode's detector), for Step
Functions (awsJson1_0) and CloudWatch Logs (awsJson1_1).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.retries.standard import RetryEventAdapter, ThrottlingErrorDetector

from sandbox.quota import QUOTAS, QuotaBuckets, bucket_for
from sandbox.server import Sandbox


@pytest.fixture
def quota_url(sandbox: Sandbox) -> Iterator[str]:
    url = f"{sandbox.endpoint_url}/_sandbox/quota"
    try:
        yield url
    finally:
        requests.post(url, json={"enabled": False, "time_scale": 1}, timeout=5)


def _client(sandbox: Sandbox, service: str, region: str, key: str) -> Any:
    make: Any = boto3.client
    return make(
        service,
        endpoint_url=sandbox.endpoint_url,
        region_name=region,
        aws_access_key_id=key,
        aws_secret_access_key="testing",
        config=Config(retries={"mode": "standard", "total_max_attempts": 1}),
    )


def _row(url: str, region: str, operation: str) -> dict[str, Any]:
    rows = requests.get(url, timeout=5).json()["counts"]
    return next(r for r in rows if r["region"] == region and r["operation"] == operation)


def _throttle_classification(client: Any) -> list[bool]:
    """What botocore's own throttling detector says of every answer the client gets."""
    detector = ThrottlingErrorDetector(RetryEventAdapter())
    seen: list[bool] = []

    def classify(**kwargs: Any) -> None:
        if kwargs.get("response") is not None:
            seen.append(detector.is_throttling_error(**kwargs))

    client.meta.events.register_first("needs-retry", classify)
    return seen


def test_a_drained_bucket_throttles_like_aws_and_botocore_calls_it_throttling(
    sandbox: Sandbox, quota_url: str
) -> None:
    requests.post(quota_url, json={"enabled": True, "time_scale": 1}, timeout=5).raise_for_status()
    region = "ap-south-1"  # ListStateMachines: 100 / 5 everywhere; no other test uses it
    sfn = _client(sandbox, "stepfunctions", region, "AKIAQUOTATEST0000001")
    seen = _throttle_classification(sfn)
    answered = 0
    started = time.monotonic()
    with pytest.raises(ClientError) as raised:
        for _ in range(1000):
            sfn.list_state_machines()
            answered += 1
    # The bucket held 100, plus what refilled at 5/s while those calls ran.
    assert 100 <= answered <= 100 + 5 * (time.monotonic() - started) + 1, answered
    error = raised.value.response
    assert error["Error"] == {"Code": "ThrottlingException", "Message": "Rate exceeded"}
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert seen[-1] is True and not any(seen[:-1]), (
        len(seen),
        [i for i, s in enumerate(seen) if s],
    )

    row = _row(quota_url, region, "ListStateMachines")
    assert (row["answered"], row["throttled"]) == (answered, 1)
    assert row["bucket"] == [100, 5]


def test_cloudwatch_logs_is_throttled_at_five_a_second_in_its_json_1_1(
    sandbox: Sandbox, quota_url: str
) -> None:
    requests.post(quota_url, json={"enabled": True}, timeout=5).raise_for_status()
    region = "sa-east-1"
    logs = _client(sandbox, "logs", region, "AKIAQUOTATEST0000002")
    seen = _throttle_classification(logs)
    raw: list[Any] = []
    logs.meta.events.register("after-call", lambda http_response, **_: raw.append(http_response))
    answers = []
    for _ in range(8):
        try:
            logs.filter_log_events(logGroupName="/stepscope/quota-test")
            answers.append("ok")
        except ClientError as exc:
            answers.append(exc.response["Error"]["Code"])
    # moto itself answers ResourceNotFound for the missing group: those calls were metered.
    assert answers[:5] == ["ResourceNotFoundException"] * 5
    assert "ThrottlingException" in answers[5:]
    assert seen[answers.index("ThrottlingException")] is True
    throttled = raw[answers.index("ThrottlingException")]
    assert throttled.headers["Content-Type"] == "application/x-amz-json-1.1"
    assert throttled.status_code == 400


def test_the_time_scale_speeds_the_refill(sandbox: Sandbox, quota_url: str) -> None:
    requests.post(quota_url, json={"enabled": True, "time_scale": 50}, timeout=5)
    region = "eu-north-1"
    logs = _client(sandbox, "logs", region, "AKIAQUOTATEST0000003")
    started = time.monotonic()
    answered = 0
    while answered < 30:  # 5 in the bucket, 250/s refill: 25 more within ~0.1 s
        try:
            logs.filter_log_events(logGroupName="/stepscope/quota-test")
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ThrottlingException":
                # A loaded machine can bunch calls: a throttled one is tried again, so the
                # figure below is about the refill, not about how many calls were lost.
                time.sleep(0.01)
                continue
        answered += 1
    elapsed = time.monotonic() - started
    row = _row(quota_url, region, "FilterLogEvents")
    assert row["answered"] == 30
    assert row["aws_window_s"] == pytest.approx(row["window_s"] * 50, abs=1e-3)
    # At AWS's own 5/s the 30 answers would need 5 s of refill.
    assert elapsed < 4, elapsed


def test_reset_fills_the_buckets_and_zeroes_the_counts(sandbox: Sandbox, quota_url: str) -> None:
    requests.post(quota_url, json={"enabled": True}, timeout=5)
    logs = _client(sandbox, "logs", "af-south-1", "AKIAQUOTATEST0000004")
    codes = []
    for _ in range(7):
        try:
            logs.filter_log_events(logGroupName="/stepscope/quota-test")
        except ClientError as exc:
            codes.append(exc.response["Error"]["Code"])
    assert "ThrottlingException" in codes
    snapshot = requests.delete(quota_url, timeout=5).json()
    assert snapshot["enabled"] is True and snapshot["counts"] == []
    with pytest.raises(ClientError) as raised:
        logs.filter_log_events(logGroupName="/stepscope/quota-test")
    assert raised.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_quota_mode_off_answers_everything_and_still_counts(
    sandbox: Sandbox, quota_url: str
) -> None:
    requests.delete(quota_url, timeout=5)
    logs = _client(sandbox, "logs", "me-south-1", "AKIAQUOTATEST0000005")
    for _ in range(12):
        with pytest.raises(ClientError) as raised:
            logs.filter_log_events(logGroupName="/stepscope/quota-test")
        assert raised.value.response["Error"]["Code"] == "ResourceNotFoundException"
    row = _row(quota_url, "me-south-1", "FilterLogEvents")
    assert (row["answered"], row["throttled"]) == (12, 0)


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[1]",
        b'{"time_scale": 0}',
        b'{"time_scale": -1}',
        b'{"time_scale": "fast"}',
        b'{"time_scale": 1e999}',
        b'{"enabled": "yes"}',
        b'{"burst": 3}',
    ],
)
def test_bad_settings_are_a_400_that_changes_nothing(
    sandbox: Sandbox, quota_url: str, body: bytes
) -> None:
    requests.post(quota_url, json={"enabled": True, "time_scale": 3}, timeout=5)
    answer = requests.post(quota_url, data=body, timeout=5)
    assert answer.status_code == 400 and answer.json()["message"]
    state = requests.get(quota_url, timeout=5).json()
    assert (state["enabled"], state["time_scale"]) == (True, 3.0)


def test_the_buckets_are_reference_section_7() -> None:
    assert bucket_for("GetExecutionHistory", "us-east-1") == (400, 20)
    assert bucket_for("DescribeExecution", "eu-west-1") == (300, 15)
    assert bucket_for("DescribeExecution", "eu-central-1") == (250, 10)
    assert bucket_for("ListExecutions", "us-west-2") == (200, 5)
    assert bucket_for("ListExecutions", "ap-northeast-1") == (100, 2)
    assert bucket_for("RedriveExecution", "us-east-1") == (1300, 300)
    assert bucket_for("FilterLogEvents", "us-east-1") == (5, 5)
    assert bucket_for("DescribeConnection", "us-east-1") is None
    assert set(QUOTAS) == {
        "GetExecutionHistory",
        "DescribeExecution",
        "ListExecutions",
        "ListStateMachines",
        "RedriveExecution",
        "FilterLogEvents",
    }


def test_buckets_are_per_account_and_region_and_refill_with_the_clock() -> None:
    now = [0.0]
    buckets = QuotaBuckets(enabled=True, time_scale=2, clock=lambda: now[0])
    assert all(buckets.take("111111111111", "us-east-1", "FilterLogEvents") for _ in range(5))
    assert not buckets.take("111111111111", "us-east-1", "FilterLogEvents")
    assert buckets.take("222222222222", "us-east-1", "FilterLogEvents")
    assert buckets.take("111111111111", "eu-west-1", "FilterLogEvents")
    now[0] = 0.1  # 5/s x2 for 0.1 s: one token
    assert buckets.take("111111111111", "us-east-1", "FilterLogEvents")
    assert not buckets.take("111111111111", "us-east-1", "FilterLogEvents")
    now[0] = 100.0  # never more than the bucket holds
    assert sum(buckets.take("111111111111", "us-east-1", "FilterLogEvents") for _ in range(9)) == 5
