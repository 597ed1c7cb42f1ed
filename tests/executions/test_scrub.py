"""Rows stored before a connection's secret names were known are redacted again once they are."""

from __future__ import annotations

import pytest
from django.test import Client

from connections.models import AwsAccount, Connection
from executions.history import ParsedAttempt
from executions.ingest import AttemptWriter
from executions.models import Execution, FailureGroup, HttpAttempt
from executions.scrub import rescrub_new_secret_names, secret_names_by_connection
from tests.factories import (
    AwsAccountFactory,
    ConnectionFactory,
    ExecutionFactory,
    FailureGroupFactory,
    HttpAttemptFactory,
)

pytestmark = pytest.mark.django_db

ARN = "arn:aws:events:eu-west-1:111122223333:connection/shop/0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"


def _leaky_rows(account: AwsAccount) -> HttpAttempt:
    execution = ExecutionFactory.create(
        state_machine__account=account, cause="The connection failed: url /echo?ref=LEAK-7"
    )
    FailureGroupFactory.create(
        account=account, connection_arn=ARN, hint="partner said X-Partner-Ref: LEAK-8"
    )
    return HttpAttemptFactory.create(
        execution=execution,
        connection_arn=ARN,
        connection=None,  # stored while the connection was not described yet
        url="https://h.example/echo?ref=LEAK-1&page=2",
        request_headers={"X-Partner-Ref": "LEAK-2", "Accept": "application/json"},
        response_headers={"x-partner-ref": ["LEAK-3"]},
        response_body='{"query": {"ref": ["LEAK-4"]}, "headers": {"x-partner-ref": "LEAK-5"}}',
        cause="echoed ref=LEAK-6",
    )


def test_rows_stored_before_the_connection_was_described_are_redacted_once_it_is() -> None:
    account = AwsAccountFactory.create()
    attempt = _leaky_rows(account)
    known = secret_names_by_connection(account)
    ConnectionFactory.create(
        account=account,
        arn=ARN,
        invocation_parameter_names={
            "headers": ["X-Partner-Ref", "X-Partner-Region"],
            "query": ["ref"],
            "body": [],
            "secret": ["X-Partner-Ref", "ref"],
        },
    )
    assert rescrub_new_secret_names(account, known) == 1
    attempt.refresh_from_db()
    stored = " ".join(
        str(v)
        for v in (
            attempt.url,
            attempt.request_headers,
            attempt.response_headers,
            attempt.response_body,
            attempt.cause,
            Execution.objects.get(pk=attempt.execution_id).cause,
            FailureGroup.objects.get(connection_arn=ARN).hint,
        )
    )
    for n in range(1, 9):
        assert f"LEAK-{n}" not in stored, n
    assert "page=2" in attempt.url and attempt.request_headers["Accept"] == "application/json"


def test_nothing_is_rewritten_when_the_secret_names_did_not_grow() -> None:
    account = AwsAccountFactory.create()
    attempt = _leaky_rows(account)
    ConnectionFactory.create(
        account=account,
        arn=ARN,
        invocation_parameter_names={"headers": ["X-Partner-Region"], "secret": []},
    )
    assert rescrub_new_secret_names(account, secret_names_by_connection(account)) == 0
    attempt.refresh_from_db()
    assert "LEAK-1" in attempt.url


def test_rows_of_a_connection_described_before_secrecy_was_recorded_are_redacted_again() -> None:
    """An installation upgraded from before secret names were recorded: its stored rows were
    written with no connection names, so the first discovery that records them scrubs them."""
    account = AwsAccountFactory.create()
    connection = ConnectionFactory.create(
        account=account,
        arn=ARN,
        invocation_parameter_names={"headers": ["X-Partner-Ref"], "query": ["ref"], "body": []},
    )
    attempt = _leaky_rows(account)
    known = secret_names_by_connection(account)
    connection.invocation_parameter_names = {
        "headers": ["X-Partner-Ref"],
        "query": ["ref"],
        "body": [],
        "secret": ["X-Partner-Ref", "ref"],
    }
    connection.save()
    assert rescrub_new_secret_names(account, known) == 1
    attempt.refresh_from_db()
    assert "LEAK-1" not in attempt.url and "LEAK-4" not in attempt.response_body


def test_a_connection_described_before_secrecy_was_recorded_counts_every_name_secret() -> None:
    old = Connection(invocation_parameter_names={"headers": ["X-Partner-Ref"], "query": ["ref"]})
    assert old.secret_parameter_names == ["X-Partner-Ref", "ref"]
    new = Connection(invocation_parameter_names={"headers": ["X-Region"], "secret": []})
    assert new.secret_parameter_names == []


def test_the_execution_page_redacts_with_the_attempts_connection_names_too(
    admin_client: Client,
) -> None:
    account = AwsAccountFactory.create()
    connection = ConnectionFactory.create(
        account=account,
        arn=ARN,
        invocation_parameter_names={"headers": ["X-Partner-Ref"], "secret": ["X-Partner-Ref"]},
    )
    attempt = _leaky_rows(account)
    HttpAttempt.objects.filter(pk=attempt.pk).update(connection=connection)
    html = admin_client.get(attempt.execution.get_absolute_url()).content.decode()
    assert "LEAK-2" not in html and "LEAK-3" not in html and "LEAK-5" not in html
    assert "application/json" in html


def test_a_stored_hint_and_group_title_keep_the_path_words_of_the_call() -> None:
    account = AwsAccountFactory.create()
    execution = ExecutionFactory.create(state_machine__account=account)
    failed = ParsedAttempt(
        state_name="CallCrm",
        attempt_number=1,
        scheduled_event_id=5,
        closed_event_id=7,
        scheduled_at=execution.start_date,
        method="POST",
        url="https://crm.example/basic",
        connection_arn=ARN,
        status_code=401,
        error="States.Http.StatusCode.401",
        cause="Unauthorized",
        outcome="failed",
    )
    writer = AttemptWriter(account)
    writer.write(execution, [failed])
    writer.flush()
    stored = HttpAttempt.objects.get(execution=execution)
    assert "POST https://crm.example/basic " in stored.hint, stored.hint
    assert "[redacted" not in stored.hint
    assert stored.failure_group is not None
    assert "[redacted" not in stored.failure_group.title + stored.failure_group.hint


def test_endpoint_templates_go_through_the_url_rules_too() -> None:
    token = "9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a"
    account = AwsAccountFactory.create()
    execution = ExecutionFactory.create(state_machine__account=account)
    call = ParsedAttempt(
        state_name="Call",
        attempt_number=1,
        scheduled_event_id=5,
        scheduled_at=execution.start_date,
        method="GET",
        # Not an id shape (the ";" and "="), so templating alone keeps it.
        url=f"https://h.example/v1/orders;jsessionid={token}/items",
        status_code=200,
        outcome="succeeded",
    )
    AttemptWriter(account).write(execution, [call])
    stored = HttpAttempt.objects.select_related("endpoint").get(execution=execution)
    assert stored.endpoint is not None
    assert token not in stored.endpoint.url_template and token not in stored.url
    assert stored.endpoint.url_template == "https://h.example/v1/[redacted:long]/items"
