"""Shared fixtures: the sandbox (a real moto server over HTTP) and an account registered on it.

Loaded for every test directory by the repository-root conftest.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from connections.choices import AuthMode
from connections.forms import AwsAccountForm
from connections.models import AwsAccount
from sandbox.server import Sandbox, start_sandbox


@pytest.fixture(scope="session")
def sync_sandbox() -> Iterator[Sandbox]:
    running = start_sandbox(host="127.0.0.1", port=0, http_timeout_seconds=2.0)
    yield running
    running.stop()


def register(sandbox: Sandbox, name: str = "sandbox", region: str = "") -> AwsAccount:
    form = AwsAccountForm(
        data={
            "name": name,
            "account_id": "123456789012",
            "regions": region or sandbox.region,
            "auth_mode": AuthMode.ACCESS_KEYS,
            "access_key_id": "AKIAIOSFODNN7EXAMPLE",
            "secret_access_key": "sandbox-secret-key-not-a-real-one",
            "endpoint_url": sandbox.endpoint_url,
            "enabled": True,
            "sync_interval_seconds": 60,
        }
    )
    assert form.is_valid(), form.errors
    return form.save()


ROOT = Path(__file__).resolve().parents[1]


def sandbox_client(sandbox: Sandbox, service: str) -> Any:
    """A plain boto3 client of the sandbox, for a test to set up or read AWS as a user would."""
    make: Any = boto3.client  # a service name from a variable: no overload to pick
    return make(
        service,
        endpoint_url=sandbox.endpoint_url,
        region_name=sandbox.region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
