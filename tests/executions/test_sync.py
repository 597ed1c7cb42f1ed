"""End-to-end ingestion: sandbox (real moto over HTTP) → sync → PostgreSQL, compared with AWS's own view.

The ground truth is read independently with plain boto3 from the same sandbox: every HTTP
TaskScheduled of every Standard history, every HTTP TaskScheduled in the Express logs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from django.db import connection
from django.db.models import Count, Max, Min

from connections.models import AwsAccount, Connection, ConnectionStateChange, Endpoint, SyncRun
from executions.models import Execution, FailureGroup, HttpAttempt, StateMachine
from executions.sync import begin_sync, sync_account_by_id
from sandbox import scenarios
from sandbox.server import Sandbox
from tests.aws_sandbox import ROOT, register, sandbox_client

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture(scope="module")
def seeded(sync_sandbox: Sandbox) -> Sandbox:
    scenarios.run(sync_sandbox.endpoint_url, region=sync_sandbox.region, executions=60, seed=11)
    return sync_sandbox


def _http_calls(events: list[dict[str, Any]]) -> tuple[int, Counter[str], set[str]]:
    """(HTTP TaskScheduled count, error names of HTTP TaskFailed, connection ARNs used)."""
    scheduled, errors, connections = 0, Counter[str](), set()
    for event in events:
        kind = event["type"]
        detail: dict[str, Any] = next(
            (v for k, v in event.items() if k.endswith("EventDetails")), {}
        )
        if detail.get("resourceType") != "http":
            continue
        if kind == "TaskScheduled":
            scheduled += 1
            params = json.loads(detail.get("parameters") or "{}")
            arn = (params.get("InvocationConfig") or params.get("Authentication") or {}).get(
                "ConnectionArn"
            )
            if arn:
                connections.add(arn)
        elif kind in ("TaskFailed", "TaskTimedOut"):
            errors[detail.get("error", "")] += 1
    return scheduled, errors, connections


def standard_truth(sandbox: Sandbox) -> dict[str, tuple[int, Counter[str], set[str]]]:
    sfn = sandbox_client(sandbox, "stepfunctions")
    truth = {}
    for machine in sfn.list_state_machines(maxResults=1000)["stateMachines"]:
        if machine["type"] != "STANDARD":
            continue
        for page in sfn.get_paginator("list_executions").paginate(
            stateMachineArn=machine["stateMachineArn"]
        ):
            for item in page["executions"]:
                events = [
                    e
                    for p in sfn.get_paginator("get_execution_history").paginate(
                        executionArn=item["executionArn"]
                    )
                    for e in p["events"]
                ]
                calls = _http_calls(events)
                if calls[0]:
                    truth[item["executionArn"]] = calls
    return truth


def express_truth(sandbox: Sandbox) -> dict[str, int]:
    sfn, logs = sandbox_client(sandbox, "stepfunctions"), sandbox_client(sandbox, "logs")
    counts: Counter[str] = Counter()
    for machine in sfn.list_state_machines(maxResults=1000)["stateMachines"]:
        if machine["type"] != "EXPRESS":
            continue
        conf = sfn.describe_state_machine(stateMachineArn=machine["stateMachineArn"])[
            "loggingConfiguration"
        ]
        group = conf["destinations"][0]["cloudWatchLogsLogGroup"]["logGroupArn"].split(":")[6]
        for page in logs.get_paginator("filter_log_events").paginate(logGroupName=group):
            for event in page["events"]:
                record = json.loads(event["message"])
                if (
                    record["type"] == "TaskScheduled"
                    and record["details"].get("resourceType") == "http"
                ):
                    counts[record["execution_arn"]] += 1
    return counts


def assert_matches_truth(sandbox: Sandbox) -> None:
    for arn, (scheduled, errors, connections) in standard_truth(sandbox).items():
        attempts = HttpAttempt.objects.filter(execution__arn=arn)
        sent = attempts.exclude(scheduled_event_id=None)
        assert sent.count() == scheduled, arn
        stored_errors = Counter(a.error for a in attempts.exclude(error="") if a.scheduled_event_id)
        assert stored_errors == errors, arn
        assert (
            set(sent.exclude(connection_arn="").values_list("connection_arn", flat=True))
            <= connections
        )
        for attempt in sent:
            if attempt.error.startswith("States.Http.StatusCode."):
                assert attempt.status_code == int(attempt.error.rsplit(".", 1)[1])
    for arn, scheduled in express_truth(sandbox).items():
        assert (
            HttpAttempt.objects.filter(execution__arn=arn).exclude(scheduled_event_id=None).count()
            == scheduled
        ), arn


def assert_attempt_numbers_are_contiguous() -> None:
    runs: dict[tuple[int, str, str, int | None], list[int]] = defaultdict(list)
    for a in HttpAttempt.objects.exclude(scheduled_event_id=None):
        runs[(a.execution_id, a.state_name, a.branch_path, a.entered_event_id)].append(
            a.attempt_number
        )
    assert runs
    for key, numbers in runs.items():
        assert sorted(numbers) == list(range(1, len(numbers) + 1)), key


def assert_groups_and_endpoints_are_exact() -> None:
    """Counts and seen times are written in batches: they must still equal the attempts."""
    spans = {"first": Min("attempts__occurred_at"), "last": Max("attempts__occurred_at")}
    groups = FailureGroup.objects.values("pk", "count", "first_seen_at", "last_seen_at").annotate(
        n=Count("attempts"), **spans
    )
    assert groups
    for g in groups:
        assert (g["count"], g["first_seen_at"], g["last_seen_at"]) == (
            g["n"],
            g["first"],
            g["last"],
        )
    for e in Endpoint.objects.values("pk", "first_seen_at", "last_seen_at").annotate(**spans):
        assert (e["first_seen_at"], e["last_seen_at"]) == (e["first"], e["last"])


def test_sync_stores_every_attempt_the_sandbox_ran(seeded: Sandbox) -> None:
    account = register(seeded)
    summary = sync_account_by_id(account.pk)
    assert summary["status"] == "ok", summary["errors"]
    assert_matches_truth(seeded)
    assert_attempt_numbers_are_contiguous()
    assert Execution.objects.filter(source="logs").exists(), "Express executions come from logs"
    assert HttpAttempt.objects.exclude(connection=None).exists()
    failing = HttpAttempt.objects.failing()
    assert failing.exists() and not failing.filter(category="").exists()
    assert_groups_and_endpoints_are_exact()
    assert StateMachine.objects.filter(type="EXPRESS").exists()


def test_second_sync_adds_nothing_and_reads_no_history(seeded: Sandbox) -> None:
    account = register(seeded)
    sync_account_by_id(account.pk)
    counts = (
        Execution.objects.count(),
        HttpAttempt.objects.count(),
        ConnectionStateChange.objects.count(),
    )
    again = sync_account_by_id(account.pk)
    assert again["api_calls"].get("GetExecutionHistory", 0) == 0
    assert again["executions_added"] == again["attempts_added"] == 0
    assert (
        Execution.objects.count(),
        HttpAttempt.objects.count(),
        ConnectionStateChange.objects.count(),
    ) == counts


def test_deauthorized_connection_is_recorded_in_its_history(seeded: Sandbox) -> None:
    account = register(seeded)
    sync_account_by_id(account.pk)
    deauthorized = Connection.objects.filter(state="DEAUTHORIZED")
    assert deauthorized.exists(), "the seeded 401 de-authorizes a Basic/API-key connection"
    change = ConnectionStateChange.objects.filter(
        connection__in=deauthorized, state="DEAUTHORIZED"
    ).first()
    assert change is not None and change.reason
    cascade = HttpAttempt.objects.filter(
        error="Events.ConnectionResource.InvalidConnectionState"
    ).first()
    if cascade is not None:
        assert cascade.category == "auth"
        assert "UpdateConnection" in cascade.hint


def test_sync_survives_throttling_and_server_errors(seeded: Sandbox) -> None:
    account = register(seeded)
    faults = f"{seeded.endpoint_url}/_sandbox/faults"
    requests.post(faults, json={"*": {"throttle": 0.3, "error": 0.1}}, timeout=5).raise_for_status()
    try:
        summary = sync_account_by_id(account.pk)
        injected = requests.get(faults, timeout=5).json()
    finally:
        requests.delete(faults, timeout=5)
    assert summary["status"] == "ok", summary["errors"]
    assert json.dumps(injected).count("throttle") > 0
    assert_matches_truth(seeded)


def test_a_second_trigger_while_a_sync_runs_is_a_no_op(seeded: Sandbox) -> None:
    account = register(seeded)
    assert begin_sync(account, "test") is not None
    summary = sync_account_by_id(account.pk)
    assert summary["skipped"]
    assert not Execution.objects.exists()


def test_permanent_errors_mark_the_account_failed_with_a_readable_reason(seeded: Sandbox) -> None:
    account = register(seeded)
    # The partner API answers AWS's protocol with a 404: a permanent error, not worth retrying.
    AwsAccount.objects.filter(pk=account.pk).update(endpoint_url=seeded.partner_url)
    summary = sync_account_by_id(account.pk)
    account.refresh_from_db()
    assert summary["status"] == "failed"
    assert account.sync_status == "failed"
    assert account.last_error.startswith("ListConnections: ")
    assert "Traceback" not in account.last_error


def _database_url() -> str:
    s = connection.settings_dict
    return f"postgres://{s['USER']}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


@pytest.mark.worker
def test_real_celery_worker_ingests_through_the_redis_broker(seeded: Sandbox) -> None:
    from executions.tasks import sync_account

    account = register(seeded)
    queue = f"test-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "DATABASE_URL": _database_url()}
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "dashboard",
            "worker",
            "-Q",
            queue,
            "-c",
            "1",
            "--pool",
            "solo",
            "--without-mingle",
            "--without-gossip",
            "-l",
            "WARNING",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        started = sync_account.apply_async(
            args=(account.pk,), kwargs={"trigger": "test"}, queue=queue
        )
        fanned_out = started.get(timeout=120)
        # A second trigger while the first runs is a no-op, not a duplicate sync.
        again = sync_account.apply_async(args=(account.pk,), queue=queue).get(timeout=60)
        run = SyncRun.objects.get(pk=fanned_out["run"])
        deadline = time.monotonic() + 180
        while run.finished_at is None and time.monotonic() < deadline:
            time.sleep(0.5)
            run.refresh_from_db()
    finally:
        worker.terminate()
        output = worker.communicate(timeout=30)[0]
    assert fanned_out["state_machines"] > 1, "one task per state machine"
    assert again == {"skipped": "a sync of this account is already running"} or run.finished_at
    assert run.finished_at is not None, output[-3000:]
    assert run.status == "ok", (run.errors, output[-2000:])
    assert run.executions_added > 0 and run.api_calls["GetExecutionHistory"] > 0
    assert_matches_truth(seeded)
    assert "Traceback" not in output


def test_sync_account_command_prints_a_summary(seeded: Sandbox) -> None:
    register(seeded, name="cmd")
    proc = subprocess.run(
        [sys.executable, "manage.py", "sync_account", "cmd"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "DATABASE_URL": _database_url()},
        check=False,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "executions added" in proc.stdout and "GetExecutionHistory" in proc.stdout
    missing = subprocess.run(
        [sys.executable, "manage.py", "sync_account", "nope"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "DATABASE_URL": _database_url()},
        check=False,
        timeout=60,
    )
    assert missing.returncode == 1 and "no account named 'nope'" in missing.stderr


@pytest.fixture
def refuse_every_attempt() -> Iterator[None]:
    """A PostgreSQL trigger that refuses every stored attempt: each execution fails to be
    written, so the run ends partial (the database itself is the fault)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            CREATE FUNCTION test_refuse_attempt() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION 'injected failure for event %', NEW.key_event_id; END $$;
            CREATE TRIGGER test_refuse_attempt BEFORE INSERT ON executions_httpattempt
            FOR EACH ROW EXECUTE FUNCTION test_refuse_attempt();
            """
        )
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(
                "DROP TRIGGER IF EXISTS test_refuse_attempt ON executions_httpattempt;"
                "DROP FUNCTION IF EXISTS test_refuse_attempt();"
            )


def _sync_command(name: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", "sync_account", name],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "DATABASE_URL": _database_url()},
        check=False,
        timeout=300,
    )


def test_sync_account_command_exits_1_and_says_why_when_the_run_ends_partial(
    seeded: Sandbox, refuse_every_attempt: None
) -> None:
    register(seeded, name="cmd")
    proc = _sync_command("cmd")
    run = SyncRun.objects.get(account__name="cmd")
    assert run.status == "partial" and run.errors, run.errors
    assert proc.returncode == 1, proc.stdout + proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    problems = len(run.errors) + len(run.unreadable)
    assert last.startswith(f"sync_account: sync of 'cmd' ended partial: {problems} errors;")
    assert "injected failure for event" in last
    assert "Traceback" not in proc.stderr


def test_sync_account_command_exits_1_and_says_why_when_the_run_fails(seeded: Sandbox) -> None:
    account = register(seeded, name="cmd")
    # The partner API answers AWS's protocol with a 404: a permanent error fails the run.
    AwsAccount.objects.filter(pk=account.pk).update(endpoint_url=seeded.partner_url)
    proc = _sync_command("cmd")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("sync_account: sync of 'cmd' ended failed: 1 error; the first: ")
    assert "ListConnections" in last
