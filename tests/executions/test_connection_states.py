"""Issue 15 item 6: what a connection's recorded state says about a failure through it.

The fixture holds histories in GetExecutionHistory's format with, per document, the
DescribeConnection answer of its connection (`connections`, as classify_history accepts).
"""

from __future__ import annotations

import io
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.utils import timezone

from executions.classify import ClassificationContext, ConnectionStateChange, classify
from executions.classify.connection_states import PROVISIONING_WINDOW
from executions.history import http_states_from_definition, parse_history
from executions.models import HttpAttempt
from tests.executions.test_classify import FIXTURES
from tests.factories import ConnectionFactory, ConnectionStateChangeFactory, HttpAttemptFactory

FIXTURE = FIXTURES / "private_and_kms_connections.json"


def rows_of(path: Path) -> list[dict[str, Any]]:
    out = io.StringIO()
    call_command("classify_history", str(path), stdout=out)
    rows: list[dict[str, Any]] = json.loads(out.getvalue())["attempts"]
    return rows


def test_connection_states_tell_provisioning_network_path_and_kms_apart() -> None:
    first_minutes, no_path, kms = rows_of(FIXTURE)
    assert (first_minutes["category"], first_minutes["subcategory"]) == (
        "network",
        "private_connection_provisioning",
    )
    assert first_minutes["evidence"]["connection_state"]["state"] == "ACTIVE"
    assert first_minutes["evidence"]["seconds_since_change"] == 120
    assert "retry" in first_minutes["hint"].lower() and "provisions" in first_minutes["hint"]
    # The definition has no Retry: one is advised, for the timeout errors.
    assert "no Retry covers States.Timeout" in first_minutes["hint"]

    assert (no_path["category"], no_path["subcategory"]) == (
        "network",
        "connection_failed_connectivity",
    )
    assert "not credentials" in no_path["hint"]

    assert (kms["category"], kms["subcategory"]) == ("permissions", "connection_kms_key")
    assert "key policy" in kms["hint"] and "do not rotate the credentials" in kms["hint"]
    assert "KMS" in kms["evidence"]["connection_state"]["reason"]


def test_without_the_connection_states_the_old_classes_stand(tmp_path: Path) -> None:
    documents = json.loads(FIXTURE.read_text())
    for document in documents:
        document.pop("connections")
    bare = tmp_path / "bare.json"
    bare.write_text(json.dumps(documents))
    assert [(r["category"], r["subcategory"]) for r in rows_of(bare)] == [
        ("timeout", "task_timeout"),
        ("network", "private_connection_not_active"),
        ("auth", "connection_deauthorized"),
    ]


def _first(document: dict[str, Any]) -> Any:
    (attempt,) = parse_history(document["events"], document["definition"])
    return attempt


@pytest.mark.parametrize(
    "after", [PROVISIONING_WINDOW + timedelta(seconds=1), -timedelta(seconds=5)]
)
def test_a_timeout_outside_the_provisioning_window_is_a_plain_timeout(after: timedelta) -> None:
    attempt = _first(json.loads(FIXTURE.read_text())[0])
    change = ConnectionStateChange(at=attempt.scheduled_at - after, state="ACTIVE", reason="")
    result = classify(attempt, ClassificationContext(connection_states=(change,)))
    # Too long after the create/update, or a change the attempt came before: not provisioning.
    assert result.subcategory == "task_timeout"


def test_a_deauthorization_without_kms_in_its_reason_is_about_credentials() -> None:
    attempt = _first(json.loads(FIXTURE.read_text())[2])
    change = ConnectionStateChange(
        at=attempt.scheduled_at - timedelta(minutes=3),
        state="DEAUTHORIZED",
        reason="The connection was deauthorized because the endpoint returned HTTP 401.",
    )
    result = classify(attempt, ClassificationContext(connection_states=(change,)))
    assert (result.category, result.subcategory) == ("auth", "connection_deauthorized")


