"""Part 3, dashboard: p50/p95 of each page through a real HTTP server, its SQL query count, and
its time against the bare SQL of its main query, timed side by side.

The server is gunicorn (as in production) on 127.0.0.1 with two sync workers, fed one request at
a time, logged in with a real session cookie. Query counts come from the same views run
in-process through Django's test client, apart from the timed requests.
"""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

from bench.common import REPO, Config, percentile, rounded, say, stopwatch

PASSWORD = "bench-password-not-secret-0000"
SAMPLE = 10  # objects each detail page rotates through


@dataclass
class Page:
    """One page and the URLs it is asked for, in rotation (detail pages: several objects)."""

    name: str
    urls: list[str]


def run_dashboard(config: Config) -> dict[str, Any]:
    from bench.seed import Seeded

    # WhiteNoise warns that collectstatic never ran; pages are timed without their assets.
    warnings.filterwarnings("ignore", message="No directory at")
    os.environ["PYTHONWARNINGS"] = "ignore:No directory at"

    say(f"dashboard: seeding {config.attempts:,} attempts with COPY")
    with stopwatch() as seed_time:
        seeded: Seeded = seed(config)
    say(f"dashboard: seeded in {seed_time():.1f} s; counting queries")
    pages = plan(seeded)
    inspected = inspect_pages(pages, seeded.user_id)
    results: dict[str, Any] = {}
    with Server() as server:
        cookie = session_cookie(seeded.user_id)
        for page in pages:
            info = inspected[page.name]
            if info.get("error"):
                results[page.name] = {"error": info["error"], "queries": info["queries"]}
                continue
            results[page.name] = measure(page, info["main"], server.port, cookie, config)
            results[page.name]["queries"] = info["queries"]
            if results[page.name].get("error"):
                results[page.name]["server_log"] = server.log_tail()
    main_queries = {n: i["main"][0][:2000] for n, i in inspected.items() if i["main"]}
    results["_details"] = {
        "seed_seconds": rounded(seed_time()),
        "rows": seeded.rows,
        "main_queries": main_queries,
    }
    return results


# --- seeding -----------------------------------------------------------------------------------


