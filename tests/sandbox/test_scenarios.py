"""`sandbox run`: the seeded workload, its summary, and the shape of every history it leaves."""

from __future__ import annotations

import io
from collections import Counter

import pytest
from django.core.management import call_command

from sandbox import scenarios
from sandbox.server import Sandbox
from tests.sandbox.support import Aws


@pytest.fixture(scope="module")
def summary(sandbox: Sandbox) -> scenarios.Summary:
    return scenarios.run(sandbox.endpoint_url, executions=120, seed=7)


def test_run_accounts_for_every_execution(summary: scenarios.Summary) -> None:
    assert summary.executions == 120
    assert sum(summary.by_status.values()) == 120
    assert set(summary.by_status) <= {"SUCCEEDED", "FAILED"}


def test_run_produces_the_failure_modes(summary: scenarios.Summary) -> None:
    expected = {
        "States.Http.StatusCode.400",
        "States.Http.StatusCode.503",
        "States.Http.Socket",
        "States.Runtime",
        "Events.ConnectionResource.InvalidConnectionState",
    }
    assert expected <= set(summary.task_errors)
    assert "Task error" in summary.table()


def test_run_starts_the_seeded_plan(summary: scenarios.Summary) -> None:
    planned = Counter(case.name for case in scenarios.plan(120, seed=7))
    started = {name: sum(counts.values()) for name, counts in summary.by_case.items()}
    assert started == dict(planned)
    assert scenarios.plan(120, seed=7) == scenarios.plan(120, seed=7)


def test_every_sandbox_history_event_matches_botocore(aws: Aws, summary: scenarios.Summary) -> None:
    checked = 0
    for page in aws.sfn.get_paginator("list_state_machines").paginate():
        for machine in page["stateMachines"]:
            if (
                aws.sfn.describe_state_machine(stateMachineArn=machine["stateMachineArn"])["type"]
                == "EXPRESS"
            ):
                continue
            for listed in aws.sfn.get_paginator("list_executions").paginate(
                stateMachineArn=machine["stateMachineArn"]
            ):
                for execution in listed["executions"]:
                    aws.history(execution["executionArn"])  # asserts the shape of every event
                    checked += 1
    assert checked >= 100


def test_command_runs_again_on_the_same_account(
    sandbox: Sandbox, summary: scenarios.Summary
) -> None:
    out = io.StringIO()
    call_command(
        "sandbox",
        "run",
        "--endpoint-url",
        sandbox.endpoint_url,
        "--executions",
        "15",
        "--seed",
        "2",
        stdout=out,
        stderr=io.StringIO(),
    )
    assert "15 executions" in out.getvalue()
    assert "Status" in out.getvalue()
