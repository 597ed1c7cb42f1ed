"""OperatorApi.test_state against the sandbox's moto server over HTTP: AWS's string forms
(statusCode "200", headers as one "[k: v, …]" string) come back parsed."""

from __future__ import annotations

import json

import pytest

from connections.aws.operator import OperatorApi, parse_header_string
from connections.choices import OperatorMode
from connections.models import AwsAccount
from sandbox import partner
from sandbox.server import Sandbox
from tests.aws_sandbox import register
from tests.sandbox.support import ROLE_ARN, Aws, http_task, single_state, unique

pytestmark = pytest.mark.django_db
SECRET_HEADER = "canary-boundary-secret-4417"


@pytest.fixture
def api(sync_sandbox: Sandbox) -> OperatorApi:
    account: AwsAccount = register(sync_sandbox, name=unique("op"))
    account.operator_auth_mode = OperatorMode.ACCESS_KEYS
    account.operator_access_key_id = "operator-key"
    account.operator_secret_access_key = "operator-secret"
    account.save()
    return OperatorApi(account, sync_sandbox.region)


def definition(sandbox: Sandbox, **fields: object) -> str:
    connection = Aws(sandbox.endpoint_url, sandbox.region).connection(
        "BASIC",
        {
            "BasicAuthParameters": {
                "Username": partner.BASIC_USERNAME,
                "Password": partner.BASIC_PASSWORD,
            }
        },
        invocation={
            "HeaderParameters": [
                {"Key": "X-Signing-Key", "Value": SECRET_HEADER, "IsValueSecret": True}
            ]
        },
    )
    call = {
        "ApiEndpoint": f"{sandbox.partner_url}/echo",
        "Method": "POST",
        "Headers": {"X-Definition": "d1"},
        "RequestBody": {"order.$": "$.order"},
        "InvocationConfig": {"ConnectionArn": connection},
    }
    return json.dumps(single_state(http_task(call, **fields)))


def test_trace_answer_is_parsed_from_awss_strings(api: OperatorApi, sync_sandbox: Sandbox) -> None:
    result = api.test_state(
        definition(sync_sandbox), "Call", json.dumps({"order": 7}), role_arn=ROLE_ARN
    )

    assert (result.status, result.error, result.next_state) == ("SUCCEEDED", "", "")
    assert result.request is not None and result.response is not None
    assert result.request.method == "POST"
    assert result.request.url == f"{sync_sandbox.partner_url}/echo"
    sent = dict(result.request.headers)
    assert sent["X-Definition"] == "d1"
    assert sent["Authorization"] == "Basic XXXXXXXX" and sent["X-Signing-Key"] == "XXXXXXXX"
    assert json.loads(result.request.body) == {"order": 7}
    assert (result.response.status, result.response.status_message) == (200, "OK")
    assert isinstance(result.response.status, int)
    # What the partner received is what TRACE says was sent.
    received = json.loads(result.response.body)
    assert received["headers"]["x-definition"] == "d1" and received["method"] == "POST"
    assert result.request_id


def test_a_failed_call_with_a_catch_reports_caught_error_and_the_status(
    api: OperatorApi, sync_sandbox: Sandbox
) -> None:
    state = http_task(
        {"ApiEndpoint": f"{sync_sandbox.partner_url}/status/503", "Method": "GET"},
        Catch=[{"ErrorEquals": ["States.ALL"], "Next": "Recover"}],
    )
    machine = {
        "StartAt": "Call",
        "States": {"Call": state, "Recover": {"Type": "Pass", "End": True}},
    }

    result = api.test_state(json.dumps(machine), "Call", "{}", role_arn=ROLE_ARN)

    assert (result.status, result.error, result.next_state) == (
        "CAUGHT_ERROR",
        "States.Http.StatusCode.503",
        "Recover",
    )
    assert result.response is not None and result.response.status == 503
    assert ("catchIndex", 0) in result.error_details


def test_a_mocked_failure_runs_retry_without_a_partner_call(api: OperatorApi) -> None:
    state = http_task(
        {"ApiEndpoint": "http://127.0.0.1:9/never", "Method": "GET"},
        Retry=[{"ErrorEquals": ["States.ALL"], "MaxAttempts": 2, "IntervalSeconds": 4}],
    )
    mock = {
        "errorOutput": {"error": "States.Http.StatusCode.500", "cause": "Internal Server Error"}
    }

    result = api.test_state(json.dumps(single_state(state)), "Call", "{}", mock=mock)

    assert (result.status, result.error) == ("RETRIABLE", "States.Http.StatusCode.500")
    assert result.request is None and result.response is None
    assert dict(result.error_details) == {"retryIndex": 0, "retryBackoffIntervalSeconds": 4}


def test_header_strings_keep_commas_inside_values() -> None:
    text = "[date: Thu, 03 Dec 2026 06:00:00 GMT, content-type: application/json, x-empty: ]"
    assert parse_header_string(text) == (
        ("date", "Thu, 03 Dec 2026 06:00:00 GMT"),
        ("content-type", "application/json"),
        ("x-empty", ""),
    )
    assert parse_header_string("[]") == ()
    assert parse_header_string(None) == ()
    assert parse_header_string("garbage, a: b") == (("", "garbage"), ("a", "b"))


def test_a_state_sent_alone_needs_no_state_name(api: OperatorApi) -> None:
    state = http_task({"ApiEndpoint": "http://127.0.0.1:9/never", "Method": "GET"})
    mock = {"result": json.dumps({"StatusCode": 200, "ResponseBody": {"ok": True}})}

    result = api.test_state(json.dumps(state), "", "{}", mock=mock)

    assert result.status == "SUCCEEDED"
