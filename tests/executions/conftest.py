"""Fixtures shared by the executions tests."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from connections.aws import AwsApi


@pytest.fixture
def history_reads(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """How many times the sync asked GetExecutionHistory for each execution (observed on the
    way through; the call itself goes to the sandbox)."""
    reads: Counter[str] = Counter()
    real = AwsApi._call

    def observed(self: AwsApi, operation: str, method: Any, /, *args: Any, **kwargs: Any) -> Any:
        if operation == "GetExecutionHistory":
            reads[kwargs["executionArn"]] += 1
        return real(self, operation, method, *args, **kwargs)

    monkeypatch.setattr(AwsApi, "_call", observed)
    return reads
