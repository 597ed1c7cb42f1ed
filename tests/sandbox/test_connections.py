"""EventBridge connections: credentials, deauthorization cascade, lookup and permission failures."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from sandbox import partner
from sandbox.eventbridge import CONNECTION_NOT_AUTHORIZED_CAUSE
from sandbox.http_task import DENY_TAG_KEY
from tests.sandbox.support import Aws, http_task, single_state, unique


def _basic(aws: Aws, password: str, name: str | None = None) -> str:
    return aws.connection(
        "BASIC",
        {"BasicAuthParameters": {"Username": partner.BASIC_USERNAME, "Password": password}},
        name=name,
    )


def _oauth(aws: Aws, partner_url: str, secret: str) -> str:
    return aws.connection(
        "OAUTH_CLIENT_CREDENTIALS",
        {
            "OAuthParameters": {
                "ClientParameters": {"ClientID": partner.OAUTH_CLIENT_ID, "ClientSecret": secret},
                "AuthorizationEndpoint": f"{partner_url}/oauth/token",
                "HttpMethod": "POST",
                "OAuthHttpParameters": {
                    "BodyParameters": [
                        {"Key": "grant_type", "Value": "client_credentials", "IsValueSecret": False}
                    ]
                },
            }
        },
    )


def _task(partner_url: str, path: str, connection: str) -> dict[str, Any]:
    return {
        "ApiEndpoint": partner_url + path,
        "Method": "GET",
        "InvocationConfig": {"ConnectionArn": connection},
    }


def test_401_deauthorizes_a_basic_connection_and_later_tasks_fail(
    aws: Aws, partner_url: str
) -> None:
    name = unique("rotated")
    connection = _basic(aws, "stale-password", name=name)
    state_machine = aws.state_machine(
        single_state(http_task(_task(partner_url, "/basic", connection)))
    )

    first = aws.execute(state_machine)
    described = aws.events.describe_connection(Name=name)
    second = aws.execute(state_machine)

    assert first.last_task_failure["error"] == "States.Http.StatusCode.401"
    assert first.last_task_failure["cause"] == "Unauthorized"
    assert described["ConnectionState"] == "DEAUTHORIZED"
    assert "401" in described["StateReason"]
    assert second.last_task_failure == {
        "resourceType": "http",
        "resource": "invoke",
        "error": "Events.ConnectionResource.InvalidConnectionState",
        "cause": CONNECTION_NOT_AUTHORIZED_CAUSE,
    }
    listed = aws.events.list_connections(NamePrefix=name)["Connections"]
    assert [(c["ConnectionState"], "401" in c["StateReason"]) for c in listed] == [
        ("DEAUTHORIZED", True)
    ]


def test_retry_after_401_meets_the_deauthorized_connection(aws: Aws, partner_url: str) -> None:
    connection = _basic(aws, "stale-password")
    state = http_task(
        _task(partner_url, "/basic", connection),
        Retry=[
            {"ErrorEquals": ["States.Http.StatusCode.401"], "IntervalSeconds": 1, "MaxAttempts": 1}
        ],
    )
    run = aws.execute(aws.state_machine(single_state(state)))

    assert [run.details(e)["error"] for e in run.of_type("TaskFailed")] == [
        "States.Http.StatusCode.401",
        "Events.ConnectionResource.InvalidConnectionState",
    ]


def test_api_key_connection_is_deauthorized_by_401(aws: Aws, partner_url: str) -> None:
    name = unique("apikey")
    connection = aws.connection(
        "API_KEY",
        {"ApiKeyAuthParameters": {"ApiKeyName": partner.API_KEY_NAME, "ApiKeyValue": "wrong"}},
        name=name,
    )
    aws.run_task(_task(partner_url, "/apikey", connection))
    assert aws.events.describe_connection(Name=name)["ConnectionState"] == "DEAUTHORIZED"


def test_403_does_not_deauthorize(aws: Aws, partner_url: str) -> None:
    name = unique("readonly")
    connection = aws.connection(
        "API_KEY",
        {
            "ApiKeyAuthParameters": {
                "ApiKeyName": partner.API_KEY_NAME,
                "ApiKeyValue": partner.READONLY_API_KEY,
            }
        },
        name=name,
    )
    run = aws.run_task({**_task(partner_url, "/apikey", connection), "Method": "POST"})
    assert run.last_task_failure["error"] == "States.Http.StatusCode.403"
    assert aws.events.describe_connection(Name=name)["ConnectionState"] == "AUTHORIZED"


def test_update_connection_reauthorizes(aws: Aws, partner_url: str) -> None:
    name = unique("rotated")
    connection = _basic(aws, "stale-password", name=name)
    aws.run_task(_task(partner_url, "/basic", connection))

    aws.events.update_connection(
        Name=name,
        AuthorizationType="BASIC",
        AuthParameters={
            "BasicAuthParameters": {
                "Username": partner.BASIC_USERNAME,
                "Password": partner.BASIC_PASSWORD,
            }
        },
    )
    described = aws.events.describe_connection(Name=name)
    run = aws.run_task(_task(partner_url, "/basic", connection))

    assert described["ConnectionState"] == "AUTHORIZED"
    assert "StateReason" not in described
    assert run.status == "SUCCEEDED"


def test_deauthorize_connection_api(aws: Aws, partner_url: str) -> None:
    name = unique("manual")
    connection = _basic(aws, partner.BASIC_PASSWORD, name=name)
    aws.events.deauthorize_connection(Name=name)
    run = aws.run_task(_task(partner_url, "/basic", connection))
    assert run.last_task_failure["error"] == "Events.ConnectionResource.InvalidConnectionState"


def test_describe_connection_hides_secret_values(aws: Aws) -> None:
    name = unique("secret")
    aws.connection(
        "API_KEY",
        {"ApiKeyAuthParameters": {"ApiKeyName": "x-api-key", "ApiKeyValue": "sk-hidden"}},
        invocation={
            "HeaderParameters": [
                {"Key": "X-Secret", "Value": "hidden-header", "IsValueSecret": True},
                {"Key": "X-Public", "Value": "shown", "IsValueSecret": False},
            ]
        },
        name=name,
    )
    described = aws.events.describe_connection(Name=name)
    assert described["AuthParameters"]["ApiKeyAuthParameters"] == {"ApiKeyName": "x-api-key"}
    assert described["AuthParameters"]["InvocationHttpParameters"]["HeaderParameters"] == [
        {"Key": "X-Secret", "IsValueSecret": True},
        {"Key": "X-Public", "Value": "shown", "IsValueSecret": False},
    ]
    assert {"LastModifiedTime", "LastAuthorizedTime", "SecretArn"} <= set(described)


def test_oauth_connection_fetches_a_token(aws: Aws, partner_url: str) -> None:
    connection = _oauth(aws, partner_url, partner.OAUTH_CLIENT_SECRET)
    run = aws.run_task(
        {
            **_task(partner_url, "/bearer", connection),
            "Method": "POST",
            "RequestBody": {"amount": 1},
        }
    )
    assert run.status == "SUCCEEDED"


def test_oauth_token_failure_deauthorizes(aws: Aws, partner_url: str) -> None:
    connection = _oauth(aws, partner_url, "revoked")
    run = aws.run_task(_task(partner_url, "/bearer", connection))
    name = connection.split("/")[1]

    assert run.last_task_failure["error"] == "Events.ConnectionResource.InvalidConnectionState"
    described = aws.events.describe_connection(Name=name)
    assert described["ConnectionState"] == "DEAUTHORIZED"
    assert "oauth/token" in described["StateReason"]


def test_unknown_connection_is_resource_not_found(aws: Aws, partner_url: str) -> None:
    missing = (
        "arn:aws:events:us-east-1:123456789012:connection/gone/00000000-0000-0000-0000-000000000000"
    )
    run = aws.run_task(_task(partner_url, "/ok", missing))
    assert run.last_task_failure["error"] == "Events.ConnectionResource.ResourceNotFound"


def test_deleted_connection_is_resource_not_found(aws: Aws, partner_url: str) -> None:
    name = unique("deleted")
    connection = _basic(aws, partner.BASIC_PASSWORD, name=name)
    aws.events.delete_connection(Name=name)
    run = aws.run_task(_task(partner_url, "/ok", connection))
    assert run.last_task_failure["error"] == "Events.ConnectionResource.ResourceNotFound"


def test_denied_state_machine_gets_access_denied(
    aws: Aws, partner_url: str, basic_connection: str
) -> None:
    state_machine = aws.state_machine(
        single_state(http_task(_task(partner_url, "/ok", basic_connection))),
        tags=[{"key": DENY_TAG_KEY, "value": "connection"}],
    )
    run = aws.execute(state_machine)
    assert run.last_task_failure["error"] == "Events.ConnectionResource.AccessDenied"


@pytest.mark.parametrize("state", ["AUTHORIZED", "DEAUTHORIZED"])
def test_list_connections_filters_by_state(aws: Aws, state: str) -> None:
    name = unique("listed")
    _basic(aws, partner.BASIC_PASSWORD, name=name)
    if state == "DEAUTHORIZED":
        aws.events.deauthorize_connection(Name=name)
    listed = aws.events.list_connections(NamePrefix=name, ConnectionState=state)["Connections"]
    assert [c["Name"] for c in listed] == [name]


def test_a_connection_keeps_its_arn_when_the_sandbox_starts_again(aws: Aws) -> None:
    # A fresh sandbox process is an empty moto: deleting the connection stands in for it. The
    # ARN depends on account, region and name only, so `make demo` run twice registers the
    # same connections, not a second copy of each (an id still looks like a uuid, as on AWS).
    name = unique("stable")
    first = _basic(aws, "pw-1", name=name)
    aws.events.delete_connection(Name=name)
    again = _basic(aws, "pw-2", name=name)
    other = _basic(aws, "pw-1")
    assert again == first and other != first
    assert uuid.UUID(first.rsplit("/", 1)[1])
