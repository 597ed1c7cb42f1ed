"""Endpoint templates: one group per endpoint, whatever ids the URL carried."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from executions.classify.endpoint_templates import endpoint_template, is_id_segment


@pytest.mark.parametrize(
    ("url", "template"),
    [
        ("https://API.x.com/v1/customers/12345?a=1", "https://api.x.com/v1/customers/{id}"),
        ("https://api.x.com/v1/orders/550e8400-e29b-41d4-a716-446655440000/items",
         "https://api.x.com/v1/orders/{id}/items"),
        ("https://api.x.com/v1/blobs/9f8e7d6c5b4a39281706f5e4d3c2b1a0", "https://api.x.com/v1/blobs/{id}"),
        ("https://api.x.com/v1/runs/01ARZ3NDEKTSV4RRFFQ69G5FAV", "https://api.x.com/v1/runs/{id}"),
        ("https://api.x.com/v1/users/ada%40example.com/prefs", "https://api.x.com/v1/users/{id}/prefs"),
        ("https://api.x.com/v1/users/ada@example.com", "https://api.x.com/v1/users/{id}"),
        ("https://api.x.com/v1/charges/cus_9aZ81kq2", "https://api.x.com/v1/charges/{id}"),
        ("https://api.x.com/inventory/sku-7", "https://api.x.com/inventory/{id}"),
        ("https://api.x.com/v2/oauth2/token", "https://api.x.com/v2/oauth2/token"),
        ("https://api.x.com/v1/reports/summary#top", "https://api.x.com/v1/reports/summary"),
        ("HTTPS://Api.X.com:443/A/B", "https://api.x.com/A/B"),
        ("https://api.x.com:8443/a", "https://api.x.com:8443/a"),
        ("https://user:secret@api.x.com/a/1", "https://api.x.com/a/{id}"),
        ("https://api.x.com", "https://api.x.com/"),
        ("https://api.x.com.?q=1", "https://api.x.com/"),
        ("https://[2001:db8::1]:8443/v1/7", "https://[2001:db8::1]:8443/v1/{id}"),
        ("https://api.x.com/v1/customers/{id}", "https://api.x.com/v1/customers/{id}"),
        ("/v1/customers/42", "/v1/customers/{id}"),
        ("", ""),
        ("   ", ""),
    ],
)  # fmt: skip
def test_urls_normalise_to_templates(url: str, template: str) -> None:
    assert endpoint_template(url) == template


@pytest.mark.parametrize(
    "segment",
    [
        "12345",
        "0",
        "deadbeefdeadbeef1234",
        "ord-2024x17",
        "a1b2c3d4",
        "sku-42",
        "order_7",
        "INV-2024-0001",
    ],
)
def test_id_like_segments(segment: str) -> None:
    assert is_id_segment(segment)


@pytest.mark.parametrize(
    "segment", ["", "v1", "customers", "oauth2", "s3", "facade", "2fa", "v2-beta", "v1.2", "sku-"]
)
def test_name_like_segments(segment: str) -> None:
    assert not is_id_segment(segment)


@pytest.mark.parametrize(
    "garbage", ["https://[::1/x", "https://x.com:99999/a", "::::", "http://", "%", "a b?c#d"]
)
def test_garbage_does_not_raise(garbage: str) -> None:
    assert isinstance(endpoint_template(garbage), str)


def test_non_strings_give_an_empty_template() -> None:
    assert endpoint_template(None) == ""  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_any_text_gives_a_template_that_templating_again_keeps(text: str) -> None:
    once = endpoint_template(text)
    assert isinstance(once, str)
    assert endpoint_template(once) == once
