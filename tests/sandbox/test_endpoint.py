"""The AWS endpoint itself: fault injection (/_sandbox/faults), /_sandbox/info, start-up errors."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
from botocore.exceptions import ClientError

from sandbox.server import Sandbox, start_sandbox
from tests.sandbox.conftest import HTTP_TIMEOUT_SECONDS
from tests.sandbox.support import Aws


@pytest.fixture
def faults(sandbox: Sandbox) -> Iterator[str]:
    url = f"{sandbox.endpoint_url}/_sandbox/faults"
    yield url
    requests.delete(url, timeout=5)


def test_throttle_answers_throttling_exception(aws: Aws, faults: str) -> None:
    requests.post(
        faults, json={"ListStateMachines": {"throttle": 1.0}}, timeout=5
    ).raise_for_status()

    with pytest.raises(ClientError) as raised:
        aws.sfn.list_state_machines()

    error = raised.value.response
    assert (error["Error"]["Code"], error["Error"]["Message"]) == (
        "ThrottlingException",
        "Rate exceeded",
    )
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    aws.sfn.list_activities()  # other operations are untouched


def test_error_share_answers_500(aws: Aws, faults: str) -> None:
    requests.post(faults, json={"*": {"error": 1.0}}, timeout=5).raise_for_status()
    with pytest.raises(ClientError) as raised:
        aws.events.list_connections()
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500


def test_faults_report_counts_and_clear(aws: Aws, faults: str) -> None:
    requests.post(faults, json={"ListActivities": {"throttle": 1.0}}, timeout=5)
    with pytest.raises(ClientError):
        aws.sfn.list_activities()

    shown = requests.get(faults, timeout=5).json()
    requests.delete(faults, timeout=5)

    assert shown["injected"] == {"ListActivities": {"throttle": 1}}
    aws.sfn.list_activities()


def test_bad_fault_spec_is_rejected(faults: str) -> None:
    response = requests.post(faults, json={"ListActivities": {"throttle": 2}}, timeout=5)
    assert response.status_code == 400


def test_info_names_the_partner(sandbox: Sandbox) -> None:
    info = requests.get(f"{sandbox.endpoint_url}/_sandbox/info", timeout=5).json()
    assert info["partner_url"] == sandbox.partner_url
    assert info["account_id"] == "123456789012"


def test_busy_port_raises_instead_of_hanging(sandbox: Sandbox) -> None:
    busy_port = int(sandbox.endpoint_url.rsplit(":", 1)[1])
    with pytest.raises(OSError, match="cannot listen"):
        start_sandbox(port=busy_port, http_timeout_seconds=HTTP_TIMEOUT_SECONDS)
