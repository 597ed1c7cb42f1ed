"""A failed HTTP attempt to replay: a POST through a connection that adds canary secrets (Basic
auth and a secret header), missing the header the partner requires, synced into Stepscope."""

from __future__ import annotations

import json
from dataclasses import dataclass

from connections.models import AwsAccount
from executions.models import HttpAttempt
from executions.sync import sync_account_by_id
from sandbox import ACCOUNT_ID, partner
from sandbox.server import Sandbox
from tests.aws_sandbox import sandbox_client
from tests.sandbox.support import Aws, http_task, single_state, unique

CANARY_HEADER = "canary-signing-secret-5c1e9a7b"
CANARY_INPUT = "canary-input-token-83f2d1"
CANARY_PASSWORD = partner.BASIC_PASSWORD
# The replay suites' own region of the session's sandbox (moto keeps one state per region): the
# account they register reads only their machines. In the session's region it read every other
# suite's too — minutes a sync in a full run — and their calls to /orders were the endpoint's.
REPLAY_REGION = "ca-central-1"


@dataclass(frozen=True)
class Failed:
    attempt: HttpAttempt
    connection_arn: str


def reveal_role(sandbox: Sandbox) -> str:
    """An execution role whose policy allows states:RevealSecrets (the sandbox asks the role)."""
    iam = sandbox_client(sandbox, "iam")
    name = unique("replayer")
    iam.create_role(
        RoleName=name,
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
    )
    statement = {"Effect": "Allow", "Action": "states:RevealSecrets", "Resource": "*"}
    iam.put_role_policy(
        RoleName=name,
        PolicyName="reveal",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [statement]}),
    )
    return f"arn:aws:iam::{ACCOUNT_ID}:role/{name}"


def order_call(partner_url: str, connection: str, **extra: object) -> dict[str, object]:
    return {
        "ApiEndpoint": f"{partner_url}/orders",
        "Method": "POST",
        "Headers": {"Content-Type": "application/json"},
        "RequestBody": {"customerId.$": "$.customer", "amount.$": "$.amount"},
        "InvocationConfig": {"ConnectionArn": connection},
        **extra,
    }


def failed_order(
    sandbox: Sandbox,
    account: AwsAccount,
    call: dict[str, object] | None = None,
    *,
    succeed_first: bool = False,
    assign: dict[str, object] | None = None,
    **state_fields: object,
) -> Failed:
    """The failed attempt; with `succeed_first`, a successful call to the same endpoint (the
    header the partner wants sent) runs before it: the endpoint's last success."""
    aws = Aws(sandbox.endpoint_url, REPLAY_REGION)
    connection = aws.connection(
        "BASIC",
        {"BasicAuthParameters": {"Username": partner.BASIC_USERNAME, "Password": CANARY_PASSWORD}},
        invocation={
            "HeaderParameters": [
                {"Key": "X-Signing-Key", "Value": CANARY_HEADER, "IsValueSecret": True}
            ]
        },
    )
    definition = single_state(
        http_task(order_call(sandbox.partner_url, connection, **(call or {})), **state_fields)
    )
    if "Catch" in state_fields:
        definition["States"]["Fix"] = {"Type": "Pass", "End": True}
    if assign:
        definition["States"]["Config"] = {"Type": "Pass", "Assign": assign, "Next": "Call"}
        definition["StartAt"] = "Config"
    if succeed_first:
        fixed = order_call(sandbox.partner_url, connection, **(call or {}))
        fixed["Headers"] = {"Content-Type": "application/json", "Idempotency-Key": "ok-1"}
        good = aws.sfn.create_state_machine(
            name=unique("orders-ok"),
            definition=json.dumps(single_state(http_task(fixed))),
            roleArn=reveal_role(sandbox),
        )["stateMachineArn"]
        ok = aws.start(good, {"customer": "c-0", "amount": 1})
        assert aws.wait(ok).status == "SUCCEEDED"
    machine = aws.sfn.create_state_machine(
        name=unique("orders"), definition=json.dumps(definition), roleArn=reveal_role(sandbox)
    )["stateMachineArn"]
    arn = aws.start(machine, {"customer": "c-1", "amount": 5, "apiToken": CANARY_INPUT})
    assert aws.wait(arn).status in ("FAILED", "SUCCEEDED")  # SUCCEEDED: caught
    sync_account_by_id(account.pk, trigger="test")
    return Failed(HttpAttempt.objects.get(execution__arn=arn), connection)
