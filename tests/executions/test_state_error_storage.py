"""Issue 15 item 9, stored: a 200 whose state then failed keeps the state's error apart from
the call's, redacted, shown on the execution page and rebuilt by `reclassify`."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from connections.models import AwsAccount
from executions.history import parse_history
from executions.ingest import AttemptWriter
from executions.models import HttpAttempt
from tests.executions.test_classify import FIXTURES
from tests.factories import ExecutionFactory

pytestmark = pytest.mark.django_db

TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJjYW5hcnkifQ.c2VjcmV0LXNpZ25hdHVyZS12YWx1ZQ"


def _stored(account: AwsAccount) -> HttpAttempt:
    document = json.loads((FIXTURES / "after_response_and_cut_off.json").read_text())[0]
    selector = parse_history(document["events"], document.get("definition"))[0]
    # What a real cause may quote from the response: a token must not land.
    selector.state_cause += f' "Authorization": "Bearer {TOKEN}"'
    execution = ExecutionFactory.create(state_machine__account=account)
    writer = AttemptWriter(account)
    writer.write(execution, [selector])
    writer.flush()
    return HttpAttempt.objects.get(execution=execution)


def test_the_state_error_is_stored_redacted_and_shown(
    viewer_client: Client, account: AwsAccount
) -> None:
    row = _stored(account)
    assert (row.outcome, row.status_code, row.category) == ("succeeded", 200, "")
    assert row.state_error == "States.Runtime"
    assert row.state_subcategory == "after_response_path"
    assert "answered 200" in row.state_hint and "ResultSelector" in row.state_hint
    assert "$.ResponseBody.customer.id" in row.state_cause
    assert TOKEN not in row.state_cause
    page = viewer_client.get(reverse("executions:detail", args=[row.execution_id]))
    html = page.content.decode()
    assert "The call succeeded; the state then failed" in html
    assert "$.ResponseBody.customer.id" in html and TOKEN not in html


def test_reclassify_rebuilds_the_state_error_classification(account: AwsAccount) -> None:
    row = _stored(account)
    HttpAttempt.objects.filter(pk=row.pk).update(
        state_subcategory="", state_hint="", classifier_version="2000.1"
    )
    call_command("reclassify")
    row.refresh_from_db()
    assert row.state_subcategory == "after_response_path"
    assert "answered 200" in row.state_hint
