"""The classifier: every category from a fixture, specific hints, evidence, fingerprints."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from executions.classify import (
    CATEGORIES,
    RULES,
    RULES_VERSION,
    ClassificationContext,
    ConnectionStateChange,
    DeauthorizationTracker,
    LastSuccessTracker,
    RequestShape,
    classify,
    fingerprint,
    needs_last_success,
)
from executions.history import ParsedAttempt, http_states_from_definition, parse_history

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "histories"
CONN = "arn:aws:events:eu-west-1:111122223333:connection/partner-api/81210c42-8af1-4fdb-9aa9-2b5e7d4b1a10"
T0 = datetime(2026, 11, 2, 10, 15, tzinfo=UTC)


def classified(name: str) -> list[tuple[ParsedAttempt, Any]]:
    """Parse a fixture's documents in order, classifying each attempt with what came before."""
    data = json.loads((FIXTURES / name).read_text())
    documents = data if isinstance(data, list) else [data]
    successes, deauths = LastSuccessTracker(), DeauthorizationTracker()
    out = []
    for document in documents:
        states = http_states_from_definition(document.get("definition"))
        attempts = parse_history(document["events"], document.get("definition"))
        for parsed in sorted(
            attempts, key=lambda a: a.scheduled_event_id or a.closed_event_id or 0
        ):
            context = ClassificationContext(
                connection_states=deauths.changes_for(parsed.connection_arn),
                last_success_shape=successes.shape_for(parsed.method, parsed.url),
                definition_state=states.get(parsed.state_name),
            )
            out.append((parsed, classify(parsed, context)))
            successes.observe(parsed)
            deauths.observe(parsed)
    return out


def attempt(**overrides: Any) -> ParsedAttempt:
    base = ParsedAttempt(
        state_name="CallApi",
        attempt_number=1,
        scheduled_at=T0,
        closed_at=T0 + timedelta(seconds=1),
        duration_ms=1000,
        method="POST",
        url="https://api.partner.example/v1/orders/12345?debug=1",
        connection_arn=CONN,
        outcome="failed",
    )
    return replace(base, **overrides)


def failure(status: int, cause: str = "", **overrides: Any) -> ParsedAttempt:
    return attempt(
        error=f"States.Http.StatusCode.{status}", status_code=status, cause=cause, **overrides
    )


