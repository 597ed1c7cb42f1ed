"""The history and classify packages: their public API, and what the speed-ups must not change."""

from __future__ import annotations

import gc
import json
import weakref
from typing import Any

import pytest

import executions.classify
import executions.history
from executions.classify import (
    ClassificationContext,
    LastSuccessTracker,
    RequestShape,
    classify,
)
from executions.history import HistoryParser, ParsedAttempt, parse_history
from executions.history.events import load_json

HISTORY_API = (
    "HTTP_RESOURCE_SUFFIX",
    "HTTP_STATUS_ERROR_PREFIX",
    "MAX_BRANCH_PATH",
    "MAX_PROBLEMS",
    "OUTCOME_ABORTED",
    "OUTCOME_FAILED",
    "OUTCOME_IN_PROGRESS",
    "OUTCOME_SUCCEEDED",
    "OUTCOME_TIMED_OUT",
    "HistoryParser",
    "HttpStateInfo",
    "ParsedAttempt",
    "as_int",
    "details_key",
    "http_states_from_definition",
    "is_http_resource",
    "normalize_log_event",
    "parse_history",
    "parse_timestamp",
    "status_from_error",
)
CLASSIFY_API = (
    "CATEGORIES",
    "CONNECTION_SECRET_ARN",
    "FORBIDDEN_HEADERS",
    "FORBIDDEN_HEADER_PREFIXES",
    "HTTP_TASK_TIMEOUT_MS",
    "NEAR_TIMEOUT_CAP_MS",
    "RULES",
    "RULES_VERSION",
    "Classification",
    "ClassificationContext",
    "ConnectionStateChange",
    "DeauthorizationTracker",
    "LastSuccessTracker",
    "RequestShape",
    "Rule",
    "classify",
    "fingerprint",
    "is_forbidden_header",
    "needs_last_success",
)
HTTP = {"resourceType": "http", "resource": "invoke"}


@pytest.mark.parametrize("name", HISTORY_API)
def test_history_names_import_from_the_package(name: str) -> None:
    assert hasattr(executions.history, name) and name in executions.history.__all__


@pytest.mark.parametrize("name", CLASSIFY_API)
def test_classify_names_import_from_the_package(name: str) -> None:
    assert hasattr(executions.classify, name) and name in executions.classify.__all__


@pytest.mark.parametrize(
    "raw",
    [
        '{"a":1}',
        ' {"a":1}',
        '{"a":1} ',
        '{"a":1}\n',
        "[1,2]x",
        '{"a":',
        "",
        "\ufeff{}",
        "NaN",
        "1e999",
        '"x"',
        "null",
        "01",
        "[" * 3000 + "]" * 3000,
        b'{"a":1}',
        b"\xef\xbb\xbf[1]",
        # msgspec's refusals and json.loads' extras: the same answer as json.loads either way.
        "[123456789012345678901234567890, -98765432109876543210]",
        '"\\ud800"',
        '"\ud800"',  # a lone surrogate in the text itself, not escaped: msgspec cannot encode it
        '{"a":1,"a":2}',
        "[1e400, -0.0, 0.1]",
        "Infinity",
    ],
)
def test_load_json_answers_like_json_loads(raw: str | bytes) -> None:
    try:
        expected: Any = json.loads(raw)
    except (ValueError, RecursionError):
        expected = None
    assert repr(load_json(raw)) == repr(expected)


def _success(body: object) -> ParsedAttempt:
    return ParsedAttempt(
        state_name="Get",
        attempt_number=1,
        method="GET",
        url="https://api.example.com/v1/items",
        request_headers={"X-Api-Key": "k"},
        request_query={"page": "1"},
        outcome="succeeded",
        status_code=200,
        response_body=body,
    )


class _Body:
    """A response body that can be watched for being freed."""


def test_last_success_tracker_keeps_the_request_not_the_attempt() -> None:
    tracker, body = LastSuccessTracker(), _Body()
    watched = weakref.ref(body)
    attempt = _success(body)
    expected = RequestShape.of(attempt)
    tracker.observe(attempt)
    del attempt, body
    gc.collect()
    assert watched() is None  # the response went with the attempt
    assert tracker.shape_for("GET", "https://api.example.com/v1/items") == expected


def test_request_headers_are_not_shared_between_attempts() -> None:
    params = json.dumps(
        {"ApiEndpoint": "https://a.example/x", "Method": "get", "Headers": {"A": 1}}
    )
    events: list[dict[str, Any]] = [
        {"id": 1, "previousEventId": 0, "type": "TaskStateEntered", "timestamp": 1.0,
         "stateEnteredEventDetails": {"name": "Call"}},
    ]  # fmt: skip
    for n in range(2):
        events += [
            {"id": 2 + 3 * n, "previousEventId": 1 + 3 * n, "type": "TaskScheduled",
             "timestamp": 2.0 + n, "taskScheduledEventDetails": {**HTTP, "parameters": params}},
            {"id": 3 + 3 * n, "previousEventId": 2 + 3 * n, "type": "TaskStarted",
             "timestamp": 2.0 + n},
            {"id": 4 + 3 * n, "previousEventId": 3 + 3 * n, "type": "TaskFailed",
             "timestamp": 2.5 + n,
             "taskFailedEventDetails": {**HTTP, "error": "States.Http.StatusCode.500"}},
        ]  # fmt: skip
    first, second = parse_history(events)
    first.request_headers["B"] = 2
    assert second.request_headers == {"A": 1} and first.method == "GET"


def test_headers_given_as_objects_are_copied() -> None:
    headers = {"A": 1}
    parser = HistoryParser()
    events = [
        {"id": 1, "previousEventId": 0, "type": "TaskStateEntered",
         "stateEnteredEventDetails": {"name": "Call"}},
        {"id": 2, "previousEventId": 1, "type": "TaskScheduled",
         "taskScheduledEventDetails": {**HTTP, "parameters": {"ApiEndpoint": "u", "Headers": headers}}},
    ]  # fmt: skip
    list(parser.feed(events))
    (attempt,) = parser.finish()
    assert attempt.request_headers == headers and attempt.request_headers is not headers


def test_unknown_event_types_by_the_thousand_are_tolerated() -> None:
    events = [{"id": n, "previousEventId": n - 1, "type": f"Junk{n}"} for n in range(1, 3000)]
    parser = HistoryParser()
    assert list(parser.feed(events)) == [] and list(parser.finish()) == []
    assert parser.problems == []


def test_status_phrases_in_hints_cover_unassigned_codes() -> None:
    attempt = ParsedAttempt(
        state_name="Get",
        attempt_number=1,
        url="https://api.example.com/v1/items",
        error="States.Http.StatusCode.599",
        status_code=599,
        outcome="failed",
    )
    result = classify(attempt, ClassificationContext())
    assert result.subcategory == "http_599" and "(599 )" in result.hint
