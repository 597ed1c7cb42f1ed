"""The AWS boundary for Distributed Map Runs: ListMapRuns, DescribeMapRun and a Map Run's child
executions (ListExecutions with `mapRunArn`).

A Distributed Map's items run as child executions that ListExecutions of the parent's state
machine never returns; the Map Run's own listing is the only way to find them. Like
connections/aws.py (kept apart from it by size), each operation calls one typed boto3 method
through `AwsApi._call` (rate limited, counted, errors as `AwsError`) and answers frozen
dataclasses.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from connections.aws import EXECUTIONS_PER_PAGE, AwsApi, ListedExecution, listed_execution

if TYPE_CHECKING:
    from mypy_boto3_stepfunctions.type_defs import (
        ListExecutionsInputTypeDef,
        ListMapRunsInputTypeDef,
    )

__all__ = ["MapRunDetail", "MapRunSummary", "describe_map_run", "map_run_children", "map_runs"]

MAP_RUNS_PER_PAGE = 1000


@dataclass(frozen=True)
class MapRunSummary:
    """One entry of ListMapRuns."""

    arn: str
    execution_arn: str
    state_machine_arn: str  # the Map Run's own: `stateMachine:MACHINE/LABEL`
    start_date: datetime
    stop_date: datetime | None


@dataclass(frozen=True)
class MapRunDetail:
    """DescribeMapRun: status, the tolerated failure figures and the children's counts."""

    arn: str
    execution_arn: str
    status: str
    start_date: datetime | None
    stop_date: datetime | None
    tolerated_failure_percentage: float | None
    tolerated_failure_count: int | None
    redrive_count: int
    execution_counts: dict[str, int] = field(default_factory=dict)


def map_runs(api: AwsApi, execution_arn: str) -> Iterator[list[MapRunSummary]]:
    """ListMapRuns of one parent execution, page by page."""

    def fetch(token: str | None) -> tuple[list[MapRunSummary], str | None]:
        params: ListMapRunsInputTypeDef = {
            "executionArn": execution_arn,
            "maxResults": MAP_RUNS_PER_PAGE,
        }
        if token:
            params["nextToken"] = token
        sfn = api.client("stepfunctions")
        answer = api._call("ListMapRuns", sfn.list_map_runs, **params)
        runs = [
            MapRunSummary(
                arn=str(item["mapRunArn"]),
                execution_arn=str(item.get("executionArn", "")),
                state_machine_arn=str(item.get("stateMachineArn", "")),
                start_date=item["startDate"],
                stop_date=item.get("stopDate"),
            )
            for item in answer.get("mapRuns", [])
        ]
        return runs, answer.get("nextToken")

    return api._pages("ListMapRuns", fetch)


def describe_map_run(api: AwsApi, map_run_arn: str) -> MapRunDetail:
    sfn = api.client("stepfunctions")
    answer = api._call("DescribeMapRun", sfn.describe_map_run, mapRunArn=map_run_arn)
    counts = answer.get("executionCounts") or {}
    percentage = answer.get("toleratedFailurePercentage")
    count = answer.get("toleratedFailureCount")
    return MapRunDetail(
        arn=map_run_arn,
        execution_arn=str(answer.get("executionArn", "")),
        status=str(answer.get("status", "")),
        start_date=answer.get("startDate"),
        stop_date=answer.get("stopDate"),
        tolerated_failure_percentage=float(percentage) if percentage is not None else None,
        tolerated_failure_count=int(count) if count is not None else None,
        redrive_count=int(answer.get("redriveCount", 0) or 0),
        execution_counts={str(k): int(v) for k, v in counts.items() if isinstance(v, int)},
    )


def map_run_children(api: AwsApi, map_run_arn: str) -> Iterator[list[ListedExecution]]:
    """ListExecutions of one Map Run (its child executions), page by page."""

    def fetch(token: str | None) -> tuple[list[ListedExecution], str | None]:
        params: ListExecutionsInputTypeDef = {
            "mapRunArn": map_run_arn,
            "maxResults": EXECUTIONS_PER_PAGE,
        }
        if token:
            params["nextToken"] = token
        sfn = api.client("stepfunctions")
        answer = api._call("ListExecutions", sfn.list_executions, **params)
        return [listed_execution(i) for i in answer.get("executions", [])], answer.get("nextToken")

    return api._pages("ListExecutions", fetch)