# (fixture, [(state, attempt number, category, subcategory, words the hint must contain)])
TABLE: list[tuple[str, list[tuple[str, int, str | None, str, tuple[str, ...]]]]] = [
    ("retries_503_then_success.json", [
        ("CreateOrder", 1, "server_error", "http_503", ("503", "/v1/orders", "Retry")),
        ("CreateOrder", 2, "server_error", "http_503", ("503",)),
        ("CreateOrder", 3, None, "succeeded", ()),
    ]),
    ("deauthorized_cascade.json", [
        ("FetchCustomer", 1, "auth", "http_401", ("partner-api", "401", "UpdateConnection")),
        ("FetchCustomer", 2, "auth", "connection_deauthorized",
         ("connection partner-api was de-authorized after a 401 at 2026-11-02T10:15:00Z", "UpdateConnection")),
        ("FetchCustomer", 3, "auth", "connection_deauthorized", ("after a 401",)),
    ]),
    ("map_iterations.json", [
        ("GetCustomer", 1, None, "succeeded", ()),
        ("GetCustomer", 1, "client_error", "http_404", ("404", "customers/{id}")),
        ("GetCustomer", 1, None, "succeeded", ()),
    ]),
    ("parallel_interleaved.json", [
        ("NotifyBilling", 1, "server_error", "http_500", ("500", "/billing/events")),
        ("NotifyShipping", 1, None, "succeeded", ()),
    ]),
    ("rate_limited_429_iso_timestamps.json", [
        ("ListInvoices", 1, "rate_limited", "http_429", ("429", "BackoffRate", "retried")),
        ("ListInvoices", 2, None, "succeeded", ()),
    ]),
    ("timeout_task.json", [("SlowReport", 1, "timeout", "task_timeout", ("TimeoutSeconds (10 s)",))]),
    ("socket.json", [
        ("Export", 1, "timeout", "http_60s_limit", ("the call ran into the 60-second HTTP task limit",)),
        ("Export", 1, "network", "socket", ("unreachable.partner.example", "0.8 s")),
    ]),
    ("permissions.json", [
        ("FetchCustomer", 1, "permissions", "connection_credentials",
         ("events:RetrieveConnectionCredentials", "secretsmanager:GetSecretValue", "DescribeSecret",
          "arn:aws:secretsmanager:*:*:secret:events!connection/*")),
        ("FetchCustomer", 1, "permissions", "invoke_http_endpoint",
         ("states:InvokeHTTPEndpoint", '"states:HTTPMethod":"GET"',
          '"states:HTTPEndpoint":"https://api.partner.example/v1/customers/*"',
          "arn:aws:states:eu-west-1:111122223333:stateMachine:*")),
    ]),
    ("forbidden_header_runtime.json", [
        ("Download", 1, "invalid_request", "forbidden_header", ("'authorization'", "partner-api")),
        ("Conditional", 1, "invalid_request", "forbidden_header", ("'if-none-match'", "InvocationHttpParameters")),
    ]),
    ("data_limit_exceeded.json", [
        ("DumpCatalog", 1, "payload_too_large", "response_over_256kib", ("the response exceeded 256 KiB",)),
    ]),
    ("bad_request_json_body.json", [
        ("CreateCustomer", 1, "missing_parameter", "named_in_response", ("email",)),
    ]),
    ("bad_request_status_text.json", [
        ("CreateCustomer", 1, "client_error", "http_400", ("400 Bad Request", "TestState")),
    ]),
    ("missing_vs_last_success.json", [
        ("CreateOrder", 1, None, "succeeded", ()),
        ("CreateOrder", 1, "missing_header", "absent_vs_last_success", ("x-tenant-id",)),
        ("CreateOrder", 1, "missing_parameter", "absent_vs_last_success", ("body key sku",)),
    ]),
    ("jsonpath_not_found.json", [
        ("Lookup", 1, "missing_parameter", "path_found_nothing", ("$.customer.id", "ApiEndpoint.$")),
    ]),
    ("redrive.json", [
        ("Settle", 1, "server_error", "http_502", ("502",)),
        ("Settle", 1, None, "succeeded", ()),
    ]),
    ("unknown_error.json", [("Publish", 1, "unknown", "unrecognised_error", ("Partner.Custom",))]),
]  # fmt: skip


@pytest.mark.parametrize(("fixture", "expected"), TABLE, ids=[row[0] for row in TABLE])
def test_fixture_attempts_are_classified(fixture: str, expected: list[tuple[Any, ...]]) -> None:
    results = classified(fixture)
    assert len(results) == len(expected)
    for (att, result), (state, number, category, subcategory, words) in zip(
        results, expected, strict=True
    ):
        assert (att.state_name, att.attempt_number) == (state, number)
        assert (result.category, result.subcategory) == (category, subcategory), result.hint
        for word in words:
            assert word in result.hint
        assert result.rules_version == RULES_VERSION


def test_every_category_is_reachable_from_a_fixture() -> None:
    reached = {result.category for fixture, _ in TABLE for _, result in classified(fixture)}
    assert reached - {None} == set(CATEGORIES)


def test_evidence_is_json_serialisable_and_names_what_decided() -> None:
    for fixture, _ in TABLE:
        for _, result in classified(fixture):
            json.dumps(result.evidence)
            assert result.evidence["decided_by"]


# --------------------------------------------------------------------------- rules as data


def test_rules_are_versioned_data_with_unique_ids_and_known_categories() -> None:
    assert len({rule.id for rule in RULES}) == len(RULES)
    assert {rule.category for rule in RULES} <= {*CATEGORIES, None}
    assert RULES[-1].errors == frozenset() and RULES[-1].check is None  # the catch-all is last


# --------------------------------------------------------------------------- status codes


def test_a_bare_400_is_client_error_not_a_guess() -> None:
    result = classify(failure(400, "Bad Request"))
    assert (result.category, result.subcategory) == ("client_error", "http_400")
    assert result.evidence["cause_kind"] == "status_text"


@pytest.mark.parametrize("status", [401, 407])
def test_401_and_407_are_auth(status: int) -> None:
    result = classify(failure(status))
    assert (
        result.category == "auth" and f"({status})" in result.hint and "partner-api" in result.hint
    )


def test_403_is_auth_forbidden_not_iam_permissions() -> None:
    result = classify(failure(403, "Forbidden"))
    assert (result.category, result.subcategory) == ("auth", "forbidden")
    assert "not IAM" in result.hint


