"""A real Celery worker sets its garbage collector up (dashboard/worker_gc.py) once it is
started: what is alive then is frozen and the first threshold raised; `python` keeps Python's."""

from __future__ import annotations

from pathlib import Path

import pytest

from dashboard.worker_gc import DEFAULT_THRESHOLD
from tests.reliability.conftest import RedisServer, Worker, wait_for

pytestmark = [pytest.mark.worker]


def test_a_started_worker_freezes_its_heap_and_raises_the_gc_threshold(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    worker = Worker(redis_server.url, tmp_path / "worker.log", loglevel="INFO").start()
    try:
        line = wait_for(
            lambda: next((x for x in worker.log().splitlines() if "worker gc:" in x), ""),
            "the worker's gc line",
            timeout=60,
            alive=worker,
        )
    finally:
        worker.stop()
    assert f"threshold {DEFAULT_THRESHOLD}" in line
    frozen = int(line.split("worker gc: ")[1].split(" objects")[0])
    assert frozen > 10_000  # Django, Celery and the project's modules at the least


def test_python_keeps_pythons_own_settings(redis_server: RedisServer, tmp_path: Path) -> None:
    worker = Worker(
        redis_server.url,
        tmp_path / "worker.log",
        loglevel="INFO",
        extra_env={"WORKER_GC_THRESHOLD": "python"},
    ).start()
    try:
        wait_for(
            lambda: "ready" in worker.log(), "the worker to be ready", timeout=60, alive=worker
        )
    finally:
        worker.stop()
    assert "worker gc:" not in worker.log()
