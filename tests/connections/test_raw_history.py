"""GetExecutionHistory answers decoded from their bytes (msgspec), not by botocore's shape walk.

The raw events must say exactly what botocore's parsed events say (timestamps as the epoch
seconds the wire carries, which the history reader turns into the same instants), and anything
msgspec refuses must still reach botocore's own parser.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import pytest

from connections.aws import AwsApi
from connections.aws.client import decode_json_body
from executions.history.events import parse_timestamp
from sandbox import scenarios
from sandbox.server import Sandbox
from tests.aws_sandbox import register, sandbox_client

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def _same(plain: Any, raw: Any, where: str) -> None:
    """botocore's parsed value and the raw one agree (a datetime is the same instant)."""
    if isinstance(plain, datetime):
        assert isinstance(raw, int | float) and not isinstance(raw, bool), where
        assert parse_timestamp(raw) == parse_timestamp(plain), where
    elif isinstance(plain, dict):
        assert isinstance(raw, dict), where
        # botocore keeps the modelled members only; the sandbox sends no other.
        assert set(plain) == {k for k, v in raw.items() if v is not None}, where
        for key, value in plain.items():
            _same(value, raw[key], f"{where}.{key}")
    elif isinstance(plain, list):
        assert isinstance(raw, list) and len(raw) == len(plain), where
        for index, (a, b) in enumerate(zip(plain, raw, strict=True)):
            _same(a, b, f"{where}[{index}]")
    else:
        assert type(raw) is type(plain) and raw == plain, where


def test_history_pages_are_botocores_events_undecoded(sync_sandbox: Sandbox) -> None:
    scenarios.run(sync_sandbox.endpoint_url, region=sync_sandbox.region, executions=8, seed=5)
    sfn = sandbox_client(sync_sandbox, "stepfunctions")
    machines = sfn.list_state_machines()["stateMachines"]
    arns = [
        e["executionArn"]
        for m in machines
        if m.get("type") != "EXPRESS"
        for e in sfn.list_executions(stateMachineArn=m["stateMachineArn"])["executions"]
    ][:8]
    assert arns
    api = AwsApi(register(sync_sandbox, name=f"raw-{uuid.uuid4().hex[:6]}"), sync_sandbox.region)
    compared = 0
    for arn in arns:
        raw = [e for page in api.history_pages(arn) for e in page.events]
        plain = sfn.get_execution_history(
            executionArn=arn, maxResults=1000, includeExecutionData=True
        )["events"]
        assert raw and isinstance(raw[0]["timestamp"], float | int)  # not botocore's datetime
        _same(plain, raw, arn)
        compared += len(raw)
    assert compared > 8 * 3
    assert api.calls["GetExecutionHistory"] == len(arns)


def test_decoding_gives_json_loads_values_or_hands_over_to_botocore() -> None:
    big = 123456789012345678901234567890
    assert decode_json_body(b'{"id": %d, "t": 1.5}' % big) == {"id": big, "t": 1.5}
    assert decode_json_body('{"a": [1, null]}') == {"a": [1, None]}
    # What msgspec refuses (json.loads takes some of it) and what is no object: botocore's.
    for body in (
        "\ud800",
        b"NaN",
        b'\xef\xbb\xbf{"a": 1}',
        b'{"a": 1e400}',
        b"[1]",
        b"",
        b"<html>",
    ):
        assert decode_json_body(body) is None, body
