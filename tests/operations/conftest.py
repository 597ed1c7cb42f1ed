"""What the operations suites share."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dashboard.celery import app as celery_app


@pytest.fixture
def eager() -> Iterator[None]:
    """Tasks run in the test's process (these suites are about the pages and AWS, not workers;
    tests/reliability has the worker kills)."""
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False
