"""LOG_FORMAT=json over a real sandbox sync (`manage.py sync_account` in its own process, with
the partner echoing the connection's secrets back) and over requests: one JSON object per
line with level, logger, message, the request id or the sync run and account, and no canary."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import uuid
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.test import Client

from connections.models import SyncRun
from executions.logs import ContextFilter, JsonFormatter
from sandbox.server import Sandbox
from tests.aws_sandbox import ROOT, register
from tests.executions.test_connection_secrets import TOKEN, _leaks, _run_workflow
from tests.reliability.conftest import worker_database_url

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

KEYS = {"timestamp", "level", "logger", "message", "request_id", "sync_run_id", "account"}
ACCOUNT_SECRETS = ["AKIAIOSFODNN7EXAMPLE", "sandbox-secret-key-not-a-real-one"]


def _records(text: str) -> list[dict[str, Any]]:
    # The command's own progress lines ("… step", "sync_account: …") share stderr with the logs.
    lines = [line for line in text.splitlines() if not line.startswith(("… ", "sync_account: "))]
    lines = [line for line in lines if line.strip()]
    assert lines, "nothing was logged"
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    for record in records:
        assert record.keys() >= KEYS, record
    return records


def test_a_sync_logs_json_lines_with_its_run_and_account_and_no_secret(
    sync_sandbox: Sandbox,
) -> None:
    _run_workflow(sync_sandbox)
    account = register(sync_sandbox, name=f"jsonlogs-{uuid.uuid4().hex[:6]}")
    env = {
        **os.environ,
        "DATABASE_URL": worker_database_url(),
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "DEBUG",
    }
    done = subprocess.run(
        [sys.executable, "manage.py", "sync_account", account.name],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    run = SyncRun.objects.get(account=account)
    assert done.returncode in (0, 1), done.stderr[-2000:]
    records = _records(done.stderr)
    mine = [r for r in records if r["sync_run_id"] == run.pk]
    assert mine, records[-5:]
    assert {r["account"] for r in mine} == {account.name}
    assert any(r["logger"] == "executions.sync.step" and r["level"] == "DEBUG" for r in mine)
    logged = done.stderr + done.stdout
    assert not _leaks(logged), f"logs hold {_leaks(logged)}"
    assert TOKEN not in logged
    assert not [s for s in ACCOUNT_SECRETS if s in logged]


def test_a_request_logs_json_with_its_request_id_returned_and_no_secret() -> None:
    # The console handler settings.LOGGING built (with its filters), given the formatter
    # LOG_FORMAT=json selects and a buffer for a stream.
    (console,) = [
        h
        for h in logging.getLogger().handlers
        if isinstance(h, logging.StreamHandler)
        and any(isinstance(f, ContextFilter) for f in h.filters)
    ]
    assert {type(f).__name__ for f in console.filters} == {"RedactingLogFilter", "ContextFilter"}
    formatters: Any = django_settings.LOGGING["formatters"]
    assert formatters["json"]["()"] == "executions.logs.JsonFormatter"
    buffer, formatter = io.StringIO(), console.formatter
    stream = console.setStream(buffer)
    console.setFormatter(JsonFormatter())
    canary = f"sk_live_{uuid.uuid4().hex}"
    try:
        given = Client().get(f"/nope/{canary}/", HTTP_X_REQUEST_ID="lb-7f3a.42")
        made = Client().get(f"/nope/{canary}/", HTTP_X_REQUEST_ID="not an id\u2028{}")
    finally:
        console.setFormatter(formatter)
        console.setStream(stream)
    text = buffer.getvalue()
    assert given.status_code == made.status_code == 404
    assert given["X-Request-Id"] == "lb-7f3a.42"
    assert len(made["X-Request-Id"]) == 32 and made["X-Request-Id"] != given["X-Request-Id"]
    records = [r for r in _records(text) if r["logger"] == "django.request"]
    assert [r["request_id"] for r in records] == [given["X-Request-Id"], made["X-Request-Id"]]
    assert records[0]["level"] == "WARNING" and "Not Found: /nope/" in records[0]["message"]
    assert canary not in text and "[redacted:" in records[0]["message"]
