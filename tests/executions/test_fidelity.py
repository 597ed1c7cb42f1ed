"""Issue 15: shapes recorded on real AWS (reference §8) that the first rule set misread."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from executions.classify import classify, classify_state_error
from executions.history import (
    ParsedAttempt,
    http_states_from_definition,
    join_pages,
    normalize_log_event,
    parse_history,
)
from tests.executions.test_classify import FIXTURES, classified

# (fixture, [(execution's attempt: category, subcategory, evidence that must be present)])
QUERY_FAILURES = [
    ("missing_parameter", "path_found_nothing",
     {"query_language": "jsonata", "expression": "$states.input.customer.id",
      "location": "Arguments/ApiEndpoint"}),
    ("invalid_request", "expression_error",
     {"query_language": "jsonata", "expression": "$customerUrl($states.input)",
      "location": "Arguments/ApiEndpoint", "jsonata_error": "T1006"}),
    ("invalid_request", "unexpected_result_type",
     {"query_language": "jsonata", "expression": "$states.input.headers",
      "location": "Arguments/Headers", "expected": "object", "actual": "string"}),
]  # fmt: skip


def test_jsonata_failures_are_split_by_what_the_cause_says() -> None:
    results = classified("jsonata_query_errors.json")
    assert len(results) == len(QUERY_FAILURES)
    for (att, result), (category, subcategory, evidence) in zip(
        results, QUERY_FAILURES, strict=True
    ):
        assert (att.state_name, att.closed_event_type) == ("Lookup", "EvaluationFailed")
        assert (result.category, result.subcategory) == (category, subcategory), result.hint
        assert evidence.items() <= result.evidence.items()
        assert evidence["expression"] in result.hint


def failed_before_request(cause: str, error: str = "States.Runtime") -> ParsedAttempt:
    return ParsedAttempt(
        state_name="Lookup", attempt_number=1, error=error, cause=cause, outcome="failed"
    )


@pytest.mark.parametrize(
    ("cause", "category", "evidence"),
    [
        (
            "The JSONPath '$.no_such_jsonpath' specified for the field 'value.$' could not be "
            "found in the input '{\"a\": 1}'",
            "missing_parameter",
            {"jsonpath": "$.no_such_jsonpath", "field": "value.$"},
        ),
        (
            "The SecondsPath parameter does not reference an input value: $.input.waitSeconds",
            "missing_parameter",
            {"jsonpath": "$.input.waitSeconds", "field": "SecondsPath"},
        ),
        (
            "Invalid path '$.NoSuchOutputPath' : No results for path: $['NoSuchOutputPath']",
            "invalid_request",
            {"jsonpath": "$.NoSuchOutputPath"},
        ),
        (
            # A JSONata expression holding quotes of its own is still read whole.
            "An error occurred while executing the state 'Lookup' (entered at the event id #2). "
            "The JSONata expression '$states.input.a & 'x'' specified for the field "
            "'Arguments/ApiEndpoint' threw an error during evaluation. D3001: bad",
            "invalid_request",
            {"expression": "$states.input.a & 'x'", "jsonata_error": "D3001"},
        ),
    ],
)
def test_jsonpath_and_jsonata_wordings_name_their_fields(
    cause: str, category: str, evidence: dict[str, str]
) -> None:
    result = classify(failed_before_request(cause, "States.QueryEvaluationError"))
    assert result.category == category, result.hint
    assert evidence.items() <= result.evidence.items()


# --------------------------------------------------------------------------- item 9


def test_a_200_then_a_result_path_failure_is_a_success_plus_a_definition_error() -> None:
    results = classified("after_response_and_cut_off.json")
    (selector, selected), (output, _), (stopped, stop), (timed_out, timeout) = results
    for att in (selector, output):
        assert (att.outcome, att.status_code, att.error) == ("succeeded", 200, "")
        assert att.state_error == "States.Runtime"
    assert selected.category is None
    state = classify_state_error(selector)
    assert state is not None
    assert (state.category, state.subcategory) == ("invalid_request", "after_response_path")
    assert state.evidence["jsonpath"] == "$.ResponseBody.customer.id"
    assert "answered 200" in state.hint and "ResultSelector" in state.hint
    output_state = classify_state_error(output)
    assert output_state is not None and output_state.evidence["jsonpath"] == "$.NoSuchOutputPath"
    # Cut off mid-call: the attempt ends with the execution, as aborted or timed out.
    assert (stopped.outcome, stopped.closed_event_type) == ("aborted", "ExecutionAborted")
    assert (stop.category, stop.subcategory) == (None, "aborted")  # no failure of the endpoint
    assert "no error or cause given" in stop.hint
    assert (timed_out.outcome, timeout.subcategory) == ("timed_out", "execution_timeout")
    assert classify_state_error(stopped) is None


def test_classify_history_prints_the_state_error_next_to_the_successful_attempt() -> None:
    out = io.StringIO()
    call_command("classify_history", str(FIXTURES / "after_response_and_cut_off.json"), stdout=out)
    rows = json.loads(out.getvalue())["attempts"]
    first = rows[0]
    assert (first["outcome"], first["category"]) == ("succeeded", None)
    assert first["state_error"]["category"] == "invalid_request"
    assert first["state_error"]["evidence"]["field"] == "id.$"
    assert [r["state_error"] for r in rows[2:]] == [None, None]


def test_a_jsonata_output_failure_after_a_200_is_not_a_second_attempt() -> None:
    data = json.loads((FIXTURES / "after_response_and_cut_off.json").read_text())[0]
    events = [
        *data["events"][:5],
        {"id": 6, "previousEventId": 0, "type": "EvaluationFailed", "timestamp": 1793615000.4,
         "evaluationFailedEventDetails": {"error": "States.QueryEvaluationError",
                                          "cause": "The JSONata expression '$states.result.x' specified for the field 'Output' returned nothing (undefined).",
                                          "location": "Output", "state": "FetchCustomer"}},
        {"id": 7, "previousEventId": 6, "type": "ExecutionFailed", "timestamp": 1793615000.5,
         "executionFailedEventDetails": {"error": "States.QueryEvaluationError", "cause": "…"}},
    ]  # fmt: skip
    (att,) = parse_history(events, data["definition"])
    assert (att.outcome, att.state_error) == ("succeeded", "States.QueryEvaluationError")
    state = classify_state_error(att)
    assert state is not None and state.evidence["location"] == "Output"


# --------------------------------------------------------------------------- item 3


def rows_of(path: Path | str) -> list[dict[str, Any]]:
    out = io.StringIO()
    call_command("classify_history", str(path), stdout=out)
    rows: list[dict[str, Any]] = json.loads(out.getvalue())["attempts"]
    return rows


@pytest.mark.parametrize("fixture", ["paged_history.json", "paged_history_reverse.json"])
def test_pages_of_one_execution_are_one_history(fixture: str) -> None:
    whole = rows_of(FIXTURES / "retries_503_then_success.json")
    paged = rows_of(FIXTURES / fixture)
    strip = ("execution_arn",)  # the pages as AWS returns them do not repeat the ARN
    assert [{k: v for k, v in r.items() if k not in strip} for r in paged] == [
        {k: v for k, v in r.items() if k not in strip} for r in whole
    ]
    assert [(r["attempt"], r["outcome"]) for r in paged] == [
        (1, "failed"),
        (2, "failed"),
        (3, "succeeded"),
    ]


def _page(ids: range, token: str = "", arn: str = "") -> dict[str, Any]:
    events = [{"id": i, "type": "ExecutionStarted" if i == 1 else "PassStateEntered"} for i in ids]
    page: dict[str, Any] = {"events": events}
    if token:
        page["NextToken" if token.startswith("cli") else "nextToken"] = token
    if arn:
        page["executionArn"] = arn
    return page


def test_join_pages_tells_continuations_from_new_executions() -> None:
    a, b = "arn:aws:states:eu-west-1:1:execution:Sm:a", "arn:aws:states:eu-west-1:1:execution:Sm:b"
    joined = join_pages(
        [
            _page(range(1, 4), "t1", a),
            _page(range(4, 6), "", a),  # the last page: no token
            _page(range(1, 3), "", b),  # a new execution: ids start over
            _page(range(3, 5)),  # saved without tokens, ids carry on: still b
            _page(range(1, 3), "cli-NextToken"),  # the AWS CLI's --max-items output
            _page(range(3, 4)),
            _page(range(1, 2), "t9", a),
            _page(range(2, 3), "", b),  # a token, but another execution's page
        ]
    )
    assert [[e["id"] for e in d["events"]] for d in joined] == [
        [1, 2, 3, 4, 5],
        [1, 2, 3, 4],
        [1, 2, 3],
        [1],
        [2],
    ]
    assert joined[0]["executionArn"] == a and "nextToken" not in joined[0]
    reverse = join_pages([_page(range(9, 4, -1), "r1"), _page(range(4, 0, -1))])
    assert [e["id"] for e in reverse[0]["events"]] == [9, 8, 7, 6, 5, 4, 3, 2, 1]
    # Newest first without tokens: the older page is the one with ExecutionStarted.
    assert len(join_pages([_page(range(9, 4, -1)), _page(range(4, 0, -1))])) == 1


# --------------------------------------------------------------------------- item 7


def test_hints_know_the_states_retry_and_catch_from_the_definition() -> None:
    results = classified("retry_and_catch_from_definition.json")
    assert [(a.attempt_number, a.caught) for a, _ in results] == [
        (1, False), (2, False), (3, False), (4, True), (1, False),
    ]  # fmt: skip
    *retried, (_, last), (_, uncovered) = results
    for _, result in [*retried, (None, last)]:
        assert "add a Retry" not in result.hint  # the state has one, and it ran
    assert (
        "retried 3 times (Retry[0]: MaxAttempts 3, BackoffRate 2) then caught by Catch[0] → "
        "NotifyFailure" in last.hint
    )
    assert last.evidence["retry"]["max_attempts"] == 3
    assert last.evidence["catch"] == {"index": 0, "next": "NotifyFailure"}
    assert last.evidence["timeout_seconds"] == 30
    assert "no Retry covers States.Http.StatusCode.429: add a Retry" in uncovered.hint
    assert "no Catch covers" in uncovered.hint


def test_a_retried_attempt_is_not_told_to_add_a_retry_even_without_the_definition() -> None:
    retried = ParsedAttempt(
        state_name="CallApi",
        attempt_number=1,
        error="States.Http.StatusCode.503",
        status_code=503,
        outcome="failed",
        final_attempt=False,
    )
    assert "add a Retry" not in classify(retried).hint
    assert "add a Retry" in classify(replace(retried, final_attempt=True)).hint


def test_retry_and_catch_are_read_from_the_definition_with_aws_defaults() -> None:
    definition = {
        "StartAt": "Call",
        "States": {
            "Call": {
                "Type": "Task",
                "Resource": "arn:aws:states:::http:invoke",
                "Arguments": {"ApiEndpoint": "https://x.example", "Method": "GET"},
                "TimeoutSeconds": 90,
                "Retry": [{"ErrorEquals": ["States.TaskFailed"]}, {"ErrorEquals": "junk"}],
                "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Done"}],
                "End": True,
            }
        },
    }
    state = http_states_from_definition(definition)["Call"]
    assert state.timeout_seconds == 90
    found = state.retrier_for("States.Http.StatusCode.500")
    assert found is not None
    index, retrier = found
    assert (index, retrier.max_attempts, retrier.backoff_rate) == (0, 3, 2.0)
    assert state.retrier_for("States.Timeout") is None  # TaskFailed leaves out timeouts
    assert state.catcher_for("States.Runtime") is None  # so does States.ALL for Runtime
    assert state.catcher_for("States.Timeout") is not None


# --------------------------------------------------------------------------- item 2


def test_error_level_logs_give_each_task_failed_its_own_attempt() -> None:
    rows = rows_of(FIXTURES / "express_logs_error_level.json")
    failed = [r for r in rows if r["execution_arn"].endswith(":err-1")]
    assert [(r["state"], r["attempt"], r["status_code"], r["caught"]) for r in failed] == [
        ("Quote", 1, 429, False),
        ("Quote", 2, 500, False),
    ]
    for row in failed:  # what the log cannot say comes from the definition, and is marked
        assert (row["method"], row["url"]) == ("POST", "https://api.partner.example/v1/quotes")
        assert row["connection_arn"].endswith("/partner-api/81210c42-8af1-4fdb-9aa9-2b5e7d4b1a10")
        assert any("no TaskScheduled" in p and "from the definition" in p for p in row["problems"])
    assert "no Retry covers States.Http.StatusCode.500: add a Retry" in failed[1]["hint"]
    (no_data,) = [r for r in rows if r["execution_arn"].endswith(":nodata-1")]
    assert (no_data["outcome"], no_data["url"]) == (
        "succeeded",
        "https://api.partner.example/v1/quotes",
    )
    assert any("no parameters" in p for p in no_data["problems"])


def test_without_a_definition_an_error_level_attempt_says_what_is_unknown() -> None:
    data = json.loads((FIXTURES / "express_logs_error_level.json").read_text())
    events = [normalize_log_event(r["message"]) for r in data["events"][:3]]
    attempts = parse_history([e for e in events if e is not None])
    assert [a.status_code for a in attempts] == [429, 500]
    assert "unknown: state name, method, URL, connection" in attempts[0].problems[0]
