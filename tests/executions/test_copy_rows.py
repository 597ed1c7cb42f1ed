"""COPY-written attempts are the rows bulk_create(ignore_conflicts=True) would have stored."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import transaction
from django.forms.models import model_to_dict
from django.utils import timezone

from executions.copy_rows import MIN_COPY_ROWS, insert_ignoring_conflicts
from executions.models import Execution, HttpAttempt
from tests.factories import ExecutionFactory, HttpAttemptFactory

pytestmark = pytest.mark.django_db


NOW = timezone.now()


def _rows(execution: Execution, keys: range) -> list[HttpAttempt]:
    rows = HttpAttemptFactory.build_batch(len(keys), execution=execution)
    for row, key in zip(rows, keys, strict=True):
        row.key_event_id = row.scheduled_event_id = key
        row.closed_event_id = key + 2
        row.occurred_at = row.scheduled_at = NOW - timedelta(seconds=key)
        row.closed_at = row.occurred_at + timedelta(milliseconds=420)
        # What PostgreSQL must carry unchanged: nested JSON, nulls, quotes, backslashes, tabs
        # and newlines (COPY's own delimiters), non-ASCII text.
        row.request_body = {"a": [1, None, {"b": 'q"\\t\t'}], "n": 2**62} if key % 2 else None
        row.response_body = 'line one\nline\ttwo \\N "é" ☃'
        row.problems = [f"problem {key}"] if key % 3 == 0 else []
    return rows


def _stored(execution: Execution) -> list[dict[str, Any]]:
    return [
        {k: v for k, v in model_to_dict(a).items() if k not in ("id", "execution")}
        for a in HttpAttempt.objects.filter(execution=execution).order_by("key_event_id")
    ]


def test_copy_stores_what_bulk_create_stores_and_skips_stored_keys() -> None:
    by_copy, by_insert = ExecutionFactory.create(), ExecutionFactory.create()
    by_insert.account = by_copy.account
    by_insert.save()
    keys = range(1, MIN_COPY_ROWS + 11)
    # One row of each is stored first: the same key again is skipped, not an error.
    HttpAttempt.objects.bulk_create(_rows(by_copy, range(5, 6)))
    HttpAttempt.objects.bulk_create(_rows(by_insert, range(5, 6)))
    with transaction.atomic():
        insert_ignoring_conflicts(HttpAttempt, _rows(by_copy, keys))
        insert_ignoring_conflicts(HttpAttempt, _rows(by_copy, range(1, 3)))  # small: INSERT
    HttpAttempt.objects.bulk_create(_rows(by_insert, keys), ignore_conflicts=True)

    copied, inserted = _stored(by_copy), _stored(by_insert)
    assert len(copied) == len(keys)
    assert [{k for k in a if a[k] != b[k]} for a, b in zip(copied, inserted, strict=True)] == [
        set()
    ] * len(keys)
    assert copied[1]["response_body"] == 'line one\nline\ttwo \\N "é" ☃'
    assert copied[0]["request_body"] == {"a": [1, None, {"b": 'q"\\t\t'}], "n": 2**62}
    assert copied[1]["request_body"] is None


def test_a_second_batch_in_one_transaction_is_not_mixed_with_the_first() -> None:
    execution = ExecutionFactory.create()
    with transaction.atomic():
        insert_ignoring_conflicts(HttpAttempt, _rows(execution, range(1, MIN_COPY_ROWS + 1)))
        insert_ignoring_conflicts(
            HttpAttempt, _rows(execution, range(MIN_COPY_ROWS + 1, 2 * MIN_COPY_ROWS + 1))
        )
    assert HttpAttempt.objects.filter(execution=execution).count() == 2 * MIN_COPY_ROWS
