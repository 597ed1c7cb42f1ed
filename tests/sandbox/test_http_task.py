"""HTTP Task semantics on the sandbox: request shaping, output, and each failure mode."""

from __future__ import annotations

import json
import socket

import pytest

from sandbox import partner
from tests.sandbox.conftest import HTTP_TIMEOUT_SECONDS
from tests.sandbox.support import Aws, http_task, single_state


def test_success_output_has_the_aws_shape(
    aws: Aws, partner_url: str, basic_connection: str
) -> None:
    run = aws.run_task(
        {
            "ApiEndpoint": f"{partner_url}/ok",
            "Method": "GET",
            "InvocationConfig": {"ConnectionArn": basic_connection},
        }
    )

    assert run.status == "SUCCEEDED"
    output = json.loads(run.details(run.of_type("TaskSucceeded")[0])["output"])
    assert list(output) == ["Headers", "ResponseBody", "StatusCode", "StatusText"]
    assert output["ResponseBody"] == {"ok": True}
    assert (output["StatusCode"], output["StatusText"]) == (200, "OK")
    assert output["Headers"]["content-type"] == ["application/json"]
    assert all(
        isinstance(v, list) and all(isinstance(s, str) for s in v)
        for v in output["Headers"].values()
    )


def test_history_is_the_aws_task_sequence(
    aws: Aws, partner_url: str, basic_connection: str
) -> None:
    run = aws.run_task(
        {
            "ApiEndpoint": f"{partner_url}/ok",
            "Method": "GET",
            "InvocationConfig": {"ConnectionArn": basic_connection},
        }
    )

    assert run.types() == [
        "ExecutionStarted",
        "TaskStateEntered",
        "TaskScheduled",
        "TaskStarted",
        "TaskSucceeded",
        "TaskStateExited",
        "ExecutionSucceeded",
    ]
    assert [e["previousEventId"] for e in run.events] == [0, 0, 2, 3, 4, 5, 6]
    scheduled = run.details(run.of_type("TaskScheduled")[0])
    assert (scheduled["resourceType"], scheduled["resource"], scheduled["region"]) == (
        "http",
        "invoke",
        "us-east-1",
    )


def test_connection_credentials_are_sent_but_not_recorded(aws: Aws, partner_url: str) -> None:
    connection = aws.connection(
        "API_KEY",
        {"ApiKeyAuthParameters": {"ApiKeyName": "x-api-key", "ApiKeyValue": "sk-secret-value"}},
        invocation={
            "HeaderParameters": [{"Key": "X-Tenant", "Value": "acme", "IsValueSecret": False}],
            "QueryStringParameters": [{"Key": "token", "Value": "q-secret", "IsValueSecret": True}],
            "BodyParameters": [{"Key": "source", "Value": "connection", "IsValueSecret": False}],
        },
    )
    run = aws.run_task(
        {
            "ApiEndpoint": f"{partner_url}/echo",
            "Method": "POST",
            "Headers": {"Idempotency-Key": "abc", "X-Tenant": "definition"},
            "QueryParameters": {"page": "2"},
            "RequestBody": {"order": 7, "source": "definition"},
            "InvocationConfig": {"ConnectionArn": connection},
        }
    )

    echoed = json.loads(run.details(run.of_type("TaskSucceeded")[0])["output"])["ResponseBody"]
    assert echoed["headers"]["x-api-key"] == "sk-secret-value"
    assert echoed["headers"]["x-tenant"] == "acme"
    assert echoed["headers"]["idempotency-key"] == "abc"
    assert echoed["headers"]["user-agent"] == "Amazon|StepFunctions|HttpInvoke|us-east-1"
    assert echoed["headers"]["range"] == "bytes=0-262144"
    assert echoed["query"] == {"page": ["2"], "token": ["q-secret"]}
    assert json.loads(echoed["body"]) == {"order": 7, "source": "connection"}
    parameters = run.details(run.of_type("TaskScheduled")[0])["parameters"]
    assert json.loads(parameters)["InvocationConfig"] == {"ConnectionArn": connection}
    assert (
        "sk-secret-value" not in parameters
        and "q-secret" not in parameters
        and "acme" not in parameters
    )


def test_legacy_authentication_block_is_accepted(
    aws: Aws, partner_url: str, basic_connection: str
) -> None:
    run = aws.run_task(
        {
            "ApiEndpoint": f"{partner_url}/basic",
            "Method": "GET",
            "Authentication": {"ConnectionArn": basic_connection},
        }
    )
    assert run.status == "SUCCEEDED"


