"""Probes for orchestrators: `/healthz` (the process answers) and `/readyz` (it can serve).

They are answered by a middleware placed first, before host validation, the HTTPS redirect,
sessions, CSRF, CSP, axes and BadInputMiddleware: a probe comes from the kubelet or from
`docker compose` with the pod's address as Host and over plain HTTP, carries no cookie, and
must not depend on the database that `/readyz` is there to report on. Only GET and HEAD of the
two exact paths are answered here; they reveal which dependency is down and nothing else (no
host, no error text: that is logged, redacted, for the operator).

`/readyz` checks, each with a short timeout and the whole answer cached for
READYZ_CACHE_SECONDS per process so a probe storm costs one round of checks:
- the database answers `SELECT 1`;
- the broker (Redis) answers PING;
- no migration is pending: once a process has seen every migration it ships applied, it keeps
  that (a deployment that adds migrations starts new processes); before, it asks the migration
  executor for the plan, which reads the `django_migrations` table once.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import redis
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpRequest, HttpResponse

from dashboard.metrics import metrics_response

log = logging.getLogger("stepscope.health")

PROBE_PATHS = frozenset({"/healthz", "/readyz"})
METRICS_PATH = "/metrics"
BROKER_TIMEOUT_SECONDS = 2.0

_lock = threading.Lock()
_cached: tuple[float, dict[str, str]] | None = None
_migrated = False


def _json(body: dict[str, Any], status: int) -> HttpResponse:
    response = HttpResponse(json.dumps(body), content_type="application/json", status=status)
    response["Cache-Control"] = "no-store"
    # Answered before CommonMiddleware, which would set it: plain clients need no chunking.
    response["Content-Length"] = str(len(response.content))
    response["X-Content-Type-Options"] = "nosniff"
    return response


def check_database() -> str:
    # The request cycle's own connection: Django closes a broken or old one when it ends.
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return "ok"


def check_broker() -> str:
    client = redis.Redis.from_url(
        settings.CELERY_BROKER_URL,
        socket_connect_timeout=BROKER_TIMEOUT_SECONDS,
        socket_timeout=BROKER_TIMEOUT_SECONDS,
    )
    try:
        client.ping()
    finally:
        client.close()
    return "ok"


def check_migrations() -> str:
    global _migrated
    if _migrated:
        return "ok"
    executor = MigrationExecutor(connections[DEFAULT_DB_ALIAS])
    pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if pending:
        return f"{len(pending)} pending"
    _migrated = True
    return "ok"


CHECKS: dict[str, Callable[[], str]] = {
    "database": check_database,
    "broker": check_broker,
    "migrations": check_migrations,
}


def run_checks() -> dict[str, str]:
    results: dict[str, str] = {}
    for name, check in CHECKS.items():
        if name == "migrations" and results.get("database") != "ok":
            results[name] = "unknown"  # needs the database
            continue
        try:
            results[name] = check()
        except Exception as exc:  # any failure means "not ready", never a 500
            log.warning("readiness: %s is down: %s", name, exc)
            results[name] = f"unreachable ({type(exc).__name__})"
    return results


def readiness() -> dict[str, str]:
    global _cached
    ttl = float(settings.STEPSCOPE["READYZ_CACHE_SECONDS"])
    with _lock:
        if _cached is not None and time.monotonic() - _cached[0] < ttl:
            return _cached[1]
        results = run_checks()
        _cached = (time.monotonic(), results)
        return results


def forget_readiness() -> None:
    """Drop the cached answer (tests, and after a deployment step that changed the answer)."""
    global _cached, _migrated
    with _lock:
        _cached, _migrated = None, False


def probe(path: str) -> HttpResponse:
    if path == "/healthz":
        return _json({"status": "ok"}, 200)
    checks = readiness()
    down = [name for name, result in checks.items() if result != "ok"]
    body = {"status": "unavailable" if down else "ok", "down": down, "checks": checks}
    return _json(body, 503 if down else 200)


class ProbeMiddleware:
    """First in MIDDLEWARE: answers the probes, and /metrics (a scraper comes the same way,
    by address and over plain HTTP; its bearer token is checked there), before anything else."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method not in ("GET", "HEAD"):
            return self.get_response(request)
        if request.path_info in PROBE_PATHS:
            return probe(request.path_info)
        if request.path_info == METRICS_PATH:
            return metrics_response(request)
        return self.get_response(request)
