"""The AWS boundary's DescribeExecution as the sync's triage asks it: a failed execution's own
error and cause, before its history is read. Like maps.py (kept apart from api.py by size),
it calls one typed boto3 method through `AwsApi._call` (rate limited from DescribeExecution's
own bucket, counted, errors as `AwsError`) and answers a frozen dataclass.
"""

from __future__ import annotations

from dataclasses import dataclass

from connections.aws.api import AwsApi

__all__ = ["ExecutionError", "describe_error"]


@dataclass(frozen=True)
class ExecutionError:
    """DescribeExecution's error and cause of one execution. None when the answer leaves the
    field out: METADATA_ONLY may (AWS does not say), and an execution that ended without one
    (aborted by StopExecution with none given, a success) has none."""

    arn: str
    status: str
    error: str | None
    cause: str | None


def describe_error(api: AwsApi, execution_arn: str) -> ExecutionError:
    """METADATA_ONLY: no input or output is sent (it can be large), and it also answers for an
    execution encrypted with a KMS key the reader may not use."""
    sfn = api.client("stepfunctions")
    answer = api._call(
        "DescribeExecution",
        sfn.describe_execution,
        executionArn=execution_arn,
        includedData="METADATA_ONLY",
    )
    error, cause = answer.get("error"), answer.get("cause")
    return ExecutionError(
        arn=execution_arn,
        status=str(answer.get("status", "")),
        error=str(error) if error is not None else None,
        cause=str(cause) if cause is not None else None,
    )
