"""Issue 15 item 4: `assignedVariables` read, bounded, redacted before storage, shown, and used
to say which variable a failing call's URL or header came from."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.apps import apps
from django.test import Client
from django.urls import reverse

from connections.models import AwsAccount
from executions.classify import classify
from executions.history import (
    HistoryParser,
    HttpStateInfo,
    ParsedAttempt,
    http_states_from_definition,
)
from executions.history.variables import MAX_ASSIGNMENTS
from executions.ingest import AttemptWriter
from executions.models import HttpAttempt, VariableAssignment
from tests.executions.test_classify import FIXTURES
from tests.factories import ExecutionFactory

TOKEN = "pq7XK2mZ4vB8nR1sW9tY3uE6"  # what Login's response handed out; fixture-wide


def _document() -> dict[str, Any]:
    document: dict[str, Any] = json.loads((FIXTURES / "assigned_variables.json").read_text())[0]
    return document


def _parsed() -> tuple[HistoryParser, list[ParsedAttempt], dict[str, HttpStateInfo]]:
    document = _document()
    states = http_states_from_definition(document["definition"])
    parser = HistoryParser(states)
    return parser, [*parser.feed(document["events"]), *parser.finish()], dict(states)


def test_assignments_are_read_and_explain_the_failing_call() -> None:
    parser, attempts, _ = _parsed()
    login, caught = parser.variables.assignments
    assert (login.state_name, login.event_id, login.truncated) == ("Login", 6, False)
    assert login.variables["accessToken"] == TOKEN  # decoded from AWS's JSON-encoded value
    assert login.variables["login"]["token_type"] == "Bearer"
    assert caught.state_name == "GetOrders"
    assert caught.variables["errorVar"]["Error"] == "States.Http.StatusCode.401"
    ok, failed = attempts
    assert ok.variable_sources == {}  # nothing was assigned before Login's call
    assert failed.variable_sources == {
        "url": "$ordersUrl (assigned by Login)",
        "header X-Partner-Session": "$auth (assigned by Login)",
    }
    result = classify(failed)
    assert result.evidence["built_from_variables"] == failed.variable_sources
    assert "the url came from $ordersUrl (assigned by Login)" in result.hint
    assert "built_from_variables" not in classify(ok).evidence


def test_assignments_are_bounded_per_execution() -> None:
    events: list[dict[str, Any]] = [{"id": 1, "type": "ExecutionStarted", "timestamp": 1.0}]
    for i in range(MAX_ASSIGNMENTS + 50):
        events.append(
            {
                "id": i + 2,
                "previousEventId": i + 1,
                "type": "PassStateExited",
                "timestamp": 2.0,
                "stateExitedEventDetails": {
                    "name": "Loop",
                    "assignedVariables": {f"v{n}": json.dumps("x" * 10) for n in range(80)},
                },
            }
        )
    parser = HistoryParser()
    list(parser.feed(events))
    assert len(parser.variables.assignments) == MAX_ASSIGNMENTS
    assert parser.variables.dropped == 50
    assert max(len(a.variables) for a in parser.variables.assignments) == 50


@pytest.mark.django_db
def test_canary_an_assigned_token_never_lands_unredacted(
    viewer_client: Client, account: AwsAccount
) -> None:
    parser, attempts, states = _parsed()
    execution = ExecutionFactory.create(state_machine__account=account)
    writer = AttemptWriter(account)
    writer.write(execution, attempts, states)
    assert writer.write_assignments(execution, parser.variables.assignments) == 2
    writer.write_assignments(execution, parser.variables.assignments)  # read twice: once stored
    writer.flush()
    stored = list(VariableAssignment.objects.filter(execution=execution))
    assert [(a.state_name, a.event_id) for a in stored] == [("Login", 6), ("GetOrders", 11)]
    kept = stored[0].variables
    assert kept["ordersUrl"] == "https://api.partner.example/v2/orders"
    assert kept["login"]["token_type"] == "Bearer"
    failed = HttpAttempt.objects.get(execution=execution, outcome="failed")
    assert failed.variable_sources["url"] == "$ordersUrl (assigned by Login)"
    assert "$ordersUrl" in failed.hint
    # Every column of every stored row, of every model: the token is nowhere.
    for model in apps.get_models():
        for row in model._default_manager.all().values():
            assert TOKEN not in json.dumps(row, default=str), (model.__name__, row)
    html = viewer_client.get(reverse("executions:detail", args=[execution.pk])).content.decode()
    assert "Variables assigned" in html and "$ordersUrl" in html and "Built from variables" in html
    assert TOKEN not in html
