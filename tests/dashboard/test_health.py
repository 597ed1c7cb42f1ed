"""`/healthz` and `/readyz` against the real database and Redis, and with each of them really
unreachable: a Redis server of our own that we stop, the database pointed at a closed port, a
migration marked unapplied."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection
from django.test import Client

from dashboard.health import forget_readiness
from tests.reliability.conftest import RedisServer, free_port


@pytest.fixture(autouse=True)
def _fresh_checks(settings: Any) -> Iterator[None]:
    settings.STEPSCOPE = {**settings.STEPSCOPE, "READYZ_CACHE_SECONDS": 0}
    forget_readiness()
    yield
    forget_readiness()


def _probe(path: str) -> tuple[int, dict[str, Any]]:
    # A probe as the kubelet sends it: the pod's address as Host, plain HTTP, no cookie.
    response = Client(HTTP_HOST="10.1.2.3:8000").get(path, {"q": "\x00"})
    assert response["Content-Type"] == "application/json"
    assert response["Cache-Control"] == "no-store"
    return response.status_code, json.loads(response.content)


@pytest.mark.django_db
def test_probes_answer_anonymous_over_http_for_any_host_when_all_is_up(settings: Any) -> None:
    settings.ALLOWED_HOSTS = ["stepscope.example.com"]
    settings.SECURE_SSL_REDIRECT = True
    assert _probe("/healthz") == (200, {"status": "ok"})
    status, body = _probe("/readyz")
    assert status == 200, body
    assert body == {
        "status": "ok",
        "down": [],
        "checks": {"database": "ok", "broker": "ok", "migrations": "ok"},
    }
    # Anything else still goes through host validation and the HTTPS redirect.
    assert Client(HTTP_HOST="10.1.2.3:8000").get("/login/").status_code == 400


@pytest.mark.django_db
def test_readyz_is_503_naming_the_broker_when_redis_stops(settings: Any) -> None:
    server = RedisServer()
    server.start()
    try:
        settings.CELERY_BROKER_URL = server.url
        assert _probe("/readyz")[0] == 200
    finally:
        server.stop()
    forget_readiness()
    status, body = _probe("/readyz")
    assert status == 503
    assert body["down"] == ["broker"], body
    assert body["checks"]["broker"] == "unreachable (ConnectionError)"
    assert _probe("/healthz") == (200, {"status": "ok"})


@pytest.mark.django_db(transaction=True)
def test_readyz_is_503_naming_the_database_when_it_is_unreachable() -> None:
    saved = dict(connection.settings_dict)
    connection.close()
    connection.settings_dict["HOST"], connection.settings_dict["PORT"] = "127.0.0.1", free_port()
    try:
        status, body = _probe("/readyz")
        assert _probe("/healthz") == (200, {"status": "ok"})
    finally:
        connection.close()
        connection.settings_dict.update(saved)
    assert status == 503
    assert body["down"] == ["database", "migrations"], body
    assert body["checks"]["database"] == "unreachable (OperationalError)"
    assert body["checks"]["migrations"] == "unknown"
    forget_readiness()
    assert _probe("/readyz")[0] == 200, "ready again once the database answers"


@pytest.mark.django_db
def test_readyz_is_503_while_a_migration_is_pending() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM django_migrations WHERE id = "
            "(SELECT max(id) FROM django_migrations WHERE app = 'executions')"
        )
    status, body = _probe("/readyz")
    assert status == 503
    assert body["down"] == ["migrations"]
    assert body["checks"]["migrations"] == "1 pending"
