"""System checks of our own that run with every `manage.py check` (and `check --deploy`)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.conf import settings
from django.core.checks import CheckMessage, run_checks
from django.test import override_settings

from executions.redaction import default_redactor


def redaction_settings(**patterns: list[str]) -> Any:
    return override_settings(STEPSCOPE={**settings.STEPSCOPE, **patterns})


def check_errors() -> list[CheckMessage]:
    return [m for m in run_checks() if m.id == "stepscope.E002"]


def test_a_value_pattern_that_does_not_compile_is_an_error_naming_it() -> None:
    with redaction_settings(REDACT_VALUE_PATTERNS=[r"ACME-\d{6}", "[unclosed"]):
        errors = check_errors()
    assert len(errors) == 1
    assert errors[0].msg.startswith(
        "REDACT_VALUE_PATTERNS pattern '[unclosed' is not a valid regular expression: "
        "unterminated character set"
    )
    assert "ACME" not in errors[0].msg


def test_every_bad_key_pattern_is_named() -> None:
    with redaction_settings(REDACT_KEY_PATTERNS=["^x-tenant$", "(", r"a{99999999999}"]):
        errors = check_errors()
    assert [e.msg.split(" is not")[0] for e in errors] == [
        "REDACT_KEY_PATTERNS pattern '('",
        "REDACT_KEY_PATTERNS pattern 'a{99999999999}'",
    ]


def test_valid_patterns_pass_the_check() -> None:
    with redaction_settings(REDACT_KEY_PATTERNS=["^x-tenant$"], REDACT_VALUE_PATTERNS=["ACME-"]):
        assert check_errors() == []


def test_at_run_time_a_bad_pattern_is_left_out_with_a_warning_and_the_good_ones_apply(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Unique: each bad pattern is reported once per process.
    bad = f"[unclosed-{uuid.uuid4().hex[:6]}"
    with redaction_settings(
        REDACT_KEY_PATTERNS=["^x-tenant$", bad], REDACT_VALUE_PATTERNS=[bad, r"ACME-\d{6}"]
    ):
        redactor = default_redactor()
    assert redactor.value({"X-Tenant": "t1", "note": "id ACME-123456"}) == {
        "X-Tenant": "[redacted:short]",
        "note": "id [redacted:medium]",
    }
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any(repr(bad) in w and "ignored" in w for w in warnings), warnings