def test_a_401_mentions_a_header_the_last_success_sent() -> None:
    success = RequestShape(frozenset({"x-api-key"}), frozenset(), frozenset())
    result = classify(failure(401), ClassificationContext(last_success_shape=success))
    assert result.category == "auth" and "x-api-key" in result.hint
    assert result.evidence["shape_diff"] == {"headers": ["x-api-key"]}


def test_413_is_payload_too_large_with_the_body_size() -> None:
    result = classify(failure(413, request_body={"blob": "x" * 100}))
    assert result.category == "payload_too_large" and "bytes" in result.hint


def test_408_is_a_timeout() -> None:
    assert classify(failure(408)).category == "timeout"


@pytest.mark.parametrize("status", [500, 502, 503, 504, 599])
def test_5xx_is_server_error(status: int) -> None:
    assert classify(failure(status)).subcategory == f"http_{status}"


def test_a_redirect_status_is_unknown_with_a_hint() -> None:
    result = classify(failure(301))
    assert result.category == "unknown" and "redirect" in result.hint


def test_a_206_success_keeps_no_category_but_warns_about_the_range_header() -> None:
    result = classify(attempt(outcome="succeeded", status_code=206))
    assert result.category is None and "Range" in result.hint


def test_an_in_progress_attempt_has_no_category() -> None:
    assert classify(attempt(outcome="in_progress")).category is None


# --------------------------------------------------------------------------- causes


def test_a_json_cause_naming_a_missing_header_is_missing_header() -> None:
    cause = json.dumps(
        {
            "detail": [
                {"loc": ["header", "x-request-id"], "msg": "Field required", "type": "missing"}
            ]
        }
    )
    result = classify(failure(422, cause))
    assert (result.category, result.subcategory) == ("missing_header", "named_in_response")
    assert "x-request-id" in result.hint and result.evidence["cause_kind"] == "json"


@pytest.mark.parametrize(
    ("cause", "name"),
    [
        (
            json.dumps({"detail": [{"loc": ["body", "customer", "id"], "msg": "field required"}]}),
            "customer.id",
        ),
        (json.dumps({"error": "missing_field", "missing": ["amount"]}), "amount"),
        ("Missing required parameter 'currency'", "currency"),
        ("customerId is required", "customerId"),
        (json.dumps({"message": "Required field is missing: orderRef"}), "orderRef"),
    ],
)
def test_causes_naming_a_missing_field_are_missing_parameter(cause: str, name: str) -> None:
    result = classify(failure(400, cause))
    assert result.category == "missing_parameter", result.hint
    assert name in result.hint and name in result.evidence["missing_fields"]


@pytest.mark.parametrize(
    "cause", ["Missing header: X-Api-Version", "The 'X-Api-Version' header is required"]
)
def test_text_causes_naming_a_header_are_missing_header(cause: str) -> None:
    result = classify(failure(400, cause))
    assert result.category == "missing_header" and "X-Api-Version" in result.hint


def test_a_cause_that_names_nothing_stays_client_error() -> None:
    result = classify(failure(400, json.dumps({"message": "Validation failed"})))
    assert result.category == "client_error" and result.evidence["cause_kind"] == "json"


# --------------------------------------------------------------------------- shape diff


def test_query_and_body_keys_absent_from_the_failure_are_named() -> None:
    success = RequestShape.of(
        {
            "request_headers": {},
            "request_query": "page=1&limit=5",
            "request_body": {"customer": {"id": 1, "tier": "a"}, "items": [{"sku": "x"}]},
        }
    )
    failed = failure(400, "Bad Request", request_query={"page": "2"}, request_body={"items": [{}]})
    result = classify(failed, ClassificationContext(last_success_shape=success))
    assert result.category == "missing_parameter"
    assert result.evidence["shape_diff"] == {
        "query": ["limit"],
        "body": ["customer", "items[].sku"],
    }
    assert "limit" in result.hint and "customer" in result.hint


def test_an_identical_shape_stays_client_error_and_says_it_compared() -> None:
    failed = failure(400, "Bad Request", request_headers={"X-A": "1"})
    result = classify(failed, ClassificationContext(last_success_shape=RequestShape.of(failed)))
    assert result.category == "client_error" and "same header, query and body names" in result.hint