def test_url_encoded_transform_sends_a_form(
    aws: Aws, partner_url: str, basic_connection: str
) -> None:
    run = aws.run_task(
        {
            "ApiEndpoint": f"{partner_url}/form",
            "Method": "POST",
            "RequestBody": {"event": "synced", "tags": ["a", "b"]},
            "Transform": {
                "RequestBodyEncoding": "URL_ENCODED",
                "RequestEncodingOptions": {"ArrayFormat": "BRACKETS"},
            },
            "InvocationConfig": {"ConnectionArn": basic_connection},
        }
    )
    body = json.loads(run.details(run.of_type("TaskSucceeded")[0])["output"])["ResponseBody"]
    assert body == {"fields": {"event": ["synced"], "tags[]": ["a", "b"]}}


def test_text_response_body_stays_a_string(
    aws: Aws, partner_url: str, basic_connection: str
) -> None:
    run = aws.run_task(
        {
            "ApiEndpoint": f"{partner_url}/text",
            "Method": "GET",
            "InvocationConfig": {"ConnectionArn": basic_connection},
        }
    )
    assert (
        json.loads(run.details(run.of_type("TaskSucceeded")[0])["output"])["ResponseBody"] == "pong"
    )


@pytest.mark.parametrize(
    ("path", "error", "cause"),
    [
        ("/status/400", "States.Http.StatusCode.400", "Bad Request"),
        ("/status/404", "States.Http.StatusCode.404", "Not Found"),
        ("/status/409", "States.Http.StatusCode.409", "Conflict"),
        ("/status/429", "States.Http.StatusCode.429", "Too Many Requests"),
        ("/status/500", "States.Http.StatusCode.500", "Internal Server Error"),
        ("/status/502", "States.Http.StatusCode.502", "Bad Gateway"),
        ("/status/503", "States.Http.StatusCode.503", "Service Unavailable"),
        ("/status/504", "States.Http.StatusCode.504", "Gateway Timeout"),
    ],
)
def test_non_2xx_fails_with_status_error_and_status_text(
    aws: Aws, partner_url: str, basic_connection: str, path: str, error: str, cause: str
) -> None:
    run = aws.run_task(
        {
            "ApiEndpoint": partner_url + path,
            "Method": "GET",
            "InvocationConfig": {"ConnectionArn": basic_connection},
        }
    )

    assert run.status == "FAILED"
    assert run.last_task_failure == {
        "resourceType": "http",
        "resource": "invoke",
        "error": error,
        "cause": cause,
    }
    assert run.types()[-2:] == ["TaskFailed", "ExecutionFailed"]
    assert run.details(run.events[-1]) == {"error": error, "cause": cause}


def test_missing_header_is_a_400_whose_body_is_not_in_the_history(
    aws: Aws, partner_url: str, basic_connection: str
) -> None:
    run = aws.run_task(
        {
            "ApiEndpoint": f"{partner_url}/orders",
            "Method": "POST",
            "RequestBody": {"customerId": "c", "amount": 1},
            "InvocationConfig": {"ConnectionArn": basic_connection},
        }
    )
    assert run.last_task_failure["error"] == "States.Http.StatusCode.400"
    assert run.last_task_failure["cause"] == "Bad Request"
    assert "Idempotency-Key" not in json.dumps(run.events)


def test_wrong_content_type_is_a_415(aws: Aws, partner_url: str, basic_connection: str) -> None:
    run = aws.run_task(
        {
            "ApiEndpoint": f"{partner_url}/orders",
            "Method": "POST",
            "Headers": {"Content-Type": "text/plain", "Idempotency-Key": "k"},
            "RequestBody": "customerId=c",
            "InvocationConfig": {"ConnectionArn": basic_connection},
        }
    )
    assert run.last_task_failure["error"] == "States.Http.StatusCode.415"
    assert run.last_task_failure["cause"] == "Unsupported Media Type"


@pytest.mark.parametrize(
    "header", ["Authorization", "Cache-Control", "X-Amz-Date", "x-forwarded-for"]
)
def test_forbidden_header_is_a_runtime_error(
    aws: Aws, partner_url: str, basic_connection: str, header: str
) -> None:
    run = aws.run_task(
        {
            "ApiEndpoint": f"{partner_url}/ok",
            "Method": "GET",
            "Headers": {header: "x"},
            "InvocationConfig": {"ConnectionArn": basic_connection},
        }
    )
    assert run.last_task_failure["error"] == "States.Runtime"
    assert header in run.last_task_failure["cause"]


