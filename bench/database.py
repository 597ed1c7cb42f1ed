"""The benchmark's own PostgreSQL database and the environment its processes share.

The bench never touches the project's database: it (re)creates `stepscope_bench` on the server
DATABASE_URL names, migrates it, and every process it starts (ingest workers, the web server)
gets a DATABASE_URL pointing there.
"""

from __future__ import annotations

import os
import re
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

DEFAULT_SERVER = "postgres://postgres@127.0.0.1:5432/postgres"
DEFAULT_NAME = "stepscope_bench"
# A Redis database of its own, so the bench's rate-limit buckets never mix with the demo's.
REDIS_DB = 15
_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def bench_database_url(name: str = DEFAULT_NAME) -> str:
    """DATABASE_URL's server with the bench database name (PostgreSQL only)."""
    if not _NAME.match(name):
        raise ValueError(f"{name!r} is not a plain PostgreSQL database name")
    base = os.environ.get("DATABASE_URL", "")
    if not base.startswith(("postgres://", "postgresql://")):
        base = DEFAULT_SERVER
    parts = urlsplit(base)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, ""))


def maintenance_url(database_url: str) -> str:
    parts = urlsplit(database_url)
    return urlunsplit((parts.scheme, parts.netloc, "/postgres", parts.query, ""))


def database_name(database_url: str) -> str:
    return urlsplit(database_url).path.lstrip("/")


def recreate_database(database_url: str) -> None:
    """Drop (disconnecting any session) and create the bench database."""
    name = database_name(database_url)
    with psycopg.connect(maintenance_url(database_url), autocommit=True, connect_timeout=10) as c:
        c.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        c.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def drop_database(database_url: str) -> None:
    name = database_name(database_url)
    with psycopg.connect(maintenance_url(database_url), autocommit=True, connect_timeout=10) as c:
        c.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def redis_url() -> str:
    base = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    parts = urlsplit(base)
    return urlunsplit((parts.scheme, parts.netloc, f"/{REDIS_DB}", parts.query, ""))


def configure_environment(database_url: str) -> None:
    """Environment for this process and every process it starts (read by dashboard/settings)."""
    os.environ["DJANGO_SETTINGS_MODULE"] = "dashboard.settings"
    os.environ["DATABASE_URL"] = database_url
    os.environ["REDIS_URL"] = redis_url()
    os.environ.pop("CELERY_BROKER_URL", None)
    os.environ.pop("CELERY_RESULT_BACKEND", None)
    os.environ["DEBUG"] = "0"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    # Every stored execution is a failed or retried one: none may be skipped as "one of too
    # many successes", or ingest and floor would read different histories.
    os.environ["SUCCEEDED_PER_SYNC"] = "1000000"
    os.environ.pop("DB_CONN_MAX_AGE", None)


def setup_django(migrate: bool = True) -> None:
    import django
    from django.core.management import call_command

    django.setup()
    if migrate:
        call_command("migrate", verbosity=0, interactive=False)