def test_request_shapes_lower_case_headers_and_flatten_body_keys() -> None:
    shape = RequestShape.of(
        attempt(
            request_headers={"X-Tenant": "1"},
            request_query=["a=1", "b"],
            request_body='{"a": {"b": [{"c": 1}]}}',
        )
    )
    assert shape.header_names == {"x-tenant"}
    assert shape.query_keys == {"a", "b"}
    assert shape.body_keys == {"a", "a.b", "a.b[].c"}
    assert RequestShape.of(attempt(request_body="x=1&y=2")).body_keys == {"x", "y"}


def test_the_last_success_tracker_is_per_method_and_endpoint_template() -> None:
    tracker = LastSuccessTracker()
    tracker.observe(attempt(outcome="succeeded", request_headers={"A": "1"}))
    tracker.observe(attempt(outcome="failed", request_headers={}))  # failures do not count
    shape = tracker.shape_for("post", "https://API.partner.example/v1/orders/999")
    assert shape is not None and shape.header_names == {"a"}
    assert tracker.shape_for("GET", "https://api.partner.example/v1/orders/999") is None


# --------------------------------------------------------------------------- connection states


def test_the_deauthorization_nearest_before_the_attempt_is_named() -> None:
    states = [
        ConnectionStateChange(T0 - timedelta(days=2), "DEAUTHORIZED", "endpoint returned 407"),
        ConnectionStateChange(T0 - timedelta(days=1), "AUTHORIZED", "updated"),
        ConnectionStateChange(
            T0 - timedelta(minutes=5), "DEAUTHORIZED", "Authorization failed: 401"
        ),
        ConnectionStateChange(T0 + timedelta(hours=1), "DEAUTHORIZED", "later, irrelevant 407"),
    ]
    failed = attempt(error="Events.ConnectionResource.InvalidConnectionState")
    result = classify(
        failed, ClassificationContext(connection_states=states, connection_name="Billing")
    )
    assert result.hint.startswith(
        "connection Billing was de-authorized after a 401 at 2026-11-02T10:10:00Z"
    )
    assert result.evidence["connection_state"]["inferred"] is False
    assert "connection_states" in result.evidence["decided_by"]


def test_a_deauthorization_without_a_status_quotes_its_reason() -> None:
    states = [ConnectionStateChange(T0 - timedelta(minutes=1), "DEAUTHORIZED", "secret deleted")]
    failed = attempt(error="Events.ConnectionResource.InvalidConnectionState")
    assert (
        "(secret deleted)" in classify(failed, ClassificationContext(connection_states=states)).hint
    )


def test_invalid_connection_state_without_history_still_names_the_fix() -> None:
    result = classify(attempt(error="Events.ConnectionResource.InvalidConnectionState"))
    assert (
        result.category == "auth"
        and "UpdateConnection" in result.hint
        and "partner-api" in result.hint
    )


# --------------------------------------------------------------------------- other errors


def test_socket_error_near_the_cap_is_a_timeout_and_far_from_it_is_network() -> None:
    near = classify(attempt(error="States.Http.Socket", duration_ms=59_500))
    far = classify(attempt(error="States.Http.Socket", duration_ms=1_200))
    unknown = classify(attempt(error="States.Http.Socket", duration_ms=None))
    assert (near.category, far.category, unknown.category) == ("timeout", "network", "network")
    assert "60 s" in unknown.hint


def test_a_permission_named_in_the_cause_is_the_one_in_the_hint() -> None:
    cause = "User: arn:aws:sts::1:assumed-role/r is not authorized to perform: secretsmanager:DescribeSecret"
    result = classify(attempt(error="Events.ConnectionResource.AccessDenied", cause=cause))
    assert result.hint.startswith("the role lacks secretsmanager:DescribeSecret")
    assert result.evidence["iam_actions"] == ["secretsmanager:DescribeSecret"]


def test_states_runtime_without_evidence_is_unknown_not_invalid_request() -> None:
    result = classify(attempt(error="States.Runtime", cause="An error occurred"))
    assert (result.category, result.subcategory) == ("unknown", "runtime")


def test_states_runtime_for_a_binary_response_names_the_content_type() -> None:
    result = classify(attempt(error="States.Runtime", cause="unsupported content type image/png"))
    assert result.category == "invalid_request" and "image/png" in result.hint


