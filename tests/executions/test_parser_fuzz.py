"""Hypothesis: mutated histories and log records never make the parser (or classifier) raise.

`HYPOTHESIS_PROFILE=ci` runs 10,000 examples per test (the acceptance bar); without it the
normal suite runs a quick 500.
"""

from __future__ import annotations

import copy
import json
import os
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from executions.classify import (
    CATEGORIES,
    ClassificationContext,
    DeauthorizationTracker,
    LastSuccessTracker,
    RequestShape,
    classify,
    fingerprint,
)
from executions.classify.endpoint_templates import endpoint_template
from executions.history import (
    HistoryParser,
    http_states_from_definition,
    normalize_log_event,
    parse_timestamp,
)
from tests.history_corpus import EVENT_TYPES, HISTORIES, LOG_EVENTS

_QUICK = settings(
    max_examples=500,
    deadline=None,
    database=None,  # no .hypothesis directory in the repository
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("stepscope-fuzz-quick", _QUICK)
settings.register_profile("stepscope-fuzz-ci", _QUICK, max_examples=10_000)
PROFILE = settings.get_profile(
    "stepscope-fuzz-ci" if os.environ.get("HYPOTHESIS_PROFILE") == "ci" else "stepscope-fuzz-quick"
)


DETAIL_FIELDS = [
    "parameters",
    "output",
    "error",
    "cause",
    "name",
    "resourceType",
    "resource",
    "timeoutInSeconds",
    "outputDetails",
    "index",
    "redriveCount",
    "state",
]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.sampled_from(
        [
            "{",
            "[1,",
            '{"ApiEndpoint": 5}',
            '{"StatusCode": "abc"}',
            "null",
            '"x"',
            "1e999",
            "2026-13-45T99:99:99Z",
            "States.Http.StatusCode.",
            "States.Http.StatusCode.99999",
            "http",
            "invoke",
            "-1",
            "0",
            "9" * 30,
        ]
    ),
)
junk = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)


def _mutate(data: st.DataObject, events: list[Any]) -> list[Any]:
    events = copy.deepcopy(events)
    for _ in range(data.draw(st.integers(0, 8), label="mutations")):
        if not events:
            break
        index = data.draw(st.integers(0, len(events) - 1), label="index")
        _mutate_one(data, events, index)
    return events


def _mutate_one(data: st.DataObject, events: list[Any], index: int) -> None:
    event = events[index]
    action = data.draw(
        st.sampled_from(
            [
                "drop_key",
                "junk_key",
                "junk_detail",
                "retype",
                "duplicate",
                "delete",
                "swap",
                "replace",
                "insert",
            ]
        ),
        label="action",
    )
    if action == "delete":
        del events[index]
    elif action == "duplicate":
        events.insert(index, copy.deepcopy(event))
    elif action == "swap":
        other = data.draw(st.integers(0, len(events) - 1))
        events[index], events[other] = events[other], events[index]
    elif action == "replace":
        events[index] = data.draw(junk)
    elif action == "insert":
        events.insert(
            index,
            {
                "id": data.draw(scalars),
                "previousEventId": data.draw(scalars),
                "type": data.draw(st.sampled_from(EVENT_TYPES)),
                "timestamp": data.draw(scalars),
            },
        )
    elif isinstance(event, dict):
        _mutate_fields(data, event, action)


def _mutate_fields(data: st.DataObject, event: dict[str, Any], action: str) -> None:
    keys = sorted(event)
    if action == "retype":
        event["type"] = data.draw(st.one_of(st.sampled_from(EVENT_TYPES), scalars))
    elif action == "drop_key" and keys:
        event.pop(data.draw(st.sampled_from(keys)))
    elif action == "junk_key" and keys:
        event[data.draw(st.sampled_from(keys))] = data.draw(junk)
    elif action == "junk_detail":
        details = next(
            (v for k, v in event.items() if k.endswith("EventDetails") and isinstance(v, dict)),
            None,
        )
        if details is not None:
            details[data.draw(st.sampled_from(DETAIL_FIELDS))] = data.draw(junk)


def _check_attempts(attempts: list[Any]) -> None:
    successes, deauths = LastSuccessTracker(), DeauthorizationTracker()
    for attempt in attempts:
        assert attempt.outcome in ("succeeded", "failed", "timed_out", "aborted", "in_progress")
        assert attempt.attempt_number >= 1
        assert all(
            isinstance(v, str) for v in (attempt.method, attempt.url, attempt.error, attempt.cause)
        )
        assert attempt.status_code is None or isinstance(attempt.status_code, int)
        context = ClassificationContext(
            connection_states=deauths.changes_for(attempt.connection_arn),
            last_success_shape=successes.shape_for(attempt.method, attempt.url),
        )
        result = classify(attempt, context)
        assert result.category in (*CATEGORIES, None)
        json.dumps(result.evidence)
        fingerprint(
            attempt.connection_arn,
            attempt.method,
            endpoint_template(attempt.url),
            result,
            attempt.status_code,
            attempt.error,
        )
        successes.observe(attempt)
        deauths.observe(attempt)


def _parse_in_pages(
    events: list[Any], definition: Any, page: int
) -> tuple[list[Any], HistoryParser]:
    parser = HistoryParser(http_states_from_definition(definition))
    attempts: list[Any] = []
    for start in range(0, max(len(events), 1), page):
        attempts.extend(parser.feed(events[start : start + page]))
    attempts.extend(parser.finish())
    return attempts, parser


@settings(PROFILE)
@given(st.data())
def test_mutated_histories_never_raise(data: st.DataObject) -> None:
    document = data.draw(st.sampled_from(HISTORIES), label="fixture")
    events = _mutate(data, document["events"])
    definition = data.draw(st.one_of(st.just(document.get("definition")), junk), label="definition")
    page = data.draw(st.integers(1, 50), label="page size")
    attempts, parser = _parse_in_pages(events, definition, page)
    assert all(isinstance(p, str) for p in parser.problems)
    _check_attempts(attempts)


@settings(PROFILE)
@given(st.lists(junk, max_size=30), junk)
def test_arbitrary_json_as_history_never_raises(events: list[Any], definition: Any) -> None:
    attempts, _ = _parse_in_pages(events, definition, 7)
    _check_attempts(attempts)


@settings(PROFILE)
@given(st.data())
def test_mutated_log_records_never_raise(data: st.DataObject) -> None:
    records = [json.loads(r["message"]) for r in LOG_EVENTS]
    records = _mutate(data, records)
    as_text = data.draw(st.booleans(), label="as text")
    normalised = [normalize_log_event(json.dumps(r) if as_text else r) for r in records]
    events = [e for e in normalised if e is not None]
    attempts, _ = _parse_in_pages(events, None, 5)
    _check_attempts(attempts)


@settings(PROFILE)
@given(junk)
def test_helpers_never_raise_on_junk(value: Any) -> None:
    parse_timestamp(value)
    http_states_from_definition(value if isinstance(value, dict | str) else None)
    normalize_log_event(value if isinstance(value, dict | str) else str(value))
    endpoint_template(value if isinstance(value, str) else str(value))
    RequestShape.of({"request_headers": value, "request_query": value, "request_body": value})
