"""The operator side of the AWS boundary: the calls that change something (redrive, replay).

They run with the account's optional operator role, never with the reader's credentials, and
the sync never builds an `OperatorApi`: an account without an operator role can be read but
nothing can be done to it (`NoOperatorRoleError`). Like connections/aws.py each operation calls one
typed boto3 method and answers a frozen dataclass; errors are the same `AwsError`s.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from connections.awsclient import (
    BOTO_ERRORS,
    AwsError,
    aware,
    config,
    request_id_of,
    session_with,
    translate,
)
from connections.ratelimit import RateLimiter, quota_scope

if TYPE_CHECKING:
    from mypy_boto3_stepfunctions import SFNClient

    from connections.models import AwsAccount

__all__ = [
    "REDRIVE_WINDOW",
    "NoOperatorRoleError",
    "OperatorApi",
    "RedriveCheck",
    "Redriven",
]

# AWS redrives an execution at most 14 days after it closed (reference §7).
REDRIVE_WINDOW = timedelta(days=14)
REDRIVABLE_STATUSES = frozenset({"FAILED", "TIMED_OUT", "ABORTED"})


class NoOperatorRoleError(AwsError):
    """The account has no operator role: say what to configure instead of calling AWS."""

    def __init__(self, account_name: str) -> None:
        super().__init__(
            f"{account_name} has no operator role. An admin can add one on the account "
            "(Operator role: an assume-role ARN with external id, or access keys) with the "
            "IAM policy of docs/security.md.",
            code="NoOperatorRoleError",
            transient=False,
        )


@dataclass(frozen=True)
class RedriveCheck:
    """Whether one execution can be redriven, from DescribeExecution, and why not."""

    arn: str
    status: str
    stop_date: datetime | None
    redrive_count: int
    redrive_status: str  # REDRIVABLE, NOT_REDRIVABLE, … or "" when AWS did not say
    redrive_status_reason: str
    request_id: str

    def refusal(self, now: datetime) -> str:
        """Why AWS would refuse a redrive; "" when it would not."""
        if ":express:" in self.arn:
            return "Express executions cannot be redriven (only Standard ones)."
        if self.status not in REDRIVABLE_STATUSES:
            return (
                f"The execution is {self.status}: only FAILED, TIMED_OUT or ABORTED ones redrive."
            )
        if self.stop_date is not None and now - self.stop_date > REDRIVE_WINDOW:
            return "The execution closed more than 14 days ago."
        if self.redrive_status == "NOT_REDRIVABLE":
            return f"AWS says NOT_REDRIVABLE: {self.redrive_status_reason or 'no reason given'}"
        return ""


@dataclass(frozen=True)
class Redriven:
    """RedriveExecution's answer."""

    arn: str
    redrive_date: datetime | None
    request_id: str


@dataclass
class OperatorApi:
    """The operator role's Step Functions client for one account and region."""

    account: AwsAccount
    region: str
    # The share of each quota these calls may take: a batch passes its own, else the
    # configured share of the operation (AWS_QUOTA_SHARE / AWS_QUOTA_SHARES) applies.
    share: float | None = None

    def __post_init__(self) -> None:
        if not self.account.has_operator_role:
            raise NoOperatorRoleError(self.account.name)

    @cached_property
    def _sfn(self) -> SFNClient:
        account = self.account
        session = session_with(
            mode=account.operator_auth_mode,
            role_arn=account.operator_role_arn,
            external_id=account.operator_external_id,
            access_key_id=account.operator_access_key_id,
            secret_access_key=account.operator_secret_access_key,
            endpoint_url=account.endpoint_url,
            region=self.region,
            session_name="stepscope-operator",
        )
        return session.client(
            "stepfunctions",
            region_name=self.region,
            endpoint_url=account.endpoint_url or None,
            config=config(),
        )

    def redrive_check(self, arn: str) -> RedriveCheck:
        """DescribeExecution (METADATA_ONLY: no input or output is read) for the dry run."""
        if ":express:" in arn:
            # DescribeExecution answers InvalidArn for Express: no call needed to say no.
            return RedriveCheck(arn, "", None, 0, "NOT_REDRIVABLE", "Express execution", "")
        answer = self._call(
            "DescribeExecution",
            lambda: self._sfn.describe_execution(executionArn=arn, includedData="METADATA_ONLY"),
        )
        return RedriveCheck(
            arn=arn,
            status=str(answer.get("status", "")),
            stop_date=aware(answer.get("stopDate")),
            redrive_count=int(answer.get("redriveCount", 0) or 0),
            redrive_status=str(answer.get("redriveStatus", "")),
            redrive_status_reason=str(answer.get("redriveStatusReason", "")),
            request_id=request_id_of(answer),
        )

    def redrive(self, arn: str, client_token: str) -> Redriven:
        """RedriveExecution with `client_token`: the same token twice is one redrive (AWS)."""
        answer = self._call(
            "RedriveExecution",
            lambda: self._sfn.redrive_execution(executionArn=arn, clientToken=client_token),
        )
        return Redriven(
            arn=arn, redrive_date=aware(answer.get("redriveDate")), request_id=request_id_of(answer)
        )

    def _call(self, operation: str, call: Any) -> Any:
        # The account's shared bucket: AWS counts the operator's calls in the same quota.
        RateLimiter(quota_scope(self.account), self.region, self.share).acquire(operation)
        try:
            return call()
        except BOTO_ERRORS as exc:
            raise translate(exc, operation) from exc
