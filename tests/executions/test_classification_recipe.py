"""One classification recipe: ingestion, `reclassify` and `classify_history` agree, whatever
order the executions arrive in (issue 14 item 3)."""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from connections.models import AwsAccount, ConnectionStateChange
from executions.classification import last_state_change_id, reclassify_after_state_changes
from executions.history import parse_history
from executions.ingest import AttemptWriter
from executions.models import Execution, HttpAttempt
from tests.factories import (
    AwsAccountFactory,
    ConnectionFactory,
    ExecutionFactory,
    StateMachineFactory,
)

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
CONNECTION = "arn:aws:events:eu-west-1:111122223333:connection/partner-api/81210c42-8af1"
ORDERS = "https://api.partner.example/v1/orders"
CUSTOMER = "https://api.partner.example/v1/customers/12345"
TENANT = {"X-Tenant-Id": "t-42"}
ORDER: dict[str, Any] = {"sku": "A-1", "qty": 1}
UNAUTHORIZED = ("States.Http.StatusCode.401", "Unauthorized")
BAD_REQUEST = ("States.Http.StatusCode.400", "Bad Request")
NOT_AUTHORIZED = (
    "Events.ConnectionResource.InvalidConnectionState",
    "Connection resource is not authorized. This is likely a configuration issue.",
)


