"""`/metrics` after a real sandbox sync (throttles injected by the sandbox), parsed with
prometheus-client's own text parser and checked against the database, the sandbox's count of
throttles and Redis; and who may read it."""

from __future__ import annotations

import contextlib
import io
import os
import re
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
from django.conf import settings as django_settings
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from connections.models import Connection, SyncRun
from executions.choices import Category
from executions.models import FailureGroup, HttpAttempt
from sandbox import scenarios
from sandbox.server import Sandbox
from tests.aws_sandbox import ROOT, register
from tests.executions.test_connection_secrets import _leaks, _run_workflow
from tests.factories import HttpAttemptFactory, UserFactory
from tests.reliability.conftest import free_port, wait_for, worker_database_url

TOKEN = "metrics-" + uuid.uuid4().hex
Samples = dict[str, list[tuple[dict[str, str], float]]]


def _scrape(client: Client, **headers: Any) -> tuple[int, str]:
    response = client.get("/metrics", **headers)
    return response.status_code, response.content.decode()


def _parse(text: str) -> Samples:
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples


def _by(samples: Samples, name: str, *labels: str, account: str) -> Counter[tuple[str, ...]]:
    found: Counter[tuple[str, ...]] = Counter()
    for got, value in samples[name]:
        if got["account"] == account:
            found[tuple(got[label] for label in labels)] += int(value)
    return found


