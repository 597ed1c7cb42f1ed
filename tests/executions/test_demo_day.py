"""The demo's day (`make demo`): a sandbox process runs sandbox.day's plan, Stepscope's sync
reads it as it would read AWS, and the attempts land over the day with the incident the
busiest hour for failures; a second `make demo` (a fresh sandbox process, the same plan) adds
nothing. Both sandboxes and the day are the commands tools/demo.sh runs."""

from __future__ import annotations

import io
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from django.core.management import call_command
from django.db.models import Count
from django.db.models.functions import TruncHour
from django.utils import timezone

from connections.models import AwsAccount, Connection, ConnectionStateChange
from executions.models import FAILING, Execution, HttpAttempt
from executions.sync import sync_account_by_id
from sandbox import clock, day
from tests.aws_sandbox import ROOT

pytestmark = pytest.mark.django_db(transaction=True)

PER_HOUR = 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def port() -> int:
    return _free_port()


def _serve(port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, "manage.py", "sandbox", "serve", "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            requests.get(f"http://127.0.0.1:{port}/_sandbox/info", timeout=1).raise_for_status()
            return process
        except requests.RequestException:
            time.sleep(0.2)
    process.kill()
    raise AssertionError("the sandbox did not answer")


@pytest.fixture
def sandbox_process(port: int) -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        process.terminate()
        process.wait(timeout=30)


def _run_day(port: int) -> str:
    done = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "sandbox",
            "day",
            "--per-hour",
            str(PER_HOUR),
            "--endpoint-url",
            f"http://127.0.0.1:{port}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _register_and_sync(port: int, secret: Path) -> dict[str, int]:
    """tools/demo.sh's register_account (in this process: the test database), then a sync."""
    secret.write_text("sandbox-secret-access-key-0000000000\n")
    call_command(
        "register_account",
        name="sandbox",
        account_id="123456789012",
        region="us-east-1",
        access_key_id="AKIAIOSFODNN7EXAMPLE",
        secret_access_key_file=str(secret),
        endpoint_url=f"http://127.0.0.1:{port}",
        stdout=io.StringIO(),
    )
    summary = sync_account_by_id(AwsAccount.objects.get(name="sandbox").pk)
    assert summary["status"] == "ok", summary["errors"]
    return {
        "accounts": AwsAccount.objects.count(),
        "connections": Connection.objects.count(),
        "executions": Execution.objects.count(),
        "attempts": HttpAttempt.objects.count(),
    }


def test_the_demo_day_synced_has_a_shape_and_a_second_demo_adds_nothing(
    port: int, sandbox_process: list[subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    plan = day.plan(PER_HOUR)
    sandbox_process.append(_serve(port))
    _run_day(port)
    first = _register_and_sync(port, tmp_path / "secret")
    now = timezone.now()

    days = Execution.objects.filter(name__startswith="day-")
    assert days.count() == len(plan) == first["executions"]
    oldest = days.order_by("start_date").values_list("start_date", flat=True).first()
    assert oldest is not None and oldest < now - timedelta(days=3), "a few days before"

    hours = list(
        HttpAttempt.objects.annotate(hour=TruncHour("occurred_at"))
        .values("hour")
        .annotate(n=Count("id"), failed=Count("id", filter=FAILING))
        .order_by("hour")
    )
    last_day = [h for h in hours if h["hour"] >= now - timedelta(hours=24)]
    assert len(last_day) >= 20, [h["hour"] for h in hours]
    busiest = max(hours, key=lambda h: h["failed"])
    incident = now - timedelta(hours=day.INCIDENT_HOURS_AGO)
    # The incident's half-hour lies in one or two clock hours, 6 to 6.5 hours ago.
    assert incident - timedelta(hours=2) < busiest["hour"] < incident, (busiest, incident)
    assert busiest["failed"] >= 3 * max(
        h["failed"] for h in hours if abs(h["hour"] - busiest["hour"]) > timedelta(hours=1)
    )
    quiet = [now - timedelta(hours=h) for h in day.QUIET_HOURS]
    assert not HttpAttempt.objects.failing().filter(
        occurred_at__gte=min(quiet) - timedelta(hours=1), occurred_at__lt=max(quiet)
    ), "the night is quiet"
    # The de-authorization cascade: the CRM's first 401 and the refused calls after it.
    crm = HttpAttempt.objects.filter(execution__name__startswith="day-crm-rotated-")
    assert crm.filter(status_code=401).exists()
    assert crm.filter(error="Events.ConnectionResource.InvalidConnectionState").count() >= 2
    # ... dated at the incident, as Stepscope reads it from DescribeConnection's LastModifiedTime.
    assert Connection.objects.get(name="sandbox-crm-rotated").state == "DEAUTHORIZED"
    change = ConnectionStateChange.objects.get(
        connection__name="sandbox-crm-rotated", state="DEAUTHORIZED"
    )
    assert incident - timedelta(minutes=31) < change.changed_at < incident, change.changed_at
    # The connections existed before the day's first execution.
    made = Connection.objects.values_list("aws_created_at", flat=True)
    assert oldest is not None and all(at is not None and at < oldest for at in made), made
    slowed = HttpAttempt.objects.filter(execution__name__startswith="day-hook-slowed-")
    assert slowed.exists() and all(a.duration_ms and a.duration_ms >= 1000 for a in slowed)

    # A second `make demo`: a fresh sandbox process runs the same day, the same account syncs.
    sandbox_process[0].terminate()
    sandbox_process[0].wait(timeout=30)
    sandbox_process.append(_serve(port))
    assert "executions" in _run_day(port)
    assert _register_and_sync(port, tmp_path / "secret") == first
    # The same sandbox asked for the day again starts nothing.
    assert "already on this sandbox" in _run_day(port)


def test_clock_refuses_what_is_not_a_plan_with_a_400(
    port: int, sandbox_process: list[subprocess.Popen[bytes]]
) -> None:
    sandbox_process.append(_serve(port))
    url = f"http://127.0.0.1:{port}/_sandbox/clock"
    for body in (
        b"[",
        b"[]",
        b'{"shifts": 3}',
        b'{"shifts": {"a": "x"}}',
        b'{"shifts": {"a": -1}}',
        b'{"connections": {"arn:aws:events:us-east-1:1:connection/none/x": 5}}',
        b'{"connections": []}',
    ):
        answer = requests.post(url, data=body, timeout=10)
        assert answer.status_code == 400, (body, answer.text)
    ok = requests.post(url, json={"shifts": {"x-1": 60}}, timeout=10)
    assert ok.json() == {"shifts": 1, "known": 0}
    assert requests.post(url, json={"shifts": {"x-1": 60}}, timeout=10).json()["known"] == 1


def test_back_moves_every_timestamp_form_and_leaves_the_rest() -> None:
    shift = timedelta(hours=2)
    at = timezone.now()
    assert clock.back(at, shift) == at - shift
    assert clock.back(1_000_000_000_000, shift) == 1_000_000_000_000 - 7_200_000
    assert clock.back("1000000000000", shift) == str(1_000_000_000_000 - 7_200_000)
    assert clock.back("2026-12-03T08:00:00.000Z", shift) == "2026-12-03T06:00:00.000+00:00"
    assert clock.back("not a time", shift) == "not a time"
    assert clock.back(at, None) == at
