"""Redaction: secret keys at any depth, secret-looking values anywhere, length class kept."""

from __future__ import annotations

import json
import logging

import pytest

from executions.redaction import RedactingLogFilter, Redactor, marker

R = Redactor()
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"


@pytest.mark.parametrize(
    "name",
    [
        "Authorization",
        "proxy-authorization",
        "Cookie",
        "Set-Cookie",
        "x-api-key",
        "X-Auth-Token",
        "client_secret",
        "password",
        "db_passwd",
        "apiKey",
        "X-Signature",
        "session_id",
        "aws_credentials",
    ],
)
def test_secret_key_names_are_recognised(name: str) -> None:
    assert R.is_secret_key(name)


@pytest.mark.parametrize(
    "name", ["Content-Type", "Accept", "keyword", "author", "customerId", "limit"]
)
def test_ordinary_keys_are_kept(name: str) -> None:
    assert not R.is_secret_key(name)


def test_nested_body_keys_are_redacted_at_any_depth_and_keep_their_shape() -> None:
    body = {
        "user": {"name": "ann", "credentials": {"password": "hunter22"}},
        "items": [{"token": "abc"}],
    }
    out = R.value(body)
    assert out["user"]["name"] == "ann"
    assert out["user"]["credentials"] == {"password": marker("hunter22")}
    assert out["items"][0]["token"] == "[redacted:short]"


def test_header_value_lists_stay_lists() -> None:
    assert R.value({"set-cookie": ["a=1", "b=2"]}) == {
        "set-cookie": ["[redacted:short]", "[redacted:short]"]
    }


@pytest.mark.parametrize(
    "text",
    [
        f"Bearer {JWT}",
        JWT,
        "key AKIAIOSFODNN7EXAMPLE used",
        "Basic dXNlcjpwYXNzd29yZA==",
        "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG",
    ],
)
def test_secret_looking_values_are_redacted_in_free_text(text: str) -> None:
    out = R.text(f"cause: {text} end")
    assert "[redacted:" in out
    for secret in ("SflKxwRJ", "AKIAIOSFODNN7EXAMPLE", "dXNlcjpwYXNzd29yZA", "wJalrXUtnFEMI"):
        assert secret not in out


def test_length_class_distinguishes_empty_from_long() -> None:
    assert marker("") == "[redacted:empty]"
    assert marker("x" * 200) == "[redacted:very-long]"


def test_urls_lose_userinfo_and_secret_query_parameters() -> None:
    out = R.url("https://bob:pw@api.x.com/v1?id=7&api_key=s3cr3t&access_token=abc")
    assert "pw@" not in out and "s3cr3t" not in out and "access_token=abc" not in out
    assert "id=7" in out and "api.x.com/v1" in out


def test_extra_patterns_from_settings_apply() -> None:
    r = Redactor.from_patterns(keys=[r"^x-tenant$"], values=[r"ACME-\d{6}"])
    assert r.value({"X-Tenant": "t1", "note": "id ACME-123456"}) == {
        "X-Tenant": "[redacted:short]",
        "note": "id [redacted:medium]",
    }


def test_log_filter_scrubs_records() -> None:
    record = logging.LogRecord(
        "x", logging.INFO, __file__, 1, "calling with %s", (f"Bearer {JWT}",), None
    )
    RedactingLogFilter().filter(record)
    assert JWT not in record.getMessage()


def test_json_and_form_bodies_inside_strings_are_redacted_by_key() -> None:
    echoed = '{"headers": {"x-api-key": "k-123"}, "body": "{\\"password\\": \\"p-456\\"}"}'
    out = R.value({"ResponseBody": echoed, "form": "user=ann&client_secret=s-789"})
    assert "k-123" not in out["ResponseBody"] and "p-456" not in out["ResponseBody"]
    assert out["form"] == "user=ann&client_secret=[redacted:short]"


def test_plain_text_is_left_alone() -> None:
    assert R.value("Bad Request") == "Bad Request"
    assert R.value("a = b") == "a = b"


# --- URLs: one recipe; words and ids in paths stay, tokens go ----------------------------------

AWS_KEY = "AKIAIOSFODNN7EXAMPLE"
HEX_TOKEN = "9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a"
BASE62_TOKEN = "Zk3p9QmX2vR7tL1wB8nC4yH6jD0sF5gA"


@pytest.mark.parametrize(
    "url",
    [
        "https://api.shop.example/v1/orders/12345",
        "https://api.shop.example/v1/customers/cus_8f3k2",
        "https://api.shop.example/v2/sku-42/stock",
        "https://api.shop.example/v1/customers",
        "https://api.shop.example/blog/how-to-reset-your-password-in-ten-steps",
        "https://api.shop.example/v1/orders/550e8400-e29b-41d4-a716-446655440000/items",
        "https://api.shop.example/users/507f1f77bcf86cd799439011",
        "https://api.shop.example/v1/invoices/INV-2024-0001?expand=lines&limit=20",
        "https://api.shop.example/oauth2/authorize",
        "https://api.shop.example/v1/orders/{id}",
        "https://api.shop.example:8443/api/v3/keys/list",
    ],
)
def test_ordinary_url_paths_and_queries_are_kept(url: str) -> None:
    assert R.url(url) == url
    assert R.text(f"POST {url} answered 400") == f"POST {url} answered 400"


