"""Issue 15: shapes recorded on real AWS (reference §8) that the first rule set misread."""

from __future__ import annotations

import pytest

from executions.classify import classify
from executions.history import ParsedAttempt
from tests.executions.test_classify import classified

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
