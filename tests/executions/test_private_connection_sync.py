"""Private and KMS-keyed connections through a real sandbox sync (issue 15 item 6): the typed
boundary reads InvocationConnectivityParameters, AuthParameters.ConnectivityParameters and
KmsKeyIdentifier; they are stored and shown; a call made while the private connection was
still provisioning is explained as that."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest
from django.test import Client

from connections.models import Connection
from executions.models import Execution
from executions.sync import sync_account_by_id
from sandbox import partner
from sandbox.server import Sandbox
from tests.aws_sandbox import register, sandbox_client

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

RCFG = "arn:aws:vpc-lattice:us-east-1:123456789012:resourceconfiguration/rcfg-0fedcba987654321"
BASIC = {"BasicAuthParameters": {"Username": partner.BASIC_USERNAME, "Password": partner.BASIC_PASSWORD}}  # fmt: skip


def _run(sfn: Any, connection_arn: str, url: str) -> str:
    definition = {
        "StartAt": "Fetch",
        "States": {
            "Fetch": {
                "Type": "Task",
                "Resource": "arn:aws:states:::http:invoke",
                "Parameters": {"ApiEndpoint": url, "Method": "GET",
                               "InvocationConfig": {"ConnectionArn": connection_arn}},
                "End": True,
            }
        },
    }  # fmt: skip
    machine = sfn.create_state_machine(
        name=f"private-{uuid.uuid4().hex[:6]}",
        definition=json.dumps(definition),
        roleArn="arn:aws:iam::123456789012:role/sandbox",
    )["stateMachineArn"]
    arn = str(sfn.start_execution(stateMachineArn=machine, input="{}")["executionArn"])
    for _ in range(300):
        if sfn.describe_execution(executionArn=arn)["status"] != "RUNNING":
            return arn
        time.sleep(0.05)
    raise AssertionError("the execution did not finish")


def test_private_and_kms_connections_are_read_stored_shown_and_explained(
    sync_sandbox: Sandbox, admin_client: Client
) -> None:
    events, sfn = (
        sandbox_client(sync_sandbox, "events"),
        sandbox_client(sync_sandbox, "stepfunctions"),
    )
    kms = sandbox_client(sync_sandbox, "kms")
    key_arn = kms.create_key()["KeyMetadata"]["Arn"]
    suffix = uuid.uuid4().hex[:6]
    private_arn = events.create_connection(
        Name=f"lattice-{suffix}", AuthorizationType="BASIC", AuthParameters=BASIC,
        InvocationConnectivityParameters={"ResourceParameters": {"ResourceConfigurationArn": RCFG}},
        KmsKeyIdentifier=key_arn,
    )["ConnectionArn"]  # fmt: skip
    # Straight after the create: the sandbox's private connection is still provisioning.
    execution_arn = _run(sfn, private_arn, f"{sync_sandbox.partner_url}/basic")

    account = register(sync_sandbox, name=f"private-{suffix}")
    sync_account_by_id(account.pk, trigger="test")

    connection = Connection.objects.get(arn=private_arn)
    assert connection.state == "ACTIVE"
    assert connection.private_api["configuration_arn"] == RCFG
    assert connection.private_api["association_arn"].endswith("/snra-0fedcba987654321")
    assert connection.private_auth == {}
    assert connection.kms_key_identifier == key_arn
    assert connection.aws_created_at is not None and connection.described_at is not None

    attempt = Execution.objects.get(arn=execution_arn).attempts.get()
    assert attempt.error == "States.Http.Socket"
    assert (attempt.category, attempt.subcategory) == ("network", "private_connection_provisioning")
    assert "provisions" in attempt.hint

    page = admin_client.get(connection.get_absolute_url()).content.decode()
    assert RCFG in page and key_arn in page and "Private API (VPC Lattice)" in page
    api = admin_client.get(f"/api/v1/connections/{connection.pk}/").json()
    assert api["private_resources"]["api"]["configuration_arn"] == RCFG
    assert api["kms_key_identifier"] == key_arn
