"""Resource faults: one connection or state machine unreadable, answered as AWS answers it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from botocore.exceptions import ClientError

from sandbox.server import Sandbox
from tests.sandbox.support import Aws, http_task, single_state, unique


@pytest.fixture
def resource_faults(sandbox: Sandbox) -> Iterator[Any]:
    url = f"{sandbox.endpoint_url}/_sandbox/faults"

    def apply(resources: dict[str, str]) -> dict[str, Any]:
        response = requests.post(url, json={"resources": resources}, timeout=5)
        response.raise_for_status()
        return dict(response.json())

    try:
        yield apply
    finally:
        requests.delete(url, timeout=5)


def _error(call: Any, **params: Any) -> dict[str, Any]:
    with pytest.raises(ClientError) as raised:
        call(**params)
    return dict(raised.value.response)


def test_a_vanished_connection_is_listed_but_not_described(aws: Aws, resource_faults: Any) -> None:
    name = unique("vanishing")
    aws.connection("BASIC", {"BasicAuthParameters": {"Username": "u", "Password": "p"}}, name=name)
    resource_faults({name: "vanished"})
    listed = aws.events.list_connections(NamePrefix=name)["Connections"]
    assert [c["Name"] for c in listed] == [name]
    answer = _error(aws.events.describe_connection, Name=name)
    assert answer["Error"]["Code"] == "ResourceNotFoundException"
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 400


@pytest.mark.parametrize(
    ("kind", "code"),
    [
        ("kms_access_denied", "KmsAccessDeniedException"),
        ("kms_invalid_state", "KmsInvalidStateException"),
    ],
)
def test_a_kms_denied_state_machine_answers_metadata_only(
    aws: Aws, partner_url: str, resource_faults: Any, kind: str, code: str
) -> None:
    definition = single_state(http_task({"ApiEndpoint": f"{partner_url}/ok", "Method": "GET"}))
    arn = aws.state_machine(definition)
    execution = aws.start(arn)
    aws.wait(execution)
    resource_faults({arn: kind})
    for call, params in [
        (aws.sfn.describe_state_machine, {"stateMachineArn": arn}),
        (aws.sfn.describe_execution, {"executionArn": execution}),
        (aws.sfn.get_execution_history, {"executionArn": execution}),
    ]:
        answer = _error(call, **params)
        assert answer["Error"]["Code"] == code, call
    metadata = aws.sfn.describe_state_machine(stateMachineArn=arn, includedData="METADATA_ONLY")
    assert metadata["definition"] == "{}" and metadata["stateMachineArn"] == arn
    described = aws.sfn.describe_execution(executionArn=execution, includedData="METADATA_ONLY")
    assert described["status"] == "SUCCEEDED"
    listed = aws.sfn.list_executions(stateMachineArn=arn)["executions"]
    assert [e["executionArn"] for e in listed] == [execution]


def test_metadata_only_leaves_out_the_definition_without_any_fault(aws: Aws) -> None:
    definition = single_state({"Type": "Pass", "End": True})
    arn = aws.state_machine(definition)
    whole = aws.sfn.describe_state_machine(stateMachineArn=arn)
    assert json.loads(whole["definition"]) == definition
    metadata = aws.sfn.describe_state_machine(stateMachineArn=arn, includedData="METADATA_ONLY")
    assert metadata["definition"] == "{}"


def test_access_denied_on_one_state_machine_leaves_the_others_readable(
    aws: Aws, resource_faults: Any
) -> None:
    denied = aws.state_machine(single_state({"Type": "Pass", "End": True}))
    other = aws.state_machine(single_state({"Type": "Pass", "End": True}))
    snapshot = resource_faults({denied: "access_denied"})
    assert snapshot["resources"] == {denied: "access_denied"}
    answer = _error(aws.sfn.describe_state_machine, stateMachineArn=denied)
    assert answer["Error"]["Code"] == "AccessDeniedException"
    assert denied in answer["Error"]["Message"]
    assert aws.sfn.describe_state_machine(stateMachineArn=other)["stateMachineArn"] == other


def test_an_unknown_resource_fault_kind_is_refused(sandbox: Sandbox) -> None:
    url = f"{sandbox.endpoint_url}/_sandbox/faults"
    response = requests.post(url, json={"resources": {"x": "explode"}}, timeout=5)
    assert response.status_code == 400 and "explode" in response.json()["message"]
