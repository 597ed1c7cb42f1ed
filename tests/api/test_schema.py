"""schemathesis against /api/schema/ (issue 19): every operation, fuzzed from the schema, must
answer without a server error and exactly as the schema says (status codes, content type, body).

It runs in-process over WSGI on the test database with a few objects in a visible account and
one in a hidden one, as a user with a token who may triage groups. The example count is bounded
so the whole file stays well under a minute.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.contrib.auth.models import Group
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from alerts.models import Alert, Delivery, DeliveryAttempt
from api.models import ApiToken
from connections.models import AwsAccount
from dashboard.wsgi import application
from tests.factories import ConnectionStateChangeFactory, SyncRunFactory, UserFactory
from tests.test_access_matrix import _objects_in

pytestmark = pytest.mark.django_db

schema = schemathesis.openapi.from_wsgi("/api/schema/", application)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(autouse=True)
def _keep_the_test_connection() -> Iterator[None]:
    """Django's test Client stops requests from closing the test's database connection (it
    holds the test transaction); the WSGI app schemathesis calls needs the same."""
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    yield
    for signal in (request_started, request_finished):
        signal.connect(close_old_connections)


@pytest.fixture
def token(viewers: Group, account: AwsAccount, other_account: AwsAccount) -> str:
    made = _objects_in(account)
    _objects_in(other_account)
    ConnectionStateChangeFactory.create(connection=made["connection"])
    SyncRunFactory.create(account=account, throttles={"ListExecutions": 2})
    alert = Alert.objects.create(rule=made["rule"], key="schema", payload={"title": "t"})
    delivery = Delivery.objects.create(
        alert=alert, channel="email", next_attempt_at=alert.created_at
    )
    DeliveryAttempt.objects.create(delivery=delivery, ok=False, answer="SMTP: refused")
    user = UserFactory.create(groups=[viewers], perms=["executions.change_failuregroup"])
    return ApiToken.issue(user, "schemathesis")[1]


@schema.parametrize()
@settings(
    max_examples=8,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_api_conforms_to_its_schema(case: Any, token: str) -> None:
    case.call_and_validate(headers={"Authorization": f"Bearer {token}"}, checks=CHECKS)


def test_the_schema_lists_every_resource() -> None:
    paths = set(schema.raw_schema["paths"])
    resources = ("attempts", "executions", "groups", "connections", "endpoints", "sync-runs")
    for resource in (*resources, "alert-rules"):
        assert f"/api/v1/{resource}/" in paths
    assert "/api/v1/groups/{id}/status/" in paths
    assert "/api/v1/alert-rules/{id}/deliveries/" in paths
