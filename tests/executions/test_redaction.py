"""Redaction: secret keys at any depth, secret-looking values anywhere, length class kept."""

from __future__ import annotations

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