@pytest.fixture
def metrics_settings(settings: Any) -> Any:
    settings.STEPSCOPE = {**settings.STEPSCOPE, "METRICS_TOKEN": TOKEN, "METRICS_TOP_N": 1}
    return settings


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_metrics_after_a_sandbox_sync_hold_the_series_from_the_database(
    sync_sandbox: Sandbox, metrics_settings: Any
) -> None:
    scenarios.run(sync_sandbox.endpoint_url, region=sync_sandbox.region, executions=12, seed=19)
    _run_workflow(sync_sandbox)  # the partner echoes a connection's secrets back
    account = register(sync_sandbox, name="metrics")
    queue = f"metrics-{uuid.uuid4().hex[:8]}"
    metrics_settings.STEPSCOPE = {**metrics_settings.STEPSCOPE, "METRICS_QUEUES": ["celery", queue]}
    broker = redis.Redis.from_url(django_settings.CELERY_BROKER_URL)
    broker.rpush(queue, "a", "b", "c")
    faults = f"{sync_sandbox.endpoint_url}/_sandbox/faults"
    requests.post(faults, json={"*": {"throttle": 0.15}}, timeout=5).raise_for_status()
    began = timezone.now()
    out = io.StringIO()
    try:
        # The command (issue 19 item 3: its summary line names the throttles), not the task.
        with contextlib.suppress(SystemExit):  # exit 1 when the run is partial: still summed up
            call_command("sync_account", "metrics", stdout=out, stderr=io.StringIO())
        injected = requests.get(faults, timeout=5).json()["injected"]
    finally:
        requests.delete(faults, timeout=5)
    try:
        status, text = _scrape(Client(), HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    finally:
        broker.delete(queue)
    assert status == 200, text
    assert not _leaks(text), f"/metrics holds {_leaks(text)}"
    samples = _parse(text)

    failing = HttpAttempt.objects.failing().filter(account=account)
    truth: Counter[tuple[str, ...]] = Counter()
    for category in failing.values_list("category", flat=True):
        truth[(category or "unclassified",)] += 1
    assert len(truth) >= 2, truth
    got = _by(samples, "stepscope_failing_attempts_in_window", "category", account="metrics")
    assert got == truth
    total = sum(truth.values())
    for name, keys in (
        ("stepscope_failing_attempts_by_connection_in_window", ("region", "connection")),
        ("stepscope_failing_attempts_by_endpoint_in_window", ("endpoint",)),
    ):
        series = _by(samples, name, *keys, account="metrics")
        assert sum(series.values()) == total, name  # nothing lost to the top-N cut
        assert len(series) == 2 and ("other",) * len(keys) in series, series

    groups = Counter(
        (c,)
        for c in FailureGroup.objects.filter(account=account, status="open").values_list(
            "category", flat=True
        )
    )
    assert groups
    assert _by(samples, "stepscope_open_failure_groups", "category", account="metrics") == groups
    states = Counter(
        (r, s or "UNKNOWN")
        for r, s in Connection.objects.filter(account=account).values_list("region", "state")
    )
    assert states
    assert _by(samples, "stepscope_connections", "region", "state", account="metrics") == states

    run = SyncRun.objects.get(account=account)
    sync_status = _by(samples, "stepscope_account_sync_status", "status", account="metrics")
    assert sync_status[(run.status,)] == 1 and sum(sync_status.values()) == 1
    ((labels, when),) = samples["stepscope_sync_last_success_timestamp_seconds"]
    assert labels == {"account": "metrics", "region": sync_sandbox.region}
    assert began.timestamp() <= when <= timezone.now().timestamp()
    ((_, lag),) = samples["stepscope_sync_lag_seconds"]
    assert 0 <= lag < 120

    calls = _by(samples, "stepscope_aws_api_calls_in_window", "operation", account="metrics")
    assert calls == Counter({(op,): n for op, n in run.api_calls.items()})
    throttles = _by(samples, "stepscope_aws_throttles_in_window", "operation", account="metrics")
    # Every throttle the sandbox sent, botocore's retries included, is on the run.
    sent = Counter(
        {(op,): kinds["throttle"] for op, kinds in injected.items() if "throttle" in kinds}
    )
    assert sum(sent.values()) > 0 and throttles == sent
    assert run.throttles == {op: n for (op,), n in sent.items()}
    # …and shown where people look: the command's summary line and the Sync page.
    named = ", ".join(f"{op} {n}" for op, n in sorted(run.throttles.items()))
    assert f"; throttled: {named}\n" in out.getvalue(), out.getvalue()
    admin = Client()
    admin.force_login(UserFactory.create(is_superuser=True))
    page = admin.get(reverse("dashboard:sync_status")).content.decode()
    (shown,) = re.findall(r"<div class=\"throttles\" data-throttles>(.*?)</div>", page)
    assert shown.endswith(named), shown

    queues = {labels["queue"]: value for labels, value in samples["stepscope_celery_queue_length"]}
    assert queues[queue] == 3 and "celery" in queues
    assert samples["stepscope_broker_up"] == [({}, 1.0)]


@pytest.mark.django_db
def test_metrics_need_the_bearer_token_unless_anonymous_is_set(settings: Any) -> None:
    # As Prometheus scrapes a pod: by address, over plain HTTP.
    settings.ALLOWED_HOSTS = ["stepscope.example.com"]
    settings.SECURE_SSL_REDIRECT = True
    client = Client(HTTP_HOST="10.1.2.3:8000")
    status, text = _scrape(client)
    assert status == 403 and "METRICS_TOKEN" in text
    settings.STEPSCOPE = {**settings.STEPSCOPE, "METRICS_TOKEN": TOKEN}
    assert _scrape(client)[0] == 401
    assert _scrape(client, HTTP_AUTHORIZATION=f"Bearer {TOKEN}x")[0] == 401
    assert _scrape(client, HTTP_AUTHORIZATION=f"Basic {TOKEN}")[0] == 401
    status, text = _scrape(client, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert status == 200 and "stepscope_broker_up 1.0" in text
    # The sample Grafana dashboard asks only for series that exist.
    dashboard = (ROOT / "docs" / "grafana-dashboard.json").read_text(encoding="utf-8")
    wanted = set(re.findall(r"stepscope_[a-z_]+", dashboard))
    assert wanted and wanted <= {family.name for family in text_string_to_metric_families(text)}
    settings.STEPSCOPE = {**settings.STEPSCOPE, "METRICS_TOKEN": "", "METRICS_ANONYMOUS": True}
    assert _scrape(client)[0] == 200


@pytest.mark.django_db(transaction=True)
def test_metrics_answer_503_when_the_database_is_unreachable(metrics_settings: Any) -> None:
    saved = dict(connection.settings_dict)
    connection.close()
    connection.settings_dict["HOST"], connection.settings_dict["PORT"] = "127.0.0.1", free_port()
    try:
        status, text = _scrape(Client(), HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    finally:
        connection.close()
        connection.settings_dict.update(saved)
    assert (status, text) == (503, "The database did not answer.\n")


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_every_gunicorn_worker_answers_the_same_metrics(tmp_path: Path) -> None:
    """Two gunicorn workers: one is held mid-request while the other answers a scrape, then it
    answers too. Both give the same numbers (no per-process state), and those are the
    database's."""
    HttpAttemptFactory.create_batch(3)
    HttpAttemptFactory(category=Category.TIMEOUT)
    port, log = free_port(), tmp_path / "gunicorn.log"
    env = {**os.environ, "DATABASE_URL": worker_database_url(), "METRICS_TOKEN": TOKEN}
    command = [sys.executable, "-m", "gunicorn", "dashboard.wsgi:application"]
    command += ["--bind", f"127.0.0.1:{port}", "--workers", "2", "--access-logfile", "-"]
    command += ["--access-logformat", "%(p)s %(U)s %(s)s"]
    with log.open("wb") as out:
        server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _answers(f"{base}/healthz"), "gunicorn", timeout=60)
        with socket.create_connection(("127.0.0.1", port), timeout=30) as held:
            # A sync worker takes this connection and waits for the end of its headers…
            held.sendall(
                f"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                f"Authorization: Bearer {TOKEN}\r\n".encode()
            )
            time.sleep(0.5)
            other = _scrape_over_http(base)  # …so the other worker answers this one,
            held.sendall(b"\r\n")  # and the first one answers once the request is complete.
            raw = b""
            while chunk := held.recv(65536):
                raw += chunk
    finally:
        server.terminate()
        server.wait(timeout=20)
    head, _, held_body = raw.decode().partition("\r\n\r\n")
    assert head.startswith("HTTP/1.1 200"), head
    pids = {line.split()[0] for line in log.read_text().splitlines() if " /metrics 200" in line}
    assert len(pids) == 2, log.read_text()[-2000:]
    clocked = {"stepscope_metrics_scrape_duration_seconds", "stepscope_sync_lag_seconds"}
    answers = [
        {k: v for k, v in _parse(body).items() if k not in clocked} for body in (other, held_body)
    ]
    assert answers[0] == answers[1]
    failing = answers[0]["stepscope_failing_attempts_in_window"]
    assert sorted(value for _, value in failing) == [1.0, 1.0, 1.0, 1.0]  # four accounts
    assert {labels["category"] for labels, _ in failing} == {"server_error", "timeout"}


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def _scrape_over_http(base: str) -> str:
    response = requests.get(
        f"{base}/metrics",
        headers={"Authorization": f"Bearer {TOKEN}", "Connection": "close"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return response.text
