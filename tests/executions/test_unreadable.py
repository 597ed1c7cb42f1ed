"""One unreadable resource costs only itself, through a real sandbox sync.

The sandbox's resource faults (sandbox/faults.py) answer as AWS does when a connection is deleted
between ListConnections and DescribeConnection, when a state machine is encrypted with a
customer-managed KMS key the reader may not use (or one that is disabled), and when an IAM policy
denies DescribeStateMachine on one ARN.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from django.test import Client
from django.urls import reverse

from connections.models import Connection, SyncRun
from executions.models import Execution, HttpAttempt, StateMachine
from executions.sync import sync_account_by_id
from sandbox import ACCOUNT_ID
from sandbox.server import Sandbox
from tests.aws_sandbox import register, sandbox_client

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

ROLE_ARN = f"arn:aws:iam::{ACCOUNT_ID}:role/stepscope-sandbox-states"


@dataclass
class World:
    """Resources of this test only (moto's state is shared by the whole session)."""

    vanishing: str  # a connection's name
    vanishing_arn: str
    kept_connection: str  # a connection's ARN
    readable: str  # state machine ARNs
    encrypted: str
    denied: str
    key: str  # the encrypted machine's KMS key ARN


def _machine(sfn: Any, name: str, url: str, connection: str, **extra: Any) -> str:
    definition = {
        "StartAt": "Call",
        "States": {
            "Call": {
                "Type": "Task",
                "Resource": "arn:aws:states:::http:invoke",
                "Parameters": {
                    "ApiEndpoint": url,
                    "Method": "GET",
                    "InvocationConfig": {"ConnectionArn": connection},
                },
                "End": True,
            }
        },
    }
    return str(
        sfn.create_state_machine(
            name=name, definition=json.dumps(definition), roleArn=ROLE_ARN, **extra
        )["stateMachineArn"]
    )


def _run_to_the_end(sfn: Any, machines: list[str], each: int) -> None:
    started = [
        sfn.start_execution(stateMachineArn=m, input="{}")["executionArn"]
        for m in machines
        for _ in range(each)
    ]
    deadline = time.monotonic() + 60
    while any(sfn.describe_execution(executionArn=a)["status"] == "RUNNING" for a in started):
        assert time.monotonic() < deadline, "sandbox executions did not finish"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def world(sync_sandbox: Sandbox) -> World:
    tag = uuid.uuid4().hex[:8]
    events, sfn = (
        sandbox_client(sync_sandbox, "events"),
        sandbox_client(sync_sandbox, "stepfunctions"),
    )
    auth = {"ApiKeyAuthParameters": {"ApiKeyName": "x-api-key", "ApiKeyValue": "sk-sandbox-1234"}}
    kept = events.create_connection(
        Name=f"trust-kept-{tag}", AuthorizationType="API_KEY", AuthParameters=auth
    )["ConnectionArn"]
    vanishing = f"trust-vanishing-{tag}"
    vanishing_arn = events.create_connection(
        Name=vanishing, AuthorizationType="API_KEY", AuthParameters=auth
    )["ConnectionArn"]
    key = f"arn:aws:kms:{sync_sandbox.region}:{ACCOUNT_ID}:key/{uuid.uuid4()}"
    partner = sync_sandbox.partner_url
    readable = _machine(sfn, f"trust-readable-{tag}", f"{partner}/status/503", kept)
    encrypted = _machine(
        sfn,
        f"trust-encrypted-{tag}",
        f"{partner}/apikey",
        kept,
        encryptionConfiguration={"type": "CUSTOMER_MANAGED_KMS_KEY", "kmsKeyId": key},
    )
    denied = _machine(sfn, f"trust-denied-{tag}", f"{partner}/ok", kept)
    _run_to_the_end(sfn, [readable, encrypted, denied], each=2)
    return World(vanishing, vanishing_arn, kept, readable, encrypted, denied, key)


@pytest.fixture
def unreadable(
    sync_sandbox: Sandbox, world: World, request: pytest.FixtureRequest
) -> Iterator[str]:
    """The faults on; yields the KMS fault kind the test asked for."""
    kms: str = request.param
    url = f"{sync_sandbox.endpoint_url}/_sandbox/faults"
    rules = {world.vanishing: "vanished", world.encrypted: kms, world.denied: "access_denied"}
    requests.post(url, json={"resources": rules}, timeout=5).raise_for_status()
    try:
        yield kms
    finally:
        requests.delete(url, timeout=5)


@pytest.mark.parametrize(
    ("unreadable", "code"),
    [
        ("kms_access_denied", "KmsAccessDeniedException"),
        ("kms_invalid_state", "KmsInvalidStateException"),
    ],
    indirect=["unreadable"],
)
def test_unreadable_resources_cost_only_themselves(
    sync_sandbox: Sandbox, world: World, unreadable: str, code: str, admin_client: Client
) -> None:
    account = register(sync_sandbox)
    summary = sync_account_by_id(account.pk)

    assert summary["status"] == "partial", summary["errors"]
    problems = {
        (p["kind"], p["arn"] or p["name"], p["operation"], p["code"]): p
        for p in summary["unreadable"]
    }
    vanished = problems.pop(
        ("connection", world.vanishing_arn, "DescribeConnection", "ResourceNotFoundException")
    )
    assert vanished["name"] == world.vanishing
    machine = problems.pop(("state machine", world.encrypted, "DescribeStateMachine", code))
    histories = problems.pop(("execution histories", world.encrypted, "GetExecutionHistory", code))
    denied = problems.pop(
        ("state machine", world.denied, "DescribeStateMachine", "AccessDeniedException")
    )
    assert not problems, problems
    if code == "KmsAccessDeniedException":
        assert "kms:Decrypt" in machine["hint"] and world.key in machine["hint"]
    else:
        assert "disabled" in machine["hint"] and world.key in machine["hint"]
    assert "states:DescribeStateMachine" in denied["hint"]

    # The rest is read whole.
    assert not Connection.objects.filter(name=world.vanishing).exists()
    assert Connection.objects.filter(arn=world.kept_connection).exists()
    attempts = HttpAttempt.objects.filter(execution__state_machine__arn=world.readable)
    assert attempts.filter(status_code=503).count() == 2
    assert not StateMachine.objects.filter(arn=world.denied).exists()

    # The encrypted machine: stored from its metadata, its executions from the listing.
    encrypted = StateMachine.objects.get(arn=world.encrypted)
    assert encrypted.kms_key_id == world.key and encrypted.definition == ""
    assert world.key in encrypted.read_problem
    listed = Execution.objects.filter(state_machine=encrypted)
    assert sorted(listed.values_list("source", "status")) == [("listing", "SUCCEEDED")] * 2
    assert histories["missing"].startswith("executions stored from ListExecutions only")
    assert summary["api_calls"]["GetExecutionHistory"] >= 1
    run = SyncRun.objects.get(account=account)
    assert run.status == "partial" and len(run.unreadable) == 4
    account.refresh_from_db()
    assert world.vanishing in account.last_error

    page = admin_client.get(reverse("dashboard:sync_status")).content.decode()
    assert "4 resources could not be read" in page
    assert world.vanishing in page and world.key in page and code in page

    shown = listed.first()
    assert shown is not None
    detail = admin_client.get(shown.get_absolute_url()).content.decode()
    assert "ListExecutions only (history unreadable)" in detail and world.key in detail

    # Once the reader may: the next sync reads every history the first could not.
    requests.delete(f"{sync_sandbox.endpoint_url}/_sandbox/faults", timeout=5)
    again = sync_account_by_id(account.pk)
    assert again["status"] == "ok", again["errors"]
    encrypted.refresh_from_db()
    assert encrypted.read_problem == "" and encrypted.http_states
    assert sorted(listed.values_list("source", "history_complete")) == [("history", True)] * 2
    assert HttpAttempt.objects.filter(execution__state_machine=encrypted).count() == 2
    assert StateMachine.objects.filter(arn=world.denied).exists()