def test_unsupported_response_type_is_a_runtime_error(
    aws: Aws, partner_url: str, basic_connection: str
) -> None:
    run = aws.run_task(
        {
            "ApiEndpoint": f"{partner_url}/binary",
            "Method": "GET",
            "InvocationConfig": {"ConnectionArn": basic_connection},
        }
    )
    assert run.last_task_failure["error"] == "States.Runtime"


def test_oversized_response_exceeds_the_data_limit(
    aws: Aws, partner_url: str, basic_connection: str
) -> None:
    run = aws.run_task(
        {
            "ApiEndpoint": f"{partner_url}/oversized?kb=300",
            "Method": "GET",
            "InvocationConfig": {"ConnectionArn": basic_connection},
        }
    )
    assert run.last_task_failure == {
        "resourceType": "http",
        "resource": "invoke",
        "error": "States.DataLimitExceeded",
        "cause": "The state/task 'http' returned a result with a size exceeding the maximum number of bytes service limit.",
    }


def test_connection_reset_is_a_socket_error(
    aws: Aws, partner_url: str, basic_connection: str
) -> None:
    run = aws.run_task(
        {
            "ApiEndpoint": f"{partner_url}/reset",
            "Method": "GET",
            "InvocationConfig": {"ConnectionArn": basic_connection},
        }
    )
    assert run.last_task_failure["error"] == "States.Http.Socket"


def test_refused_connection_is_a_socket_error(aws: Aws, basic_connection: str) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    run = aws.run_task(
        {
            "ApiEndpoint": f"http://127.0.0.1:{closed_port}/ok",
            "Method": "GET",
            "InvocationConfig": {"ConnectionArn": basic_connection},
        }
    )
    assert run.last_task_failure["error"] == "States.Http.Socket"


def test_request_time_cap_is_a_socket_error(
    aws: Aws, partner_url: str, basic_connection: str
) -> None:
    slow = HTTP_TIMEOUT_SECONDS + 1
    run = aws.run_task(
        {
            "ApiEndpoint": f"{partner_url}/slow?seconds={slow}",
            "Method": "GET",
            "InvocationConfig": {"ConnectionArn": basic_connection},
        },
        TimeoutSeconds=30,
    )
    assert run.last_task_failure["error"] == "States.Http.Socket"
    assert "timed out" in run.last_task_failure["cause"]


def test_timeout_seconds_below_the_cap_is_task_timed_out(
    aws: Aws, partner_url: str, basic_connection: str
) -> None:
    run = aws.run_task(
        {
            "ApiEndpoint": f"{partner_url}/slow?seconds=1.5",
            "Method": "GET",
            "InvocationConfig": {"ConnectionArn": basic_connection},
        },
        TimeoutSeconds=1,
    )

    assert run.status == "FAILED"
    timed_out = run.of_type("TaskTimedOut")
    assert [run.details(e) for e in timed_out] == [
        {"resourceType": "http", "resource": "invoke", "error": "States.Timeout"}
    ]
    assert run.details(run.events[-1]) == {"error": "States.Timeout"}
    assert not run.of_type("TaskSucceeded")


def test_states_all_does_not_catch_runtime_errors(
    aws: Aws, partner_url: str, basic_connection: str
) -> None:
    state = http_task(
        {
            "ApiEndpoint": f"{partner_url}/ok",
            "Method": "GET",
            "Headers": {"Host": "x"},
            "InvocationConfig": {"ConnectionArn": basic_connection},
        },
        Catch=[{"ErrorEquals": ["States.ALL"], "Next": "Caught"}],
    )
    definition = single_state(state)
    definition["States"]["Caught"] = {"Type": "Succeed"}
    run = aws.execute(aws.state_machine(definition))
    assert run.status == "FAILED"
    assert run.details(run.events[-1])["error"] == "States.Runtime"


def test_readonly_credentials_get_403(aws: Aws, partner_url: str) -> None:
    connection = aws.connection(
        "BASIC",
        {
            "BasicAuthParameters": {
                "Username": partner.READONLY_USERNAME,
                "Password": partner.BASIC_PASSWORD,
            }
        },
    )
    run = aws.run_task(
        {
            "ApiEndpoint": f"{partner_url}/basic",
            "Method": "POST",
            "InvocationConfig": {"ConnectionArn": connection},
        }
    )
    assert run.last_task_failure["error"] == "States.Http.StatusCode.403"
    assert run.last_task_failure["cause"] == "Forbidden"


def test_parameters_path_missing_from_input_is_a_runtime_task_failure(aws: Aws) -> None:
    run = aws.run_task({"ApiEndpoint.$": "$.url", "Method": "GET"})
    assert run.last_task_failure["error"] == "States.Runtime"
    assert "$.url" in run.last_task_failure["cause"]
