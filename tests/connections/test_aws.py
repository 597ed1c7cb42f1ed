"""The boto3 boundary: error translation, credential checks, admin actions, shared rate limit."""

from __future__ import annotations

import uuid

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from django.test import Client

from connections.aws import (
    AwsApi,
    AwsPermanentError,
    AwsTransientError,
    translate,
)
from connections.aws.checks import check_credentials
from connections.aws.executions import describe_error
from connections.models import AwsAccount
from sandbox.server import Sandbox
from tests.aws_sandbox import register
from tests.sandbox.support import Aws, http_task, unique

pytestmark = pytest.mark.django_db


def client_error(code: str, status: int = 400, message: str = "") -> ClientError:
    return ClientError(
        {
            "Error": {"Code": code, "Message": message},
            # Only the field our translation reads; real responses carry more.
            "ResponseMetadata": {"HTTPStatusCode": status},  # type: ignore[typeddict-item]
        },
        "GetExecutionHistory",
    )


@pytest.mark.parametrize(
    "code", ["ThrottlingException", "ServiceUnavailable", "KmsThrottlingException"]
)
def test_throttling_and_unavailability_are_transient(code: str) -> None:
    error = translate(client_error(code), "GetExecutionHistory")
    assert isinstance(error, AwsTransientError) and error.transient


def test_server_errors_are_transient_whatever_their_code() -> None:
    assert translate(client_error("Whatever", status=503), "ListExecutions").transient


@pytest.mark.parametrize(
    ("code", "words"),
    [
        ("ExpiredTokenException", "have expired"),
        ("UnrecognizedClientException", "not valid"),
        ("AccessDeniedException", "access denied"),
        ("InvalidToken", "InvalidToken"),
    ],
)
def test_permanent_errors_read_as_one_sentence(code: str, words: str) -> None:
    error = translate(client_error(code), "ListExecutions")
    assert isinstance(error, AwsPermanentError) and not error.transient
    assert str(error).startswith("ListExecutions: ") and words in str(error)


def test_an_expired_token_from_aws_stops_the_call_without_retrying(sync_sandbox: Sandbox) -> None:
    account = register(sync_sandbox, name=f"stub-{uuid.uuid4().hex[:6]}")
    api = AwsApi(account, "us-east-1", rate_limited=False)
    client = api.client("stepfunctions")
    with Stubber(client) as stub:
        stub.add_client_error(
            "list_state_machines",
            "ExpiredTokenException",
            "The security token included in the request is expired",
        )
        with pytest.raises(AwsPermanentError, match="credentials have expired"):
            next(api.state_machine_pages())
    assert api.calls["ListStateMachines"] == 1


def _throttled_then(api: AwsApi, throttles: int) -> Stubber:
    """Stubbed answers skip botocore's own retries: each call is one attempt, as when its retry
    quota (500 units a client, drained by a long throttling spell) is spent."""
    stub = Stubber(api.client("stepfunctions"))
    for _ in range(throttles):
        stub.add_client_error("list_state_machines", "ThrottlingException", "Rate exceeded", 400)
    stub.add_response("list_state_machines", {"stateMachines": []})
    return stub


@pytest.fixture
def stub_api(sync_sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> AwsApi:
    """An unpaced AwsApi of a fresh sandbox account, our backoff shortened to milliseconds."""
    monkeypatch.setattr("connections.aws.api.OUTER_BACKOFF_SECONDS", 0.001)
    account = register(sync_sandbox, name=f"stub-{uuid.uuid4().hex[:6]}")
    return AwsApi(account, "us-east-1", rate_limited=False)


def test_a_throttling_spell_outlasts_botocores_spent_retry_quota(stub_api: AwsApi) -> None:
    api = stub_api
    with _throttled_then(api, throttles=5):
        assert next(api.state_machine_pages()) == []
    assert api.calls["ListStateMachines"] == 6


def test_throttling_that_never_ends_gives_up_as_transient(stub_api: AwsApi) -> None:
    api = stub_api
    with _throttled_then(api, throttles=6), pytest.raises(AwsTransientError):
        next(api.state_machine_pages())
    assert api.calls["ListStateMachines"] == 6


def test_the_outer_retries_stop_at_their_time_budget(
    stub_api: AwsApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Slow rounds (botocore's own retries taking their time) leave room for fewer of ours.
    monkeypatch.setattr("connections.aws.api.OUTER_BACKOFF_SECONDS", 0.2)
    monkeypatch.setattr("connections.aws.api.OUTER_BUDGET_SECONDS", 0.5)
    api = stub_api
    with _throttled_then(api, throttles=5), pytest.raises(AwsTransientError):
        next(api.state_machine_pages())
    # Waits of 0.2 and 0.4 s fit in 0.5 s only one at a time: two rounds.
    assert api.calls["ListStateMachines"] == 2


def test_credentials_check_against_the_sandbox(sync_sandbox: Sandbox) -> None:
    account = register(sync_sandbox, name="check")
    result = check_credentials(account)
    assert result.ok, result.message
    assert "authenticated as" in result.message and "us-east-1:" in result.message


def test_credentials_check_says_what_failed(sync_sandbox: Sandbox) -> None:
    account = register(sync_sandbox, name="broken")
    AwsAccount.objects.filter(pk=account.pk).update(endpoint_url=sync_sandbox.partner_url)
    account.refresh_from_db()
    result = check_credentials(account)
    assert not result.ok and result.message.startswith("Credentials of broken failed")


def test_admin_test_credentials_action_shows_the_result(
    sync_sandbox: Sandbox, admin_client: Client
) -> None:
    account = register(sync_sandbox, name="adminact")
    response = admin_client.post(
        "/admin/connections/awsaccount/",
        {"action": "test_credentials", "_selected_action": [account.pk]},
        follow=True,
    )
    assert "authenticated as" in response.content.decode()


def test_sandbox_regions_are_real_aws_regions() -> None:
    assert "us-east-1" in boto3.session.Session().get_available_regions("stepfunctions")


def test_describe_error_gives_a_failed_executions_error_and_cause(sync_sandbox: Sandbox) -> None:
    aws = Aws(sync_sandbox.endpoint_url, sync_sandbox.region)
    call = http_task({"ApiEndpoint": f"{sync_sandbox.partner_url}/status/500", "Method": "GET"})
    machine = aws.state_machine(
        {
            "StartAt": "Route",
            "States": {
                "Route": {
                    "Type": "Choice",
                    "Choices": [{"Variable": "$.ok", "BooleanEquals": True, "Next": "Done"}],
                    "Default": "Call",
                },
                "Call": call,
                "Done": {"Type": "Succeed"},
            },
        }
    )
    failed, succeeded = aws.start(machine), aws.start(machine, {"ok": True})
    aws.wait(failed)
    aws.wait(succeeded)
    api = AwsApi(register(sync_sandbox, name=unique("describe")), sync_sandbox.region)
    try:
        described = describe_error(api, failed)
        assert (described.arn, described.status) == (failed, "FAILED")
        assert described.error == "States.Http.StatusCode.500" and described.cause
        # No error in the answer (a success here; METADATA_ONLY may leave it out on AWS): None.
        quiet = describe_error(api, succeeded)
        assert (quiet.status, quiet.error, quiet.cause) == ("SUCCEEDED", None, None)
        assert api.calls["DescribeExecution"] == 2
    finally:
        aws.sfn.delete_state_machine(stateMachineArn=machine)
