from __future__ import annotations

from collections.abc import Iterator

import pytest

from sandbox import partner
from sandbox.server import Sandbox, start_sandbox
from tests.sandbox.support import Aws

# Small enough to keep the suite fast, large enough for a slow-but-fine call to succeed.
HTTP_TIMEOUT_SECONDS = 2.0


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Sandbox]:
    running = start_sandbox(host="127.0.0.1", port=0, http_timeout_seconds=HTTP_TIMEOUT_SECONDS)
    yield running
    running.stop()


@pytest.fixture(scope="session")
def aws(sandbox: Sandbox) -> Aws:
    return Aws(sandbox.endpoint_url, sandbox.region)


@pytest.fixture
def partner_url(sandbox: Sandbox) -> str:
    return sandbox.partner_url


@pytest.fixture
def basic_connection(aws: Aws) -> str:
    return aws.connection(
        "BASIC",
        {
            "BasicAuthParameters": {
                "Username": partner.BASIC_USERNAME,
                "Password": partner.BASIC_PASSWORD,
            }
        },
    )
