"""TestState for HTTP Tasks on the sandbox, over boto3 (reference §5)."""

from __future__ import annotations

import base64
import json
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from sandbox import ACCOUNT_ID, partner
from sandbox.server import Sandbox
from tests.sandbox.support import ROLE_ARN, Aws, http_task, single_state, unique

SECRET_HEADER = "canary-header-secret-7731"


@pytest.fixture(scope="module")
def sfn(sandbox: Sandbox) -> Any:
    # TestState has the host prefix `sync-`; a custom endpoint needs it off (reference §5).
    return boto3.client(
        "stepfunctions",
        endpoint_url=sandbox.endpoint_url,
        region_name=sandbox.region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(inject_host_prefix=False, retries={"total_max_attempts": 1}),
    )


@pytest.fixture
def echo_connection(aws: Aws) -> str:
    return aws.connection(
        "BASIC",
        {
            "BasicAuthParameters": {
                "Username": partner.BASIC_USERNAME,
                "Password": partner.BASIC_PASSWORD,
            }
        },
        invocation={
            "HeaderParameters": [
                {"Key": "X-Tenant", "Value": "acme", "IsValueSecret": False},
                {"Key": "X-Signing-Key", "Value": SECRET_HEADER, "IsValueSecret": True},
            ],
            "QueryStringParameters": [{"Key": "region", "Value": "eu", "IsValueSecret": False}],
        },
    )


def _definition(partner_url: str, connection: str, **fields: Any) -> str:
    state = http_task(
        {
            "ApiEndpoint": f"{partner_url}/echo",
            "Method": "POST",
            "Headers": {"X-Definition": "d1"},
            "QueryParameters": {"q.$": "$.q"},
            "RequestBody": {"order.$": "$.order"},
            "InvocationConfig": {"ConnectionArn": connection},
        },
        **fields,
    )
    return json.dumps(single_state(state))


def _headers(text: str) -> dict[str, str]:
    assert text.startswith("[") and text.endswith("]")
    return dict(item.split(": ", 1) for item in text[1:-1].split(", "))


def test_trace_shows_the_merged_request_the_partner_received_with_secrets_hidden(
    sfn: Any, partner_url: str, echo_connection: str
) -> None:
    answer = sfn.test_state(
        definition=_definition(partner_url, echo_connection),
        stateName="Call",
        input=json.dumps({"q": "x1", "order": 7}),
        inspectionLevel="TRACE",
    )

    assert answer["status"] == "SUCCEEDED"
    request, response = answer["inspectionData"]["request"], answer["inspectionData"]["response"]
    received = json.loads(answer["output"])["ResponseBody"]
    assert request["method"] == received["method"] == "POST"
    assert request["url"].startswith(f"{partner_url}/echo?")
    assert "q=x1" in request["url"] and "region=eu" in request["url"]
    sent = _headers(request["headers"])
    # What the HTTP client adds on its own is not listed (AWS's TRACE leaves out Host too).
    transport = {"content-length", "host", "accept-encoding"}
    assert {k.lower() for k in sent} == set(received["headers"]) - transport
    assert all(received["headers"][k.lower()] == v for k, v in sent.items() if "XXXX" not in v)
    assert sent["X-Definition"] == "d1" and sent["X-Tenant"] == "acme"
    assert sent["Authorization"] == "Basic XXXXXXXX"
    assert sent["X-Signing-Key"] == "XXXXXXXX"
    assert sent["User-Agent"] == f"Amazon|StepFunctions|HttpInvoke|{sfn.meta.region_name}"
    assert json.loads(request["body"]) == {"order": 7}
    assert (response["statusCode"], response["statusMessage"]) == ("200", "OK")
    assert all(isinstance(v, str) for v in {**request, **response}.values())
    everything = json.dumps(answer)
    assert SECRET_HEADER not in everything and partner.BASIC_PASSWORD not in everything


def test_debug_has_the_paths_but_not_the_http_exchange(
    sfn: Any, partner_url: str, echo_connection: str
) -> None:
    answer = sfn.test_state(
        definition=_definition(
            partner_url, echo_connection, ResultSelector={"s.$": "$.StatusCode"}
        ),
        stateName="Call",
        input=json.dumps({"q": "x1", "order": 7}),
        inspectionLevel="DEBUG",
    )

    data = answer["inspectionData"]
    assert "request" not in data and "response" not in data
    assert json.loads(data["afterParameters"])["RequestBody"] == {"order": 7}
    assert answer["output"] == '{"s":200}'
    assert "inspectionData" not in sfn.test_state(
        definition=_definition(partner_url, echo_connection),
        stateName="Call",
        input=json.dumps({"q": "x", "order": 1}),
    )


