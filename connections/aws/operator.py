"""The operator side of the AWS boundary: the calls that change something (redrive, replay).

They run with the account's optional operator role, never with the reader's credentials, and
the sync never builds an `OperatorApi`: an account without an operator role can be read but
nothing can be done to it (`NoOperatorRoleError`). Like api.py each operation calls one
typed boto3 method and answers a frozen dataclass; errors are the same `AwsError`s.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from connections.aws.client import (
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
    from boto3.session import Session
    from mypy_boto3_stepfunctions import SFNClient

    from connections.models import AwsAccount

__all__ = [
    "REDRIVE_WINDOW",
    "NoOperatorRoleError",
    "OperatorApi",
    "RedriveCheck",
    "Redriven",
    "SentRequest",
    "TestStateResult",
    "TestedResponse",
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


@dataclass(frozen=True)
class SentRequest:
    """TRACE's `request`: what AWS sent to the partner (after the connection merged its part)."""

    protocol: str
    method: str
    url: str
    headers: tuple[tuple[str, str], ...]
    body: str


@dataclass(frozen=True)
class TestedResponse:
    """TRACE's `response`: what the partner answered. `status` is None when AWS's string was
    not a number."""

    protocol: str
    status: int | None
    status_message: str
    headers: tuple[tuple[str, str], ...]
    body: str


@dataclass(frozen=True)
class TestStateResult:
    """TestState's answer, parsed from AWS's string forms (reference §5)."""

    __test__ = False  # not a pytest class, whatever its name says

    status: str  # SUCCEEDED, FAILED, RETRIABLE, CAUGHT_ERROR
    output: str
    error: str
    cause: str
    next_state: str
    request: SentRequest | None
    response: TestedResponse | None
    # errorDetails: retryIndex / retryBackoffIntervalSeconds / catchIndex, as ints.
    error_details: tuple[tuple[str, int], ...]
    request_id: str


# One header of TestState's "[k: v, k: v]" string: a token, ": ", then the value. A value may
# itself hold ", " (a Date header); a piece that does not start with a token and ": " belongs to
# the value before it.
_HEADER_START = re.compile(r"^([!#$%&'*+.^_`|~0-9A-Za-z-]+): ?(.*)$", re.DOTALL)


def parse_header_string(text: object) -> tuple[tuple[str, str], ...]:
    """TestState's headers (one string, "[k: v, k: v]") as (name, value) pairs, in order."""
    if not isinstance(text, str):
        return ()
    inner = text.strip()
    if inner.startswith("[") and inner.endswith("]"):
        inner = inner[1:-1]
    pairs: list[list[str]] = []
    for piece in inner.split(", ") if inner else []:
        match = _HEADER_START.match(piece)
        if match:
            pairs.append([match.group(1), match.group(2)])
        elif pairs:
            pairs[-1][1] += ", " + piece
        else:
            pairs.append(["", piece])
    return tuple((name, value) for name, value in pairs)


def _text(data: Any, key: str) -> str:
    value = data.get(key) if isinstance(data, dict) else None
    return value if isinstance(value, str) else ""


def _sent_request(data: Any) -> SentRequest | None:
    if not isinstance(data, dict):
        return None
    return SentRequest(
        protocol=_text(data, "protocol"),
        method=_text(data, "method"),
        url=_text(data, "url"),
        headers=parse_header_string(data.get("headers")),
        body=_text(data, "body"),
    )


def _tested_response(data: Any) -> TestedResponse | None:
    if not isinstance(data, dict):
        return None
    code = _text(data, "statusCode").strip()
    return TestedResponse(
        protocol=_text(data, "protocol"),
        status=int(code) if code.isdigit() and len(code) <= 3 else None,
        status_message=_text(data, "statusMessage"),
        headers=parse_header_string(data.get("headers")),
        body=_text(data, "body"),
    )


def _error_details(data: Any) -> tuple[tuple[str, int], ...]:
    if not isinstance(data, dict):
        return ()
    return tuple((str(k), int(v)) for k, v in data.items() if isinstance(v, int | float) and v == v)


def parse_test_state(answer: Any) -> TestStateResult:
    """TestState's answer dict → TestStateResult; a field of the wrong type reads as empty."""
    inspection = answer.get("inspectionData") or {}
    if not isinstance(inspection, dict):
        inspection = {}
    return TestStateResult(
        status=_text(answer, "status"),
        output=_text(answer, "output"),
        error=_text(answer, "error"),
        cause=_text(answer, "cause"),
        next_state=_text(answer, "nextState"),
        request=_sent_request(inspection.get("request")),
        response=_tested_response(inspection.get("response")),
        error_details=_error_details(inspection.get("errorDetails")),
        request_id=request_id_of(answer),
    )


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
    def _session(self) -> Session:
        account = self.account
        return session_with(
            mode=account.operator_auth_mode,
            role_arn=account.operator_role_arn,
            external_id=account.operator_external_id,
            access_key_id=account.operator_access_key_id,
            secret_access_key=account.operator_secret_access_key,
            endpoint_url=account.endpoint_url,
            region=self.region,
            session_name="stepscope-operator",
        )

    @cached_property
    def _sfn(self) -> SFNClient:
        account = self.account
        return self._session.client(
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

    @cached_property
    def _sfn_test_state(self) -> SFNClient:
        # TestState runs up to 5 minutes; its host prefix `sync-` cannot go in front of a
        # custom endpoint such as the sandbox (reference §5).
        account = self.account
        return self._session.client(
            "stepfunctions",
            region_name=self.region,
            endpoint_url=account.endpoint_url or None,
            config=config(inject_host_prefix=not account.endpoint_url, read_timeout=330),
        )

    def test_state(
        self,
        definition: str,
        state_name: str,
        state_input: str,
        *,
        role_arn: str = "",
        variables: str = "",
        context: str = "",
        inspection_level: str = "TRACE",
        reveal_secrets: bool = False,
        mock: dict[str, Any] | None = None,
    ) -> TestStateResult:
        """TestState of one state of `definition`. With `reveal_secrets` the answer holds what
        the connection injected: the caller must redact it before anything keeps it."""
        params: dict[str, Any] = {
            "definition": definition,
            "input": state_input,
            "inspectionLevel": inspection_level,
            "revealSecrets": reveal_secrets,
        }
        # Without a name the definition is the one state to test (a state inside a Map or
        # Parallel is sent that way).
        if state_name:
            params["stateName"] = state_name
        if role_arn:
            params["roleArn"] = role_arn
        if variables:
            params["variables"] = variables
        if context:
            params["context"] = context
        if mock is not None:
            params["mock"] = mock
        answer = self._call("TestState", lambda: self._sfn_test_state.test_state(**params))
        return parse_test_state(answer)

    def _call(self, operation: str, call: Any) -> Any:
        # The account's shared bucket: AWS counts the operator's calls in the same quota.
        RateLimiter(quota_scope(self.account), self.region, self.share).acquire(operation)
        try:
            return call()
        except BOTO_ERRORS as exc:
            raise translate(exc, operation) from exc