@pytest.mark.parametrize(
    ("error", "category"),
    [
        ("Events.ConnectionResource.ResourceNotFound", "invalid_request"),
        ("Events.ConnectionResource.AuthInProgress", "auth"),
        ("Events.ConnectionResource.ConcurrentModification", "auth"),
        ("Events.ConnectionResource.InternalError", "server_error"),
        ("Events.ConnectionResource.InvalidPrivateConnectionState", "network"),
        ("States.DataLimitExceeded", "payload_too_large"),
        ("States.TaskFailed", "unknown"),
    ],
)
def test_connection_and_state_errors_map_to_their_category(error: str, category: str) -> None:
    assert classify(attempt(error=error)).category == category


def test_a_call_cut_off_by_an_aborted_state_is_explained_not_categorised() -> None:
    # Not a failure of the endpoint: no category (so no group), a hint that looks elsewhere.
    result = classify(attempt(outcome="aborted", closed_event_type="TaskStateAborted"))
    assert (result.category, result.subcategory) == (None, "aborted")
    assert result.rule_id == "aborted" and result.evidence["aborted_by"] == "state aborted"
    assert "another branch or iteration" in result.hint and "do not chase" in result.hint
    assert "final_attempt" not in result.evidence


def test_stop_execution_names_the_error_and_cause_its_caller_gave() -> None:
    result = classify(
        attempt(
            outcome="aborted",
            closed_event_type="ExecutionAborted",
            error="Operator.Cancelled",
            cause="deploy 42 rolled back by ops-bot",
        )
    )
    assert (result.category, result.subcategory) == (None, "aborted")
    assert result.evidence["aborted_by"] == "StopExecution"
    assert result.evidence["stop_cause"] == "deploy 42 rolled back by ops-bot"
    assert "error 'Operator.Cancelled' and cause 'deploy 42 rolled back by ops-bot'" in (
        result.hint
    )
    assert "POST https://api.partner.example/v1/orders/{id}" in result.hint
    assert "nothing to fix at the endpoint" in result.hint


def test_stop_execution_without_details_says_none_were_given() -> None:
    result = classify(attempt(outcome="aborted", closed_event_type="ExecutionAborted"))
    assert "no error or cause given" in result.hint and "StopExecution" in result.hint
    assert "stop_cause" not in result.evidence


def test_an_execution_timeout_names_the_execution_limit() -> None:
    result = classify(
        attempt(outcome="timed_out", error="States.Timeout", closed_event_type="ExecutionTimedOut")
    )
    assert result.subcategory == "execution_timeout" and "state machine" in result.hint


# --------------------------------------------------------------------------- fingerprints


def test_fingerprints_group_by_endpoint_template_and_split_by_status() -> None:
    result = classify(failure(503))
    one = fingerprint(CONN, "post", "https://api.partner.example/v1/orders/1", result, 503, "")
    two = fingerprint(CONN, "POST", "https://API.partner.example/v1/orders/2?x=1", result, 503, "")
    other = fingerprint(CONN, "POST", "https://api.partner.example/v1/orders/2", result, 502, "")
    assert one == two != other
    assert len(one) == 40 and int(one, 16) >= 0


def test_fingerprints_use_the_error_name_when_there_is_no_status() -> None:
    result = classify(attempt(error="States.Http.Socket"))
    a = fingerprint(CONN, "GET", "https://x.io/a", result, None, "States.Http.Socket")
    b = fingerprint(CONN, "GET", "https://x.io/a", result, None, "States.Timeout")
    assert a != b


def test_only_client_errors_need_the_last_success_shape() -> None:
    assert needs_last_success(failure(400)) and needs_last_success(failure(404))
    assert not needs_last_success(failure(503))
    assert not needs_last_success(attempt(outcome="succeeded", status_code=200))
    assert not needs_last_success(attempt(error="States.Http.Socket"))


def test_a_forbidden_header_named_only_in_the_cause_is_found() -> None:
    result = classify(
        attempt(error="States.Runtime", cause="Header If-Modified-Since is not allowed")
    )
    assert (result.category, result.evidence["forbidden_header"]) == (
        "invalid_request",
        "if-modified-since",
    )
    assert "cause" in result.evidence["decided_by"]


def test_a_forbidden_header_from_the_definition_says_so_in_the_evidence() -> None:
    results = classified("forbidden_header_runtime.json")
    assert "request_headers" in results[0][1].evidence["decided_by"]
    assert "definition_state" in results[1][1].evidence["decided_by"]
