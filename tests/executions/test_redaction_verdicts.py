"""Redactor.is_secret_key remembers its verdict per key name, per redactor, in bounded memory."""

from __future__ import annotations

import pytest

from executions import redaction
from executions.redaction import Redactor


def test_a_key_is_judged_once_and_the_verdict_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    judged: list[object] = []
    judge = Redactor._judge

    def counting(self: Redactor, key: object) -> bool:
        judged.append(key)
        return judge(self, key)

    monkeypatch.setattr(Redactor, "_judge", counting, raising=False)
    redactor = Redactor()
    verdicts = [redactor.is_secret_key(k) for k in ("Authorization", "x-trace", "Authorization")]
    assert verdicts == [True, False, True]
    assert judged == ["Authorization", "x-trace"]


def test_a_redactor_with_more_secret_names_does_not_reuse_the_old_verdicts() -> None:
    base = Redactor()
    assert base.is_secret_key("partner_ref") is False
    derived = base.with_secret_names(["partner_ref"])
    assert derived.is_secret_key("partner_ref") is True
    assert base.is_secret_key("partner_ref") is False
    assert derived == Redactor(secret_names=frozenset({"partner_ref"}))  # the cache is no field


def test_the_verdicts_stay_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(redaction, "_MAX_VERDICTS", 10)
    redactor = Redactor()
    for n in range(35):
        assert redactor.is_secret_key(f"field{n}") is False
    assert redactor.is_secret_key("api_key") is True
    assert len(redactor._verdicts) <= 10
    assert redactor.is_secret_key(42) is False  # not a string: judged, not remembered
