"""Retention: old executions and their attempts go in bounded batches, groups and endpoints
are recounted from what is left, and a second run changes nothing."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import uuid
from datetime import datetime, timedelta
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError, SystemCheckError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from alerts.models import Alert, AlertRule
from connections.models import AwsAccount, Endpoint
from executions import retention
from executions.choices import ExecutionStatus, GroupStatus
from executions.models import Execution, FailureGroup, HttpAttempt
from executions.tasks import prune_old_executions
from tests.factories import (
    EndpointFactory,
    ExecutionFactory,
    FailureGroupFactory,
    HttpAttemptFactory,
    StateMachineFactory,
)

pytestmark = pytest.mark.django_db

WORKER_COMMAND = [sys.executable, "-m", "celery", "-A", "dashboard", "worker", "--pool", "solo"]
WORKER_COMMAND += ["--without-mingle", "--without-gossip", "--without-heartbeat", "-l", "WARNING"]


def _execution(account: AwsAccount, stopped: datetime | None, **kw: Any) -> Execution:
    machine = StateMachineFactory.create(account=account)
    start = (stopped or timezone.now() - timedelta(days=40)) - timedelta(seconds=3)
    return ExecutionFactory.create(state_machine=machine, start_date=start, stop_date=stopped, **kw)


def _attempt(execution: Execution, at: datetime, **kw: Any) -> HttpAttempt:
    return HttpAttemptFactory.create(execution=execution, occurred_at=at, **kw)


@pytest.fixture
def world(account: AwsAccount) -> dict[str, Any]:
    now = timezone.now()
    old, older, recent = now - timedelta(days=40), now - timedelta(days=50), now - timedelta(days=1)
    endpoint = EndpointFactory.create(account=account, first_seen_at=now - timedelta(days=60))
    mixed = FailureGroupFactory.create(
        account=account, first_seen_at=older, last_seen_at=recent, count=3
    )
    stale_open = FailureGroupFactory.create(account=account, first_seen_at=older, last_seen_at=old)
    stale_resolved = FailureGroupFactory.create(
        account=account,
        first_seen_at=older,
        last_seen_at=old,
        status=GroupStatus.RESOLVED,
        status_changed_at=old,
    )
    fresh = FailureGroupFactory.create(account=account, first_seen_at=recent, last_seen_at=recent)
    gone = _execution(account, old)
    _attempt(gone, older, failure_group=mixed, endpoint=endpoint)
    _attempt(gone, old, failure_group=stale_open, endpoint=endpoint)
    _attempt(_execution(account, old), old, failure_group=stale_resolved)
    _attempt(_execution(account, older), older, failure_group=mixed)
    kept = _execution(account, recent)
    kept_attempt = _attempt(kept, recent, failure_group=mixed, endpoint=endpoint)
    _attempt(kept, recent, failure_group=fresh)
    # Started long ago, still running: kept until it has stopped and aged.
    running = _execution(account, None, status=ExecutionStatus.RUNNING)
    _attempt(running, old, succeeded=True)
    return {
        "now": now,
        "kept": kept,
        "running": running,
        "kept_attempt": kept_attempt,
        "endpoint": endpoint,
        "mixed": mixed,
        "stale_open": stale_open,
        "stale_resolved": stale_resolved,
        "fresh": fresh,
    }


def _state() -> tuple[Any, ...]:
    return (
        sorted(Execution.objects.values_list("pk", flat=True)),
        sorted(HttpAttempt.objects.values_list("pk", flat=True)),
        sorted(FailureGroup.objects.values_list("pk", "count", "first_seen_at", "last_seen_at")),
        sorted(Endpoint.objects.values_list("pk", "first_seen_at", "last_seen_at")),
    )


def test_prune_deletes_what_is_old_keeps_the_rest_and_recounts(world: dict[str, Any]) -> None:
    result = retention.prune(30)

    assert (result.executions, result.attempts) == (3, 4)
    assert set(Execution.objects.values_list("pk", flat=True)) == {
        world["kept"].pk,
        world["running"].pk,
    }
    assert HttpAttempt.objects.count() == 3
    mixed = FailureGroup.objects.get(pk=world["mixed"].pk)
    assert mixed.count == 1
    assert mixed.first_seen_at == mixed.last_seen_at == world["kept_attempt"].occurred_at
    # Empty and open: nothing to show, deleted. Empty but resolved: kept at 0, still resolved.
    assert not FailureGroup.objects.filter(pk=world["stale_open"].pk).exists()
    resolved = FailureGroup.objects.get(pk=world["stale_resolved"].pk)
    assert (resolved.count, resolved.status) == (0, GroupStatus.RESOLVED)
    assert resolved.last_seen_at == world["stale_resolved"].last_seen_at
    assert FailureGroup.objects.get(pk=world["fresh"].pk).count == 1
    endpoint = Endpoint.objects.get(pk=world["endpoint"].pk)
    assert endpoint.first_seen_at == world["kept_attempt"].occurred_at
    assert endpoint.last_seen_at == world["endpoint"].last_seen_at

    before = _state()
    again = retention.prune(30)
    assert (again.executions, again.attempts, again.groups_deleted) == (0, 0, 0)
    assert _state() == before


def test_every_delete_is_bounded_by_the_batch(
    account: AwsAccount, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(retention, "BATCH", 3)
    old = timezone.now() - timedelta(days=40)
    for _ in range(7):
        execution = _execution(account, old)
        _attempt(execution, old)
        _attempt(execution, old)
    _attempt(_execution(account, timezone.now()), timezone.now())

    with CaptureQueriesContext(connection) as queries:
        result = retention.prune(30)

    deletes = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("DELETE")]
    by_table: dict[str, int] = {}
    for sql in deletes:
        table = re.match(r'DELETE FROM "(\w+)"', sql)
        assert table, sql
        by_table[table[1]] = by_table.get(table[1], 0) + 1
        ids = re.search(r"IN \(([^)]*)\)", sql)
        assert ids and len(ids[1].split(",")) <= 3, sql
    assert (result.executions, result.attempts) == (7, 14)
    # 14 attempts in batches of 3: 5 statements; 7 executions: 3. Executions have Map Run
    # relations, so Django's cascade collects (selects, bounded by the same ids) the attempts
    # a sync might have added meanwhile and deletes only those it finds: none here.
    assert by_table["executions_execution"] == 3
    assert by_table["executions_httpattempt"] == 5
    assert Execution.objects.count() == HttpAttempt.objects.count() == 1


def test_the_prune_query_uses_the_stop_index() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
    plan = retention.old_executions(timezone.now()).values("pk").explain()
    assert "exec_stop" in plan, plan


def test_command_dry_run_counts_and_deletes_nothing(world: dict[str, Any]) -> None:
    before = _state()
    out = StringIO()
    call_command("prune", "--dry-run", "--days", "30", stdout=out)
    assert "Would delete 3 execution(s) and 4 attempt(s)" in out.getvalue()
    assert _state() == before

    out = StringIO()
    call_command("prune", stdout=out)  # RETENTION_DAYS defaults to 30
    assert "Deleted 3 execution(s) and 4 attempt(s)" in out.getvalue()
    assert Execution.objects.count() == 2
    with pytest.raises(CommandError, match="--days must be a whole number"):
        call_command("prune", "--days", "a week")


def test_zero_keeps_everything(world: dict[str, Any], settings: Any) -> None:
    settings.STEPSCOPE = {**settings.STEPSCOPE, "RETENTION_DAYS": "0"}
    before = _state()
    out = StringIO()
    call_command("prune", stdout=out)
    assert "Retention is 0 days" in out.getvalue()
    assert prune_old_executions()["executions"] == 0
    assert _state() == before


@pytest.mark.parametrize("raw", ["thirty", "-1", "1.5"])
def test_a_bad_retention_fails_the_system_check(raw: str, settings: Any) -> None:
    settings.STEPSCOPE = {**settings.STEPSCOPE, "RETENTION_DAYS": raw}
    with pytest.raises(SystemCheckError, match=r"stepscope\.E003"):
        call_command("check")
    assert retention.prune().cutoff is None  # and the task prunes nothing meanwhile


def test_the_beat_task_prunes(world: dict[str, Any], settings: Any) -> None:
    from dashboard.celery import app

    entry = settings.CELERY_BEAT_SCHEDULE["prune-old-executions"]
    assert entry["task"] in app.tasks
    result = app.tasks[entry["task"]].apply().get()
    assert (result["executions"], result["attempts"]) == (3, 4)
    assert Execution.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_two_runs_at_once_share_the_work(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two workers pruning at the same moment: SKIP LOCKED gives each other rows, so together
    they delete each row once, and the result is what one run leaves."""
    monkeypatch.setattr(retention, "BATCH", 1)
    start = threading.Barrier(2)
    results: list[retention.PruneResult] = []

    def run() -> None:
        try:
            start.wait(timeout=10)
            results.append(retention.prune(30))
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert len(results) == 2
    assert sum(r.executions for r in results) == 3
    assert sum(r.attempts for r in results) == 4
    assert set(Execution.objects.values_list("pk", flat=True)) == {
        world["kept"].pk,
        world["running"].pk,
    }
    assert FailureGroup.objects.get(pk=world["mixed"].pk).count == 1
    assert not FailureGroup.objects.filter(pk=world["stale_open"].pk).exists()


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_runs_the_beat_task(world: dict[str, Any], tmp_path: Path) -> None:
    """The task as the beat sends it, by name, to a real `celery worker` on the test database."""
    from dashboard.celery import app

    s = connection.settings_dict
    database = f"postgres://{s['USER']}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"
    queue = f"retention-{uuid.uuid4().hex[:8]}"
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        worker = subprocess.Popen(
            [*WORKER_COMMAND, "-Q", queue, "-n", f"{queue}@%h"],
            cwd=Path(__file__).resolve().parents[2],
            env={**os.environ, "DATABASE_URL": database},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        sent = app.send_task("executions.tasks.prune_old_executions", queue=queue)
        result = sent.get(timeout=90)
    finally:
        worker.terminate()
        worker.wait(timeout=20)
    assert (result["executions"], result["attempts"]) == (3, 4), log.read_text()
    assert Execution.objects.count() == 2


def test_an_emptied_open_group_an_alert_names_is_kept(world: dict[str, Any]) -> None:
    # The alert raised for it would lose its link (SET_NULL): grouping.drop_empty_open keeps it.
    rule = AlertRule.objects.create(name="team", events=["new_group"], webhook_url="https://x.test")
    Alert.objects.create(rule=rule, key="opened:stale", group=world["stale_open"])
    result = retention.prune(30)
    kept = FailureGroup.objects.get(pk=world["stale_open"].pk)
    assert (kept.count, kept.status, result.groups_deleted) == (0, GroupStatus.OPEN, 0)
