"""Request shaping and output of HTTP Tasks (pure functions, no sandbox needed)."""

from __future__ import annotations

import pytest

from sandbox import http_call
from sandbox.eventbridge import InvocationParameters
from sandbox.http_call import HttpCall, HttpTaskError


@pytest.mark.parametrize(
    ("array_format", "encoded"),
    [
        ("INDICES", "tags%5B0%5D=a&tags%5B1%5D=b&n=1"),
        ("REPEAT", "tags=a&tags=b&n=1"),
        ("COMMAS", "tags=a%2Cb&n=1"),
        ("BRACKETS", "tags%5B%5D=a&tags%5B%5D=b&n=1"),
    ],
)
def test_url_encoding_follows_the_array_format(array_format: str, encoded: str) -> None:
    assert http_call.url_encode({"tags": ["a", "b"], "n": 1}, array_format) == encoded


@pytest.mark.parametrize(
    "header",
    ["Authorization", "cache-control", "Host", "X-Amz-Date", "x-amzn-trace-id", "X-Forwarded-For"],
)
def test_forbidden_headers_are_recognised_case_insensitively(header: str) -> None:
    assert http_call.is_forbidden_header(header)


def test_ordinary_headers_are_allowed() -> None:
    assert not http_call.is_forbidden_header("Idempotency-Key")


def test_connection_parameters_override_definition_keys() -> None:
    call = HttpCall.from_parameters(
        {
            "ApiEndpoint": "https://api.example.com/x?a=1",
            "Method": "POST",
            "Headers": {"x-tenant": "from-definition", "Idempotency-Key": "k"},
            "QueryParameters": {"tenant": "def", "page": 2},
            "RequestBody": {"source": "def", "n": 1},
        }
    )
    merged = call.with_connection(
        InvocationParameters(
            headers={"X-Tenant": "acme"}, query={"tenant": "acme"}, body={"source": "conn"}
        ),
        {"Authorization": "Basic abc"},
    )
    url, headers, body = merged.prepared("eu-west-1")
    assert url == "https://api.example.com/x?a=1&page=2&tenant=acme"
    assert headers["X-Tenant"] == "acme" and "x-tenant" not in headers
    assert headers["Authorization"] == "Basic abc"
    assert headers["User-Agent"] == "Amazon|StepFunctions|HttpInvoke|eu-west-1"
    assert headers["Range"] == "bytes=0-262144"
    assert headers["Content-Type"] == "application/json; charset=UTF-8"
    assert body == b'{"source":"conn","n":1}'


def test_string_body_cannot_take_connection_body_parameters() -> None:
    call = HttpCall.from_parameters(
        {"ApiEndpoint": "https://x.example", "Method": "POST", "RequestBody": "raw"}
    )
    with pytest.raises(HttpTaskError) as raised:
        call.with_connection(InvocationParameters(body={"k": "v"}), {})
    assert raised.value.error == "States.Runtime"


def test_unknown_method_is_a_runtime_error() -> None:
    with pytest.raises(HttpTaskError) as raised:
        HttpCall.from_parameters({"ApiEndpoint": "https://x.example", "Method": "TRACE"})
    assert raised.value.error == "States.Runtime"
