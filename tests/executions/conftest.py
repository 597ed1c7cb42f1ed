"""Fixtures shared by the executions tests."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from connections.aws import AwsApi


def calls_about_each_execution(monkeypatch: pytest.MonkeyPatch, operation: str) -> Counter[str]:
    """How many times the sync asked `operation` about each execution (observed on the way
    through; the call itself goes to the sandbox)."""
    asked: Counter[str] = Counter()
    real = AwsApi._call

    def observed(self: AwsApi, name: str, method: Any, /, *args: Any, **kwargs: Any) -> Any:
        if name == operation:
            asked[kwargs["executionArn"]] += 1
        return real(self, name, method, *args, **kwargs)

    monkeypatch.setattr(AwsApi, "_call", observed)
    return asked


@pytest.fixture
def history_reads(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """GetExecutionHistory calls per execution."""
    return calls_about_each_execution(monkeypatch, "GetExecutionHistory")


@pytest.fixture
def describes(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """DescribeExecution calls per execution."""
    return calls_about_each_execution(monkeypatch, "DescribeExecution")
