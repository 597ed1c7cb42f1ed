"""The AWS boundary's DescribeMapRun: a Distributed Map run's status, tolerated failure figures
and its children's counts. (The runs themselves are found in the parent's history, their child
executions by `AwsApi.execution_pages(map_run_arn=…)`.) Like api.py (kept apart from
it by size), it calls one typed boto3 method through `AwsApi._call` (rate limited, counted,
errors as `AwsError`) and answers a frozen dataclass.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from connections.aws.api import AwsApi

__all__ = ["MapRunDetail", "describe_map_run"]


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
