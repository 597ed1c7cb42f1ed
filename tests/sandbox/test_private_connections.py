"""Private (VPC Lattice) and KMS-keyed connections as the sandbox emits them (issue 15 item 6)."""

from __future__ import annotations

import time
from typing import Any

import boto3
import pytest

from sandbox import connectivity, partner
from sandbox.server import Sandbox
from tests.sandbox.support import Aws, http_task, single_state, unique

RCFG = "arn:aws:vpc-lattice:us-east-1:123456789012:resourceconfiguration/rcfg-0123456789abcdef0"
UNREACHABLE = RCFG.replace("rcfg-0123", f"{connectivity.UNREACHABLE_PREFIX}-0123")
BASIC = {"BasicAuthParameters": {"Username": partner.BASIC_USERNAME, "Password": partner.BASIC_PASSWORD}}  # fmt: skip


def _private(aws: Aws, name: str, resource: str = RCFG, **extra: Any) -> str:
    answer = aws.events.create_connection(
        Name=name,
        AuthorizationType="BASIC",
        AuthParameters=BASIC,
        InvocationConnectivityParameters={"ResourceParameters": {"ResourceConfigurationArn": resource}},
        **extra,
    )  # fmt: skip
    return str(answer["ConnectionArn"])


def _call(aws: Aws, partner_url: str, connection: str) -> dict[str, Any]:
    machine = aws.state_machine(
        single_state(
            http_task(
                {"ApiEndpoint": partner_url + "/basic", "Method": "GET",
                 "InvocationConfig": {"ConnectionArn": connection}}
            )
        )
    )  # fmt: skip
    execution = aws.execute(machine)
    return {} if execution.status == "SUCCEEDED" else execution.last_task_failure


@pytest.fixture
def quick_provisioning(monkeypatch: pytest.MonkeyPatch) -> float:
    monkeypatch.setattr(connectivity, "PROVISIONING_SECONDS", 0.6)
    return 0.6


def test_a_private_connection_is_active_described_and_fails_while_it_provisions(
    aws: Aws, partner_url: str, quick_provisioning: float
) -> None:
    name = unique("private")
    arn = _private(aws, name)
    described = aws.events.describe_connection(Name=name)
    assert described["ConnectionState"] == "ACTIVE"
    assert described["InvocationConnectivityParameters"]["ResourceParameters"] == {
        "ResourceConfigurationArn": RCFG,
        "ResourceAssociationArn": RCFG.replace(
            ":resourceconfiguration/rcfg-", ":servicenetworkresourceassociation/snra-"
        ),
    }
    early = _call(aws, partner_url, arn)
    assert early["error"] == "States.Http.Socket"
    time.sleep(quick_provisioning)
    assert _call(aws, partner_url, arn) == {}  # provisioned: the call goes through


def test_an_unreachable_resource_configuration_is_failed_connectivity(
    aws: Aws, partner_url: str
) -> None:
    name = unique("unreachable")
    arn = _private(aws, name, UNREACHABLE)
    described = aws.events.describe_connection(Name=name)
    assert described["ConnectionState"] == "FAILED_CONNECTIVITY"
    assert UNREACHABLE in described["StateReason"]
    listed = aws.events.list_connections(NamePrefix=name)["Connections"]
    assert [c["ConnectionState"] for c in listed] == ["FAILED_CONNECTIVITY"]
    failure = _call(aws, partner_url, arn)
    assert failure["error"] == "Events.ConnectionResource.InvalidPrivateConnectionState"


def test_a_private_oauth_endpoint_is_authorizing_then_authorized(
    aws: Aws, partner_url: str, quick_provisioning: float
) -> None:
    name = unique("oauth-private")
    arn = aws.events.create_connection(
        Name=name,
        AuthorizationType="OAUTH_CLIENT_CREDENTIALS",
        AuthParameters={
            "OAuthParameters": {
                "ClientParameters": {"ClientID": partner.OAUTH_CLIENT_ID,
                                     "ClientSecret": partner.OAUTH_CLIENT_SECRET},
                "AuthorizationEndpoint": f"{partner_url}/oauth/token",
                "HttpMethod": "POST",
                "OAuthHttpParameters": {"BodyParameters": [
                    {"Key": "grant_type", "Value": "client_credentials", "IsValueSecret": False}]},
            },
            "ConnectivityParameters": {"ResourceParameters": {"ResourceConfigurationArn": RCFG}},
        },
    )["ConnectionArn"]  # fmt: skip
    described = aws.events.describe_connection(Name=name)
    assert described["ConnectionState"] == "AUTHORIZING"
    auth_resource = described["AuthParameters"]["ConnectivityParameters"]["ResourceParameters"]
    assert auth_resource["ResourceConfigurationArn"] == RCFG
    assert "InvocationConnectivityParameters" not in described  # the API itself is public
    assert _call(aws, partner_url, arn)["error"] == "Events.ConnectionResource.AuthInProgress"
    time.sleep(quick_provisioning)
    assert aws.events.describe_connection(Name=name)["ConnectionState"] == "AUTHORIZED"


def test_a_disabled_kms_key_deauthorizes_the_connection_naming_kms(
    aws: Aws, sandbox: Sandbox, partner_url: str
) -> None:
    kms: Any = boto3.client(
        "kms", endpoint_url=sandbox.endpoint_url, region_name=sandbox.region,
        aws_access_key_id="testing", aws_secret_access_key="testing",
    )  # fmt: skip
    key = kms.create_key(Tags=[{"TagKey": "EventBridgeApiDestinations", "TagValue": "true"}])
    key_arn = key["KeyMetadata"]["Arn"]
    name = unique("keyed")
    arn = aws.events.create_connection(
        Name=name, AuthorizationType="BASIC", AuthParameters=BASIC, KmsKeyIdentifier=key_arn
    )["ConnectionArn"]
    assert aws.events.describe_connection(Name=name)["KmsKeyIdentifier"] == key_arn
    assert _call(aws, partner_url, arn) == {}
    kms.disable_key(KeyId=key["KeyMetadata"]["KeyId"])  # moto takes the id, not the ARN
    failure = _call(aws, partner_url, arn)
    assert failure["error"] == "Events.ConnectionResource.InvalidConnectionState"
    described = aws.events.describe_connection(Name=name)
    assert described["ConnectionState"] == "DEAUTHORIZED"
    assert "KMS" in described["StateReason"] and key_arn in described["StateReason"]