def history(
    name: str,
    minutes: int,
    url: str = ORDERS,
    method: str = "POST",
    failure: tuple[str, str] | None = None,
    headers: dict[str, str] | None = None,
    body: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A GetExecutionHistory document of one HTTP task that made one call."""
    t = (T0 + timedelta(minutes=minutes)).timestamp()
    parameters: dict[str, Any] = {
        "ApiEndpoint": url,
        "Method": method,
        "Authentication": {"ConnectionArn": CONNECTION},
    }
    if headers is not None:
        parameters["Headers"] = headers
    if body is not None:
        parameters["RequestBody"] = body
    http = {"resourceType": "http", "resource": "invoke"}
    events: list[dict[str, Any]] = [
        {"id": 1, "type": "ExecutionStarted", "timestamp": t, "executionStartedEventDetails": {}},
        {
            "id": 2,
            "type": "TaskStateEntered",
            "timestamp": t + 0.01,
            "stateEnteredEventDetails": {"name": "Call", "input": "{}"},
        },
        {
            "id": 3,
            "type": "TaskScheduled",
            "timestamp": t + 0.02,
            "taskScheduledEventDetails": {**http, "parameters": json.dumps(parameters)},
        },
        {"id": 4, "type": "TaskStarted", "timestamp": t + 0.03, "taskStartedEventDetails": http},
    ]
    if failure is None:
        output = {"Headers": {}, "ResponseBody": {"ok": True}, "StatusCode": 200}
        details = {**http, "output": json.dumps(output)}
        events.append(
            {
                "id": 5,
                "type": "TaskSucceeded",
                "timestamp": t + 0.3,
                "taskSucceededEventDetails": details,
            }
        )
    else:
        error, cause = failure
        details = {**http, "error": error, "cause": cause}
        events.append(
            {"id": 5, "type": "TaskFailed", "timestamp": t + 0.3, "taskFailedEventDetails": details}
        )
    arn = f"arn:aws:states:eu-west-1:111122223333:execution:Orders:{name}"
    return {"executionArn": arn, "events": events}


# In time order. Each failure's class depends on another execution: the success before it
# (diff or "same names as the last success"), or the 401 that de-authorized the connection.
HISTORIES = [
    history("early-400", 0, failure=BAD_REQUEST, headers=TENANT, body=ORDER),  # before any success
    history(
        "early-not-authorized", 1, failure=NOT_AUTHORIZED, headers=TENANT, body=ORDER
    ),  # before the 401
    history("ok", 10, headers=TENANT, body=ORDER),
    history("same-names-400", 20, failure=BAD_REQUEST, headers=TENANT, body=ORDER),
    history("no-tenant", 30, failure=BAD_REQUEST, headers={}, body=ORDER),
    history("no-sku", 40, failure=BAD_REQUEST, headers=TENANT, body={"qty": 3}),
    history("unauthorized", 50, url=CUSTOMER, method="GET", failure=UNAUTHORIZED),
    history("not-authorized", 60, failure=NOT_AUTHORIZED, headers=TENANT, body=ORDER),
]
ORDERINGS = {
    "time order": [0, 1, 2, 3, 4, 5, 6, 7],
    "newest first": [7, 6, 5, 4, 3, 2, 1, 0],
    "success after its later failures": [0, 1, 3, 4, 5, 7, 6, 2],
    "shuffled": [5, 2, 7, 0, 3, 6, 1, 4],
}

Classes = dict[str, tuple[str | None, str, str]]


def _name(arn: str) -> str:
    return arn.rsplit(":", 1)[-1]


def via_classify_history(documents: Sequence[dict[str, Any]], tmp_path: Path) -> Classes:
    path = tmp_path / "histories.json"
    path.write_text(json.dumps(list(documents)))
    out = io.StringIO()
    call_command("classify_history", str(path), stdout=out)
    return {
        _name(r["execution_arn"]): (r["category"], r["subcategory"], r["hint"])
        for r in json.loads(out.getvalue())["attempts"]
    }


def ingest(account: AwsAccount, documents: Sequence[dict[str, Any]], batch: int) -> None:
    """The sync's ingest path: executions written `batch` at a time, by one writer."""
    machine = StateMachineFactory.create(account=account)
    writer = AttemptWriter(account)
    work = []
    for document in documents:
        started = datetime.fromtimestamp(document["events"][0]["timestamp"], UTC)
        execution = ExecutionFactory.create(
            state_machine=machine,
            arn=f"{document['executionArn']}-{account.pk}",
            start_date=started,
        )
        work.append((execution, parse_history(document["events"])))
    for start in range(0, len(work), batch):
        writer.write_many(work[start : start + batch], {}, fresh_executions=True)
    writer.flush()


def stored(account: AwsAccount) -> Classes:
    rows = HttpAttempt.objects.filter(account=account).select_related("execution")
    return {
        _name(r.execution.arn).rsplit("-", 1)[0]: (r.category or None, r.subcategory, r.hint)
        for r in rows
    }


@pytest.mark.parametrize("batch", [1, 3])
def test_ingestion_reclassify_and_classify_history_agree_in_any_order(
    tmp_path: Path, batch: int
) -> None:
    expected = via_classify_history(HISTORIES, tmp_path)
    # What the histories say when read together (the test's own sanity check).
    assert expected["early-400"][1] == "http_400"
    assert "no successful call to this endpoint is known" in expected["early-400"][2]
    assert "same header, query and body names" in expected["same-names-400"][2]
    assert expected["no-tenant"][0] == "missing_header"
    assert expected["no-sku"][0] == "missing_parameter"
    assert "de-authorized after a 401" in expected["not-authorized"][2]
    assert "de-authorized after" not in expected["early-not-authorized"][2]
    for label, order in ORDERINGS.items():
        documents = [HISTORIES[i] for i in order]
        assert via_classify_history(documents, tmp_path) == expected, label
        account = AwsAccountFactory.create(name=f"order-{len(label)}-{order[0]}-{batch}")
        ingest(account, documents, batch)
        assert stored(account) == expected, f"ingestion, {label}"
        call_command("reclassify", "--all", "--account", account.name, stderr=io.StringIO())
        assert stored(account) == expected, f"reclassify, {label}"


def test_groups_follow_a_reclassification_the_sync_made(tmp_path: Path) -> None:
    """A success arriving after its later failures moves them to their right group."""
    account = AwsAccountFactory.create()
    ingest(account, [HISTORIES[4]], batch=1)
    ingest(account, [HISTORIES[2]], batch=1)
    failure = HttpAttempt.objects.get(account=account, outcome="failed")
    assert failure.category == "missing_header"
    assert failure.failure_group is not None and failure.failure_group.count == 1
    assert failure.failure_group.category == "missing_header"
    # Empty, it stays at count 0 until the run ends (no run here: finish_sync drops it).
    emptied = account.failure_groups.exclude(pk=failure.failure_group.pk).get()
    assert emptied.count == 0


def test_the_page_and_the_hint_use_the_same_last_success(
    viewer_client: Client, account: AwsAccount
) -> None:
    # The failure arrives first, its earlier success in a later sync.
    ingest(account, [HISTORIES[3]], batch=1)
    ingest(account, [HISTORIES[2]], batch=1)
    failed = Execution.objects.get(arn__contains="same-names-400")
    html = viewer_client.get(reverse("executions:detail", args=[failed.pk])).content.decode()
    assert "Same method, headers, query keys and body keys as the last success" in html
    assert "no successful call to this endpoint is known" not in html
    assert "same header, query and body names as the last successful call" in html


def test_a_recorded_deauthorization_reclassifies_the_failures_stored_before_it() -> None:
    account = AwsAccountFactory.create()
    connection = ConnectionFactory.create(account=account, arn=CONNECTION)
    ingest(account, [HISTORIES[7]], batch=1)  # InvalidConnectionState, no 401 known
    failure = HttpAttempt.objects.get(account=account)
    assert "was de-authorized" not in failure.hint
    since = last_state_change_id()
    ConnectionStateChange.objects.create(
        connection=connection,
        state="DEAUTHORIZED",
        reason="Authorization failed: 401 from the endpoint",
        changed_at=T0 + timedelta(minutes=55),
    )
    assert reclassify_after_state_changes(account, since) == 1
    failure.refresh_from_db()
    assert "was de-authorized after a 401 at 2026-11-02T10:55" in failure.hint, failure.hint
    assert failure.evidence["connection_state"]["inferred"] is False