@pytest.mark.parametrize(
    ("url", "secret"),
    [
        (f"https://api.shop.example/reset/{JWT}", JWT),
        (f"https://api.shop.example/keys/{AWS_KEY}", AWS_KEY),
        (f"https://api.shop.example/t/{HEX_TOKEN}", HEX_TOKEN),
        (f"https://api.shop.example/hooks/{BASE62_TOKEN}/deliver", BASE62_TOKEN),
        (f"https://api.shop.example/v1/orders?tag={HEX_TOKEN}&limit=2", HEX_TOKEN),
        ("https://deploy:hunter22@api.shop.example/v1/orders", "hunter22"),
        (f"https://api.shop.example/cb#state={HEX_TOKEN}", HEX_TOKEN),
    ],
)
def test_tokens_in_url_paths_queries_and_user_info_are_redacted(url: str, secret: str) -> None:
    for out in (R.url(url), R.text(f"POST {url} failed"), R.embedded(url)):
        assert secret not in out and "[redacted:" in out
        assert out.startswith(("https://api.shop.example", "https://[redacted:", "POST "))


def test_url_redaction_is_stable_when_applied_again() -> None:
    once = R.url(f"https://u:pw@h.example/t/{HEX_TOKEN}?api_key=abc&ref=1")
    assert R.url(once) == once
    assert R.value({"authorization": "[redacted:long]"}) == {"authorization": "[redacted:long]"}


def test_urls_inside_definitions_lose_user_info_wherever_they_are() -> None:
    definition = {
        "States": {
            "Call": {"Parameters": {"ApiEndpoint": "https://bob:pw-123@h.example/v1/orders"}},
            "Other": {"Arguments": {"url": "{% 'https://bob:pw-123@h.example/' & $path %}"}},
        }
    }
    out = R.embedded(json.dumps(definition))
    assert "pw-123" not in out and "bob" not in out
    assert "h.example/v1/orders" in out


# --- a connection's secret parameter names ---------------------------------------------------


def _connection() -> Redactor:
    return R.with_secret_names(["X-Partner-Ref", "ref", "merchant", "X-Shop"])


def test_connection_secret_names_are_secret_keys_whatever_they_look_like() -> None:
    connection = _connection()
    for name in ("X-Partner-Ref", "x-partner-ref", "ref", "merchant", "x-shop"):
        assert connection.is_secret_key(name)
        assert not R.is_secret_key(name), "only for that connection's redactor"
    assert not connection.is_secret_key("X-Partner-Region")


def test_connection_secret_names_are_redacted_in_every_place_they_can_appear() -> None:
    value = {
        "headers": {"x-partner-ref": ["v-1"], "X-Shop": "v-2", "X-Partner-Region": "eu"},
        "query": {"ref": ["v-3"], "page": ["1"]},
        "body": '{"order": {"merchant": "v-4"}}',
        "form": "merchant=v-5&amount=7",
        "url": "https://h.example/echo?ref=v-6&page=2",
        "note": 'echo: X-Partner-Ref: v-7, "ref": ["v-8"], x-shop=v-9',
    }
    out = json.dumps(_connection().value(value))
    for n in range(1, 10):
        assert f"v-{n}" not in out
    assert '"X-Partner-Region": "eu"' in out and "page=2" in out and "amount=7" in out


def test_connection_secret_names_do_not_eat_longer_names_or_plain_words() -> None:
    assert _connection().text("referrer=home; prefix: ok") == "referrer=home; prefix: ok"


# --- hints and displayed calls: a path ending in an auth word is no credential ---------------


@pytest.mark.parametrize(
    "sentence",
    [
        "POST https://partner.example/basic rejected the credentials of connection crm (401)",
        "GET https://partner.example/bearer answered 403 Forbidden",
        "POST https://auth.example/oauth/token returned HTTP 500 without an access token",
        "POST https://api.shop.example/v1/digest answered 429 Too Many Requests",
        "GET https://api.shop.example/v1/orders/12345 answered 404 NotFound",
        "the OAuth token exchange failed: connection payments was still AUTHORIZING",
    ],
)
def test_hint_sentences_keep_their_path_words(sentence: str) -> None:
    assert R.text(sentence) == sentence


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("sent Authorization: Bearer abc123def456ghi", "abc123def456ghi"),
        ("header was Basic dXNlcjpwYXNzd29yZA==", "dXNlcjpwYXNzd29yZA=="),
        ("Token token_9f8a7b6c5d4e", "token_9f8a7b6c5d4e"),
        ("digest 1a2b3c4d5e6f7a8b", "1a2b3c4d5e6f7a8b"),
    ],
)
def test_auth_scheme_credentials_are_still_redacted_in_sentences(text: str, secret: str) -> None:
    assert secret not in R.text(text)
