"""The moto plug-in itself: the internals check and the registration."""

from __future__ import annotations

import importlib
from typing import Any

import pytest

from sandbox import http_task
from sandbox.http_task import MotoInternalsMovedError
from sandbox.server import Sandbox

state_task_factory: Any = importlib.import_module(
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.state_task_factory"
)


def test_moto_internals_are_where_the_plugin_expects_them() -> None:
    http_task.check_moto_internals()


def test_internals_check_names_what_moved(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(state_task_factory, "state_task_service_for")
    with pytest.raises(MotoInternalsMovedError, match="state_task_service_for"):
        http_task.check_moto_internals()


def test_internals_check_rejects_another_moto_version(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("moto.__version__", "9.9.9")
    with pytest.raises(MotoInternalsMovedError, match=r"moto==9\.9\.9"):
        http_task.check_moto_internals()


def test_http_service_is_registered(sandbox: Sandbox) -> None:
    service = state_task_factory.state_task_service_for(service_name="http")
    assert type(service).__name__ == "StateTaskServiceHttp"
