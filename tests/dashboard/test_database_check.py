"""manage.py in a plain shell: one source of truth for the local database, and one line (no
traceback) when that database cannot be reached or was never migrated."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from django.conf import settings

from dashboard import settings as project_settings
from tests.aws_sandbox import ROOT
from tools import local_services


def _manage(*args: str, database_url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": database_url}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _url(name: str, port: object = None) -> str:
    db = settings.DATABASES["default"]
    return f"postgres://{db['USER']}@{db['HOST']}:{port or db['PORT'] or 5432}/{name}"


@pytest.fixture
def unmigrated() -> Iterator[str]:
    """An empty database beside the test database, dropped afterwards."""
    name = f"stepscope_unmigrated_{uuid.uuid4().hex[:8]}"
    admin = _url("postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield _url(name)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_the_settings_default_database_is_the_one_make_demo_probes() -> None:
    assert project_settings.LOCAL_DATABASE_URL == local_services.DEFAULT_DATABASE_URL
    assert "sqlite" not in (ROOT / "dashboard" / "settings.py").read_text()


@pytest.mark.parametrize("command", [["sync_account", "sandbox"], ["reclassify"]])
def test_an_unmigrated_database_is_one_line_not_a_traceback(
    unmigrated: str, command: list[str]
) -> None:
    done = _manage(*command, database_url=unmigrated)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"{command[0]}: the database 'stepscope_unmigrated_")
    assert "is not migrated" in lines[0] and "manage.py migrate" in lines[0]


def test_an_unreachable_database_is_one_line_without_its_password() -> None:
    port = _closed_port()
    url = f"postgres://someone:hunter2-secret@127.0.0.1:{port}/nowhere"
    done = _manage("reclassify", database_url=url)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr and "hunter2" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(
        f"reclassify: cannot reach the database 'nowhere' at 127.0.0.1:{port}"
    )


@pytest.mark.django_db(transaction=True)
def test_a_migrated_reachable_database_has_no_problem_to_explain() -> None:
    # Then manage.py re-raises whatever database error it met, traceback and all.
    from dashboard.database_check import problem

    assert problem() is None


def _closed_port() -> int:
    """A port on 127.0.0.1 nothing listens on (bound, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
