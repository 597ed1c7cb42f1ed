"""Connection parameters whose names look innocent (`X-Partner-Ref`, `ref`, `merchant`, an
API-key header called `X-Shop`) and URL secrets in definitions, through a real sandbox sync: the
partner echoes them back, yet no stored row, log or page holds them; the connection's non-secret
parameters stay visible."""

from __future__ import annotations

import json
import logging
import time
import uuid
from typing import Any

import pytest
from django.apps import apps
from django.db import connection as db
from django.test import Client

from connections.models import Connection, Endpoint
from executions.models import Execution, FailureGroup, StateMachine
from executions.sync import sync_account_by_id
from sandbox.server import Sandbox
from tests.aws_sandbox import register, sandbox_client

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

_RUN = uuid.uuid4().hex[:8].upper()
CANARIES = {
    name: f"CANARY{_RUN}{name.upper()}"
    for name in ("connheader", "connquery", "connbody", "apikey", "userinfo")
}
# A 40-character random token as a query value under a name that says nothing.
TOKEN = uuid.uuid4().hex + "0a1b2c3d"
VISIBLE = f"eu-visible-{_RUN.lower()}"


def _run_workflow(sandbox: Sandbox) -> str:
    events, sfn = sandbox_client(sandbox, "events"), sandbox_client(sandbox, "stepfunctions")
    suffix = uuid.uuid4().hex[:6]
    conn = events.create_connection(
        Name=f"innocent-{suffix}",
        AuthorizationType="API_KEY",
        AuthParameters={
            "ApiKeyAuthParameters": {"ApiKeyName": "X-Shop", "ApiKeyValue": CANARIES["apikey"]},
            "InvocationHttpParameters": {
                "HeaderParameters": [
                    {
                        "Key": "X-Partner-Ref",
                        "Value": CANARIES["connheader"],
                        "IsValueSecret": True,
                    },
                    {"Key": "X-Partner-Region", "Value": VISIBLE, "IsValueSecret": False},
                ],
                "QueryStringParameters": [
                    {"Key": "ref", "Value": CANARIES["connquery"], "IsValueSecret": True}
                ],
                "BodyParameters": [
                    {"Key": "merchant", "Value": CANARIES["connbody"], "IsValueSecret": True}
                ],
            },
        },
    )["ConnectionArn"]
    host = sandbox.partner_url.split("://", 1)[1]
    echo = (
        f"http://deploy:{CANARIES['userinfo']}@{host}/echo"
        f"?reflect=X-Partner-Ref&reflect=X-Shop&reflect=X-Partner-Region&tag={TOKEN}"
    )
    call: dict[str, Any] = {
        "Type": "Task",
        "Resource": "arn:aws:states:::http:invoke",
        "Parameters": {
            "ApiEndpoint": echo,
            "Method": "POST",
            "InvocationConfig": {"ConnectionArn": conn},
            "RequestBody": {"order": 7},
        },
    }
    # Nothing listens on port 9: the socket error names the URL, connection query included.
    down = dict(call, Parameters=dict(call["Parameters"], ApiEndpoint="http://127.0.0.1:9/down"))
    definition = {
        "StartAt": "Echo",
        "States": {"Echo": dict(call, Next="Down"), "Down": dict(down, End=True)},
    }
    machine = sfn.create_state_machine(
        name=f"innocent-{suffix}",
        definition=json.dumps(definition),
        roleArn="arn:aws:iam::123456789012:role/sandbox",
    )["stateMachineArn"]
    arn = str(sfn.start_execution(stateMachineArn=machine, input="{}")["executionArn"])
    for _ in range(300):
        if sfn.describe_execution(executionArn=arn)["status"] != "RUNNING":
            return arn
        time.sleep(0.1)
    raise AssertionError("the execution did not finish")


def _stored_texts() -> str:
    """Every text and JSON column of every project table, as one string."""
    parts = []
    for model in apps.get_models():
        if model._meta.app_label not in ("connections", "executions"):
            continue
        table = db.ops.quote_name(model._meta.db_table)
        with db.cursor() as cursor:
            cursor.execute(f"SELECT row_to_json(t)::text FROM {table} t")  # noqa: S608
            parts += [row[0] for row in cursor.fetchall()]
    return "\n".join(parts)


def _leaks(text: str) -> list[str]:
    return [name for name, value in CANARIES.items() if value in text]


def test_innocent_named_connection_secrets_and_url_secrets_never_land(
    sync_sandbox: Sandbox, caplog: pytest.LogCaptureFixture, admin_client: Client
) -> None:
    arn = _run_workflow(sync_sandbox)
    account = register(sync_sandbox, name="innocent")
    with caplog.at_level(logging.DEBUG):
        sync_account_by_id(account.pk, trigger="test")
    execution = Execution.objects.get(arn=arn)
    echoed = execution.attempts.get(outcome="succeeded")
    # Other suites run this workflow on the same sandbox too: this execution's connection.
    names = Connection.objects.get(arn=echoed.connection_arn).invocation_parameter_names
    assert names["secret"] == ["X-Partner-Ref", "ref", "merchant", "X-Shop"]
    assert "X-Partner-Region" in names["headers"]
    assert VISIBLE in echoed.response_body, "a non-secret connection parameter stays visible"
    assert echoed.response_headers["x-partner-region"] == [VISIBLE]
    assert echoed.response_headers["x-partner-ref"][0].startswith("[redacted:")
    down = execution.attempts.exclude(outcome="succeeded").get()
    assert "ref=[redacted:" in down.cause, down.cause

    stored = _stored_texts()
    assert execution.arn in stored
    assert not _leaks(stored), f"stored rows hold {_leaks(stored)}"
    assert not _leaks(caplog.text), "logs"

    # Every stored URL went through the URL rules: user-info and the token query value gone.
    machine = StateMachine.objects.get(pk=execution.state_machine_id)
    endpoint = machine.http_states["Echo"]["endpoint"]
    urls = {
        "attempt url": echoed.url,
        "definition": machine.definition,
        "http_states": endpoint,
        "endpoint templates": " ".join(Endpoint.objects.values_list("url_template", flat=True)),
    }
    for where, text in urls.items():
        assert "deploy:" not in text and TOKEN not in text, where
    assert endpoint.startswith("http://[redacted:") and "/echo?reflect=X-Partner-Ref" in endpoint
    assert echoed.url.startswith("http://[redacted:") and "tag=[redacted:" in echoed.url

    pages = [execution.get_absolute_url(), "/executions/", "/executions/groups/", "/sync/"]
    pages += [c.get_absolute_url() for c in Connection.objects.all()]
    pages += [e.get_absolute_url() for e in Endpoint.objects.all()]
    pages += [g.get_absolute_url() for g in FailureGroup.objects.all()]
    pages += ["/executions/export.csv"]
    for page in pages:
        response = admin_client.get(page)
        assert response.status_code == 200, page
        body = b"".join(response) if response.streaming else response.content
        assert not _leaks(body.decode()), page