def seed(config: Config) -> Any:
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection, transaction
    from django.utils import timezone

    from bench.seed import Generator, Seeded, Table
    from connections.models import (
        AwsAccount,
        Connection,
        ConnectionStateChange,
        Endpoint,
        SyncRun,
    )
    from executions.models import Execution, FailureGroup, HttpAttempt, StateMachine

    call_command("flush", interactive=False, verbosity=0)  # whatever the ingest part left
    now = timezone.now()
    user = get_user_model().objects.create_superuser("bench", "bench@example.com", PASSWORD)
    accounts = [
        AwsAccount.objects.create(
            name=f"bench-{i}", account_id=acct, regions=["us-east-1", "eu-west-1"]
        )
        for i, acct in enumerate(("123456789012", "210987654321"))
    ]
    generator = Generator(config, [a.pk for a in accounts], now)
    executions, attempts = generator.executions_and_attempts()
    rows: dict[str, int] = {}
    connection.ensure_connection()
    with transaction.atomic(), connection.connection.cursor() as cursor:
        # Every row is consistent by construction; skipping the per-row FK triggers makes the
        # COPY several times faster (the bench connects as a superuser).
        cursor.execute("SET LOCAL session_replication_role = replica")
        for model, source in (
            (Connection, generator.connection_rows()),
            (ConnectionStateChange, generator.state_change_rows()),
            (Endpoint, generator.endpoint_rows()),
            (StateMachine, generator.machine_rows()),
            (Execution, executions),
            (HttpAttempt, attempts()),
            (FailureGroup, generator.group_rows()),  # counts known once attempts are made
        ):
            rows[model.__name__] = Table(model, now).copy(cursor, source)
    SyncRun.objects.bulk_create(
        SyncRun(
            account=account,
            finished_at=now - timedelta(minutes=k),
            status="ok",
            api_calls={"ListExecutions": 8, "GetExecutionHistory": 40},
            executions_added=40,
            attempts_added=200,
        )
        for account in accounts
        for k in range(8)
    )
    _after_copy([Connection, ConnectionStateChange, Endpoint, StateMachine, Execution,
                 HttpAttempt, FailureGroup])  # fmt: skip
    sample = generator.connections[:: max(1, len(generator.connections) // SAMPLE)][:SAMPLE]
    endpoints = generator.endpoints[:: max(1, len(generator.endpoints) // SAMPLE)][:SAMPLE]
    failing = [pk for _, pk in sorted(generator.failing_executions, reverse=True)[:SAMPLE]]
    return Seeded(
        user_id=user.pk,
        connections=[(pk, arn) for pk, _, arn, _ in sample],
        endpoints=[e.pk for e in endpoints],
        executions=failing,
        rows=rows,
    )


def _after_copy(models: list[Any]) -> None:
    """Identity sequences past the copied ids; statistics and visibility map, as autovacuum
    would leave them on a live database."""
    from django.db import connection

    with connection.cursor() as cursor:
        for model in models:
            table = model._meta.db_table
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608
                f"(SELECT coalesce(max(id), 0) + 1 FROM {table}), false)"
            )
        for model in models:
            cursor.execute(f"VACUUM ANALYZE {model._meta.db_table}")


# --- pages and their main queries -------------------------------------------------------------


def plan(seeded: Any) -> list[Page]:
    from django.urls import reverse

    listing = reverse("executions:list")
    conns, ends, execs = seeded.connections, seeded.endpoints, seeded.executions
    return [
        Page("overview", [reverse("dashboard:overview")]),
        Page("executions_list", [listing]),
        Page(
            "executions_by_connection",
            [f"{listing}?connection={quote(arn, safe='')}" for _, arn in conns],
        ),
        Page("executions_by_category", [f"{listing}?category=server_error"]),
        Page("execution_detail", [reverse("executions:detail", args=[pk]) for pk in execs]),
        Page("connection", [reverse("connections:detail", args=[pk]) for pk, _ in conns]),
        Page("endpoint", [reverse("connections:endpoint", args=[pk]) for pk in ends]),
    ]


def inspect_pages(pages: list[Page], user_id: int) -> dict[str, dict[str, Any]]:
    """Run each page in-process: its SQL query count, and the main query of every URL.

    The main query is the page's slowest SELECT, found by replaying each captured statement
    three times over a bare psycopg connection; it is replayed again beside the timed requests.
    """
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(raise_request_exception=False, HTTP_HOST="127.0.0.1")
    client.force_login(get_user_model().objects.get(pk=user_id))
    found: dict[str, dict[str, Any]] = {}
    with _bare_connection() as db:
        for page in pages:
            info: dict[str, Any] = {"queries": None, "main": []}
            for i, url in enumerate(page.urls):
                client.get(url)  # warm-up: caches, prepared templates
                with CaptureQueriesContext(connection) as captured:
                    response = client.get(url)
                if response.status_code != 200:
                    info["error"] = f"HTTP {response.status_code} for {url} (in-process)"
                    break
                if i == 0:
                    info["queries"] = len(captured)
                info["main"].append(_slowest(db, [q["sql"] for q in captured.captured_queries]))
            found[page.name] = info
    return found


def _bare_connection() -> Any:
    import psycopg

    return psycopg.connect(os.environ["DATABASE_URL"], autocommit=True)


def _slowest(db: Any, statements: list[str]) -> str:
    best, best_ms = "SELECT 1", -1.0
    for statement in statements:
        if not statement.lstrip().upper().startswith(("SELECT", "WITH")):
            continue  # never replay a write (session saves and the like)
        runs = sorted(_timed(db, statement) for _ in range(3))
        if runs[1] > best_ms:
            best, best_ms = statement, runs[1]
    return best


def _timed(db: Any, statement: str) -> float:
    start = time.perf_counter()
    db.execute(statement.encode()).fetchall()
    return (time.perf_counter() - start) * 1000


def session_cookie(user_id: int) -> str:
    """A logged-in session, stored where the server reads sessions (the database)."""
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.test import Client

    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(get_user_model().objects.get(pk=user_id))
    name = settings.SESSION_COOKIE_NAME
    return f"{name}={client.cookies[name].value}"


# --- the server and the timing -----------------------------------------------------------------


class Server:
    """gunicorn serving dashboard.wsgi on a free 127.0.0.1 port, for the `with` block."""

    def __init__(self) -> None:
        self.port = _free_port()
        # Closed in __exit__ (the server's lifetime is the with block, not this call).
        self.log = tempfile.NamedTemporaryFile(  # noqa: SIM115
            prefix="stepscope-bench-gunicorn-", suffix=".log"
        )
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Server:
        command = [
            sys.executable, "-m", "gunicorn", "dashboard.wsgi:application",
            "--bind", f"127.0.0.1:{self.port}", "--workers", "2", "--timeout", "120",
            "--log-level", "warning",
        ]  # fmt: skip
        self.process = subprocess.Popen(
            command, cwd=REPO, env=os.environ.copy(), stdout=self.log, stderr=self.log
        )
        self._wait_ready()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self.log.close()

    def log_tail(self, lines: int = 25) -> str:
        """The end of the server's log (Django logs a 500's traceback there)."""
        self.log.flush()
        text = Path(self.log.name).read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                break
            try:
                status, _, _ = get(self.port, "/login/", "")
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        self.log.seek(0)
        raise RuntimeError(f"gunicorn did not start: {self.log.read()[-1500:]!r}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def get(port: int, path: str, cookie: str) -> tuple[int, float, int]:
    """(status, seconds until the whole body arrived, body bytes) of one GET."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    headers = {"Cookie": cookie} if cookie else {}
    start = time.perf_counter()
    try:
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        body = response.read()
        elapsed = time.perf_counter() - start
    finally:
        conn.close()
    return response.status, elapsed, len(body)


def measure(page: Page, main: list[str], port: int, cookie: str, config: Config) -> dict[str, Any]:
    """Page and its main query, alternating request by request, so both see the same machine."""
    page_ms: list[float] = []
    sql_ms: list[float] = []
    size = 0
    with _bare_connection() as db:
        for i in range(config.warmup_requests):
            get(port, page.urls[i % len(page.urls)], cookie)
        for i in range(config.requests_per_page):
            url = page.urls[i % len(page.urls)]
            status, seconds, size = get(port, url, cookie)
            if status != 200:
                return {"error": f"HTTP {status} for {url}", "requests": i}
            page_ms.append(seconds * 1000)
            sql_ms.append(_timed(db, main[i % len(main)]))
    say(f"dashboard: {page.name} p50 {percentile(page_ms, 50):.1f} ms")
    return {
        "p50_ms": rounded(percentile(page_ms, 50)),
        "p95_ms": rounded(percentile(page_ms, 95)),
        "queries": None,
        "ratio_vs_sql": rounded(percentile(page_ms, 50) / max(percentile(sql_ms, 50), 1e-3)),
        "sql_p50_ms": rounded(percentile(sql_ms, 50)),
        "requests": len(page_ms),
        "bytes": size,
    }
