"""WORKER_GC_THRESHOLD: parsed once, a bad value is stepscope.E011 and its default applies."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
from django.conf import settings
from django.core.checks import run_checks
from django.test import override_settings

from dashboard.worker_gc import DEFAULT_THRESHOLD, parse_threshold, tune_worker_gc


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("", DEFAULT_THRESHOLD),
        (" 20000, 5 ,5 ", (20000, 5, 5)),
        ("PYTHON", None),
    ],
)
def test_good_values(raw: str, expected: tuple[int, int, int] | None) -> None:
    assert parse_threshold(raw) == (expected, "")


@pytest.mark.parametrize("raw", ["50000", "a,b,c", "0,10,10", "-5,10,10", "1,2,3,4", "1.5,2,3"])
def test_a_bad_value_is_error_e011_and_the_default_applies(raw: str) -> None:
    threshold, problem = parse_threshold(raw)
    assert threshold == DEFAULT_THRESHOLD
    with override_settings(STEPSCOPE={**settings.STEPSCOPE, "WORKER_GC_THRESHOLD": raw}):
        errors = [m for m in run_checks() if m.id == "stepscope.E011"]
    assert [e.msg for e in errors] == [f"{problem}."]
    assert repr(raw) in problem


def test_the_default_raises_nothing() -> None:
    assert not [m for m in run_checks() if m.id == "stepscope.E011"]


@pytest.fixture
def restored_gc() -> Iterator[None]:
    before = gc.get_threshold()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


@pytest.mark.usefixtures("restored_gc")
def test_tuning_freezes_and_sets_the_threshold() -> None:
    with override_settings(STEPSCOPE={**settings.STEPSCOPE, "WORKER_GC_THRESHOLD": "12345,7,8"}):
        tune_worker_gc()
    assert gc.get_threshold() == (12345, 7, 8)
    assert gc.get_freeze_count() > 0
