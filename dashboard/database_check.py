"""What is wrong with the configured database, in one line, for manage.py to print.

A command run before `make demo` (or against a database nobody migrated) meets a database
error deep in Django; `manage.py` asks `problem()` whether the database is unreachable or not
migrated, and if so prints that line instead of the traceback. Any other database error is
re-raised as it was.
"""

from __future__ import annotations

from typing import Any

from django.db import DatabaseError, connection


def where(settings_dict: dict[str, Any]) -> str:
    """`name at host:port` (never the password)."""
    host = settings_dict.get("HOST") or "localhost"
    port = settings_dict.get("PORT") or "5432"
    return f"'{settings_dict.get('NAME')}' at {host}:{port}"


def problem() -> str | None:
    from django.db.migrations.executor import MigrationExecutor

    place = where(connection.settings_dict)
    connection.close()
    try:
        connection.ensure_connection()
    except DatabaseError as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0].strip()
        return (
            f"cannot reach the database {place}: {reason} — start it (`make services`, "
            "or `make demo`) or set DATABASE_URL"
        )
    try:
        executor = MigrationExecutor(connection)
        unapplied = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except DatabaseError:
        return None
    finally:
        connection.close()
    if not unapplied:
        return None
    return (
        f"the database {place} is not migrated ({len(unapplied)} migrations to apply): "
        "run `.venv/bin/python manage.py migrate` (`make demo` does)"
    )
