"""Distributed Map Runs through a real sandbox sync over HTTP (issue 15 item 5): the parent's
MapRunStarted / MapRunFailed are stored as a MapRun, its child executions (never returned by
ListExecutions of the machine) are found through the run's own listing, read, and linked to
the parent and the run; the parent's page shows the children's failures together."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest
import requests
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from executions.models import Execution, HttpAttempt, MapRun
from executions.sync import sync_account_by_id
from sandbox.server import Sandbox
from tests.aws_sandbox import register, sandbox_client

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

API_KEY = {"ApiKeyAuthParameters": {"ApiKeyName": "x-api-key", "ApiKeyValue": "map-run-key"}}


def _connected(sandbox: Sandbox, prefix: str) -> tuple[Any, str, str]:
    """The Step Functions client, an API-key connection named `prefix-suffix`, and the suffix
    that names the test's other resources (the sandbox is the session's)."""
    suffix = uuid.uuid4().hex[:6]
    connection_arn = sandbox_client(sandbox, "events").create_connection(
        Name=f"{prefix}-{suffix}", AuthorizationType="API_KEY", AuthParameters=API_KEY
    )["ConnectionArn"]
    return sandbox_client(sandbox, "stepfunctions"), str(connection_arn), suffix


def _distributed_map(sfn: Any, connection_arn: str, machine: str) -> str:
    call = {
        "Type": "Task",
        "Resource": "arn:aws:states:::http:invoke",
        "Parameters": {
            "ApiEndpoint.$": "$.url",
            "Method": "GET",
            "InvocationConfig": {"ConnectionArn": connection_arn},
        },
        "End": True,
    }
    definition = {
        "StartAt": "FanOut",
        "States": {
            "FanOut": {
                "Type": "Map",
                "Label": "orders",
                "ItemsPath": "$.items",
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                    "StartAt": "Push",
                    "States": {"Push": call},
                },
                "End": True,
            }
        },
    }
    return str(
        sfn.create_state_machine(
            name=machine,
            definition=json.dumps(definition),
            roleArn="arn:aws:iam::123456789012:role/sandbox",
        )["stateMachineArn"]
    )


def _run(sfn: Any, machine_arn: str, urls: list[str]) -> str:
    items = json.dumps({"items": [{"url": url} for url in urls]})
    arn = str(sfn.start_execution(stateMachineArn=machine_arn, input=items)["executionArn"])
    for _ in range(400):
        if sfn.describe_execution(executionArn=arn)["status"] != "RUNNING":
            return arn
        time.sleep(0.05)
    raise AssertionError("the parent execution did not finish")


def test_sync_links_a_distributed_map_parent_its_map_run_and_children(
    sync_sandbox: Sandbox, admin_client: Client
) -> None:
    sfn, connection_arn, suffix = _connected(sync_sandbox, "maprun")
    machine = f"maprun-{suffix}"
    machine_arn = _distributed_map(sfn, connection_arn, machine)
    broken = f"{sync_sandbox.partner_url}/status/503"
    parent_arn = _run(sfn, machine_arn, [broken, broken, f"{sync_sandbox.partner_url}/status/200"])

    account = register(sync_sandbox, name=f"maprun-{suffix}")
    sync_account_by_id(account.pk, trigger="test")

    parent = Execution.objects.get(arn=parent_arn)
    assert parent.status == "FAILED"
    assert parent.error == "States.ExceedToleratedFailureThreshold"
    run = MapRun.objects.get(parent_execution=parent)
    assert run.arn.startswith(f"arn:aws:states:us-east-1:123456789012:mapRun:{machine}/orders:")
    assert (run.label, run.map_state, run.status) == ("orders", "FanOut", "FAILED")
    assert run.error == "States.ExceedToleratedFailureThreshold"
    assert run.tolerated_failure_count == 0  # from DescribeMapRun
    assert run.execution_counts["total"] == 3

    children = Execution.objects.filter(map_run=run)
    assert children.count() == 3
    assert all(c.parent_execution_id == parent.pk for c in children)
    assert all(f":execution:{machine}/orders:" in c.arn for c in children)
    assert sorted(c.status for c in children) == ["FAILED", "FAILED", "SUCCEEDED"]
    failed = HttpAttempt.objects.filter(execution__map_run=run, status_code=503)
    assert failed.count() >= 2  # each failing child's call, stored like any execution's

    page = admin_client.get(parent.get_absolute_url())
    assert page.status_code == 200
    text = page.content.decode()
    assert "Map Run" in text and "orders" in text
    assert "2 of 3" in text  # the children's failures together
    assert "the endpoint is the problem, not the items" in text
    assert "AWS counts (DescribeMapRun" in text and "3 child executions" in text

    group_id = failed.values_list("failure_group_id", flat=True).first()
    assert group_id is not None
    group_page = admin_client.get(reverse("executions:group", args=[group_id])).content.decode()
    assert "Per Map Run" in group_page and parent.name in group_page

    child = children.filter(status="FAILED").first()
    assert child is not None
    child_page = admin_client.get(child.get_absolute_url()).content.decode()
    assert parent.get_absolute_url() in child_page  # a child links to its parent

    api = admin_client.get(reverse("api:execution", args=[parent.pk])).json()
    [api_run] = api["map_runs"]
    assert (api_run["arn"], api_run["children"], api_run["failing_children"]) == (run.arn, 3, 2)
    assert api_run["verdict"] == "endpoint"
    assert api_run["failures"][0]["children"] == 2
    api_child = admin_client.get(reverse("api:execution", args=[child.pk])).json()
    assert (api_child["parent_execution"], api_child["map_run"]) == (parent.pk, run.pk)


def test_a_map_run_aws_will_not_let_us_read_costs_only_itself(
    sync_sandbox: Sandbox, admin_client: Client
) -> None:
    sfn, connection_arn, suffix = _connected(sync_sandbox, "maprun-deny")
    ok = f"{sync_sandbox.partner_url}/status/200"
    denied_parent = _run(sfn, _distributed_map(sfn, connection_arn, f"denied-{suffix}"), [ok])
    readable_parent = _run(sfn, _distributed_map(sfn, connection_arn, f"readable-{suffix}"), [ok])
    denied_run = sfn.list_map_runs(executionArn=denied_parent)["mapRuns"][0]["mapRunArn"]

    url = f"{sync_sandbox.endpoint_url}/_sandbox/faults"
    requests.post(url, json={"resources": {denied_run: "access_denied"}}, timeout=5)
    try:
        account = register(sync_sandbox, name=f"maprun-deny-{suffix}")
        sync_account_by_id(account.pk, trigger="test")
    finally:
        requests.delete(url, timeout=5)

    denied = MapRun.objects.get(arn=denied_run)
    assert "DescribeMapRun: AccessDeniedException" in denied.read_problem
    assert denied.status == "SUCCEEDED"  # what the parent's history said is kept
    assert not Execution.objects.filter(map_run=denied).exists()
    readable = MapRun.objects.get(parent_execution__arn=readable_parent)
    assert readable.read_problem == ""
    assert Execution.objects.filter(map_run=readable, status="SUCCEEDED").count() == 1

    page = admin_client.get(Execution.objects.get(arn=denied_parent).get_absolute_url())
    assert "could not read this Map Run from AWS" in page.content.decode()


def test_children_of_two_parents_with_the_same_label_link_to_their_own_run(
    sync_sandbox: Sandbox,
) -> None:
    sfn, connection_arn, suffix = _connected(sync_sandbox, "maprun-two")
    machine_arn = _distributed_map(sfn, connection_arn, f"two-{suffix}")
    ok = f"{sync_sandbox.partner_url}/status/200"
    first = _run(sfn, machine_arn, [ok])
    second = _run(sfn, machine_arn, [ok, ok])

    account = register(sync_sandbox, name=f"maprun-two-{suffix}")
    sync_account_by_id(account.pk, trigger="test")

    for parent_arn, n in ((first, 1), (second, 2)):
        parent = Execution.objects.get(arn=parent_arn)
        run = MapRun.objects.get(parent_execution=parent)
        assert run.label == "orders"
        children = Execution.objects.filter(map_run=run)
        assert children.count() == n
        assert set(children.values_list("parent_execution_id", flat=True)) == {parent.pk}


def test_a_map_run_cut_short_by_a_transient_error_is_listed_again_next_sync(
    sync_sandbox: Sandbox,
) -> None:
    sfn, connection_arn, suffix = _connected(sync_sandbox, "maprun-again")
    ok = f"{sync_sandbox.partner_url}/status/200"
    parent_arn = _run(sfn, _distributed_map(sfn, connection_arn, f"again-{suffix}"), [ok, ok])
    account = register(sync_sandbox, name=f"maprun-again-{suffix}")

    url = f"{sync_sandbox.endpoint_url}/_sandbox/faults"
    requests.post(url, json={"DescribeMapRun": {"error": 1.0}}, timeout=5)
    try:
        sync_account_by_id(account.pk, trigger="test")
    finally:
        requests.delete(url, timeout=5)
    run = MapRun.objects.get(parent_execution__arn=parent_arn)
    assert "InternalFailure" in run.read_problem
    assert not run.children_listed
    assert not Execution.objects.filter(map_run=run).exists()

    # The parent is unchanged (its history is not read again): the run is listed all the same.
    sync_account_by_id(account.pk, trigger="test")
    run.refresh_from_db()
    assert (run.children_listed, run.read_problem) == (True, "")
    assert Execution.objects.filter(map_run=run, status="SUCCEEDED").count() == 2


def test_a_map_runs_children_are_looked_up_a_page_at_a_time(sync_sandbox: Sandbox) -> None:
    """A run may have thousands of children: their stored rows come in one query a page (as
    the machine's listing does), not one query a child."""
    sfn, connection_arn, suffix = _connected(sync_sandbox, "maprun-page")
    machine_arn = _distributed_map(sfn, connection_arn, f"maprun-page-{suffix}")
    ok = f"{sync_sandbox.partner_url}/status/200"
    parent_arn = _run(sfn, machine_arn, [ok] * 6)

    account = register(sync_sandbox, name=f"maprun-page-{suffix}")
    with CaptureQueriesContext(connection) as queries:
        sync_account_by_id(account.pk, trigger="test")

    children = list(
        Execution.objects.filter(parent_execution__arn=parent_arn).values_list("arn", flat=True)
    )
    assert len(children) == 6
    one_by_one = [
        q["sql"]
        for q in queries.captured_queries
        for arn in children
        if f'"executions_execution"."arn" = \'{arn}\'' in q["sql"]
    ]
    assert one_by_one == []