def test_reveal_secrets_needs_the_permission_on_the_role(
    aws: Aws, sandbox: Sandbox, sfn: Any, partner_url: str, echo_connection: str
) -> None:
    request = {
        "definition": _definition(partner_url, echo_connection),
        "stateName": "Call",
        "input": json.dumps({"q": "x", "order": 1}),
        "inspectionLevel": "TRACE",
        "revealSecrets": True,
    }
    with pytest.raises(ClientError) as refused:
        sfn.test_state(roleArn=ROLE_ARN, **request)
    assert refused.value.response["Error"]["Code"] == "AccessDeniedException"
    assert "states:RevealSecrets" in refused.value.response["Error"]["Message"]

    iam = boto3.client(
        "iam",
        endpoint_url=sandbox.endpoint_url,
        region_name=sandbox.region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    role = unique("operator")
    iam.create_role(
        RoleName=role,
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
    )
    iam.put_role_policy(
        RoleName=role,
        PolicyName="reveal",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Action": "states:RevealSecrets", "Resource": "*"}
                ],
            }
        ),
    )
    answer = sfn.test_state(roleArn=f"arn:aws:iam::{ACCOUNT_ID}:role/{role}", **request)

    sent = _headers(answer["inspectionData"]["request"]["headers"])
    pair = base64.b64encode(f"{partner.BASIC_USERNAME}:{partner.BASIC_PASSWORD}".encode()).decode()
    assert sent["Authorization"] == f"Basic {pair}"
    assert sent["X-Signing-Key"] == SECRET_HEADER


def test_mock_runs_retry_and_catch_without_calling_the_partner(sfn: Any) -> None:
    # Port 9 (discard) on localhost is closed: a real call would fail as States.Http.Socket.
    state = http_task(
        {"ApiEndpoint": "http://127.0.0.1:9/orders", "Method": "GET"},
        Retry=[
            {"ErrorEquals": ["States.Http.StatusCode.503"], "MaxAttempts": 2, "IntervalSeconds": 3}
        ],
        Catch=[{"ErrorEquals": ["States.ALL"], "Next": "Recover", "ResultPath": "$.error"}],
    )
    definition = json.dumps(
        {"StartAt": "Call", "States": {"Call": state, "Recover": {"Type": "Pass", "End": True}}}
    )
    failure = {
        "errorOutput": {"error": "States.Http.StatusCode.503", "cause": "Service Unavailable"}
    }

    retriable = sfn.test_state(
        definition=definition, stateName="Call", mock=failure, inspectionLevel="DEBUG"
    )
    caught = sfn.test_state(
        definition=definition,
        stateName="Call",
        input='{"id": 1}',
        mock=failure,
        stateConfiguration={"retrierRetryCount": 2},
    )
    succeeded = sfn.test_state(
        definition=definition,
        stateName="Call",
        mock={"result": json.dumps({"StatusCode": 200, "ResponseBody": {"ok": True}})},
        inspectionLevel="TRACE",
    )

    assert retriable["status"] == "RETRIABLE"
    assert retriable["inspectionData"]["errorDetails"] == {
        "retryIndex": 0,
        "retryBackoffIntervalSeconds": 3,
    }
    assert (caught["status"], caught["nextState"], caught["error"]) == (
        "CAUGHT_ERROR",
        "Recover",
        "States.Http.StatusCode.503",
    )
    assert json.loads(caught["output"]) == {
        "id": 1,
        "error": {"Error": "States.Http.StatusCode.503", "Cause": "Service Unavailable"},
    }
    assert succeeded["status"] == "SUCCEEDED"
    assert "request" not in succeeded["inspectionData"]
    unmocked = sfn.test_state(definition=definition, stateName="Call")
    assert (unmocked["status"], unmocked["error"]) == ("CAUGHT_ERROR", "States.Http.Socket")


def test_bad_requests_answer_aws_errors(sfn: Any) -> None:
    for kwargs, code in [
        ({"definition": "{not json"}, "InvalidDefinition"),
        (
            {
                "definition": json.dumps(single_state({"Type": "Pass", "End": True})),
                "stateName": "Call",
            },
            "ValidationException",
        ),
        (
            {
                "definition": json.dumps(single_state({"Type": "Pass", "End": True})),
                "stateName": "Nope",
            },
            "ValidationException",
        ),
        (
            {
                "definition": json.dumps(
                    single_state(http_task({}, Retry=[{"ErrorEquals": ["X"], "MaxAttempts": "3x"}]))
                ),
                "stateName": "Call",
                "mock": {"errorOutput": {"error": "X", "cause": ""}},
            },
            "ValidationException",
        ),
    ]:
        with pytest.raises(ClientError) as refused:
            sfn.test_state(**kwargs)
        assert refused.value.response["Error"]["Code"] == code