def test_failed_connectivity_also_explains_invalid_connection_state() -> None:
    # An OAuth connection with a private authorization endpoint: a public API, but the token
    # cannot be fetched, so calls fail with InvalidConnectionState (reference §8).
    attempt = _first(json.loads(FIXTURE.read_text())[2])
    change = ConnectionStateChange(
        at=attempt.scheduled_at - timedelta(hours=1), state="FAILED_CONNECTIVITY", reason=""
    )
    result = classify(attempt, ClassificationContext(connection_states=(change,)))
    assert (result.category, result.subcategory) == ("network", "connection_failed_connectivity")


def test_a_provisioning_timeout_under_a_retry_is_not_told_to_add_one() -> None:
    document = json.loads(FIXTURE.read_text())[0]
    definition = json.loads(document["definition"])
    definition["States"]["FetchOrder"]["Retry"] = [
        {"ErrorEquals": ["States.Timeout"], "MaxAttempts": 3, "BackoffRate": 2}
    ]
    document["definition"] = json.dumps(definition)
    (attempt,) = parse_history(document["events"], document["definition"])
    assert attempt.scheduled_at is not None
    state = http_states_from_definition(document["definition"])["FetchOrder"]
    change = ConnectionStateChange(
        at=attempt.scheduled_at - timedelta(minutes=1), state="ACTIVE", reason=""
    )
    result = classify(
        attempt, ClassificationContext(connection_states=(change,), definition_state=state)
    )
    assert result.subcategory == "private_connection_provisioning"
    assert "add a Retry" not in result.hint and "the state's Retry covers it" in result.hint


# --------------------------------------------------------------------------- stored


@pytest.mark.django_db
def test_reclassify_explains_stored_failures_by_the_recorded_connection_states() -> None:
    now = timezone.now()
    private = ConnectionFactory.create(
        state="ACTIVE", private_resources={"api": {"configuration_arn": "x"}}
    )
    keyed = ConnectionFactory.create(account=private.account, state="DEAUTHORIZED")
    ConnectionStateChangeFactory.create(
        connection=private, state="ACTIVE", changed_at=now - timedelta(minutes=3)
    )
    ConnectionStateChangeFactory.create(
        connection=keyed, state="DEAUTHORIZED", changed_at=now - timedelta(minutes=30),
        reason="EventBridge could not decrypt the secret: KMS key disabled.",
    )  # fmt: skip
    old = {"category": "timeout", "subcategory": "x", "hint": "", "classifier_version": "2000.1"}
    timeout = HttpAttemptFactory.create(
        execution__state_machine__account=private.account, connection=private, status_code=None,
        error="States.Http.Socket", cause="", outcome="failed", occurred_at=now - timedelta(minutes=1),
        **old,
    )  # fmt: skip
    denied = HttpAttemptFactory.create(
        execution=timeout.execution, connection=keyed, status_code=None, outcome="failed",
        error="Events.ConnectionResource.InvalidConnectionState", cause="",
        occurred_at=now - timedelta(minutes=2), **old,
    )  # fmt: skip
    call_command("reclassify")
    rows = HttpAttempt.objects.in_bulk([timeout.pk, denied.pk])
    assert rows[timeout.pk].subcategory == "private_connection_provisioning"
    assert rows[denied.pk].subcategory == "connection_kms_key"


def test_junk_connection_answers_are_ignored(tmp_path: Path) -> None:
    document = json.loads(FIXTURE.read_text())[0]
    document["connections"] = [
        None, "x", {"ConnectionArn": 5}, {"ConnectionArn": "a", "ConnectionState": "ACTIVE"},
        {"ConnectionArn": "a", "ConnectionState": ["ACTIVE"], "LastModifiedTime": 1},
        {"ConnectionArn": "a", "ConnectionState": "ACTIVE", "LastModifiedTime": "soon",
         "StateReason": {"x": 1}},
    ]  # fmt: skip
    path = tmp_path / "junk.json"
    path.write_text(json.dumps(document))
    (row,) = rows_of(path)
    assert row["subcategory"] == "task_timeout"
    path.write_text(json.dumps({**document, "connections": {"not": "a list"}}))
    assert rows_of(path)[0]["subcategory"] == "task_timeout"
