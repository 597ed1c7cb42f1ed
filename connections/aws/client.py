"""The plumbing under the AWS boundary: botocore clients, credentials, errors as one type.

api.py holds the typed operations and the domain objects they return; this module
holds what they stand on: the per-process client cache, sessions (access keys, assume-role or
the default chain), and the translation of botocore's exceptions into `AwsError`, whose
`transient`, `about_one_resource` and `kms` decide retry, skip one resource, or fail the run.
boto3 and botocore are imported in this package (connections/aws/) only.
"""

from __future__ import annotations

import hashlib
import threading
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, overload

import boto3
import botocore.session
import msgspec
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError
from botocore.parsers import JSONParser, ResponseParserError, ResponseParserFactory

from connections.choices import AuthMode
from connections.ratelimit import pace_calls_of
from connections.throttles import count_throttles_of

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_logs import CloudWatchLogsClient
    from mypy_boto3_stepfunctions import SFNClient
    from mypy_boto3_sts import STSClient

    from connections.models import AwsAccount

Service = Literal["stepfunctions", "events", "logs", "sts"]
# What a call can raise from botocore; `translate` turns each into an AwsError.
BOTO_ERRORS = (ClientError, BotoCoreError, ResponseParserError)

# Our retries of a transient error, after botocore's own. Patience is measured in time, not only
# in rounds: botocore's retry quota (500 units a client, 5 per throttled retry, 14 per 5xx retry,
# given back only on success) drains in a long throttling spell, and from then on each botocore
# call is a single attempt, so our rounds must carry the call. Another round is tried, after
# waiting 1, 2, 4, 8, 16 s, while the call (botocore's own retries and backoff included: up to
# nine attempts a round, about 45 s when every one is refused) has taken under
# OUTER_BUDGET_SECONDS with the wait; at most OUTER_TRIES rounds. Quick rounds (a spent quota)
# get all six; slow ones two, which keeps one call well inside the sync's stale window
# (SYNC_STALE_AFTER_SECONDS) and a sync facing a service that refuses everything short.
OUTER_TRIES = 6
OUTER_BACKOFF_SECONDS = 1.0
OUTER_BACKOFF_MAX_SECONDS = 16.0
OUTER_BUDGET_SECONDS = 60.0

# A pagination token the service no longer accepts (expired): the listing starts again from its
# first page, and gives up for this run after this many restarts in a row that made no progress.
EXPIRED_TOKEN_CODES = frozenset({"InvalidToken"})
LISTING_RESTARTS = 3

# Codes that a later try may get past. Everything else (AccessDenied, bad keys…) is permanent
# and marks the account FAILED with a readable message instead of retrying forever.
TRANSIENT_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "RateExceeded",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalFailure",
        "InternalServerError",
        "InternalError",
        "KmsThrottlingException",
        "RequestTimeout",
        "RequestTimeoutException",
        "ProvisionedThroughputExceededException",
    }
)
CREDENTIAL_CODES = frozenset(
    {
        "ExpiredToken",
        "ExpiredTokenException",
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "SignatureDoesNotMatch",
        "InvalidAccessKeyId",
        "AccessDenied",
        "AccessDeniedException",
        "AuthFailure",
    }
)

# Answers about one resource (gone between a listing and its describe, a KMS key the reader may
# not use, an IAM policy that denies that one ARN) when the call names one resource: that resource
# is skipped and named on the run, everything else is still read. The same AccessDenied on a
# listing means the reader's role lacks the action: that still fails the run.
RESOURCE_CODES = frozenset(
    {
        "ResourceNotFoundException",
        "StateMachineDoesNotExist",
        "ExecutionDoesNotExist",
        "KmsAccessDeniedException",
        "KmsInvalidStateException",
        "AccessDenied",
        "AccessDeniedException",
    }
)
# The calls that name one resource (ListExecutions: one state machine's executions).
RESOURCE_OPERATIONS = frozenset(
    {
        "DescribeConnection",
        "DescribeStateMachine",
        "DescribeStateMachineForExecution",
        "DescribeExecution",
        "GetExecutionHistory",
        "ListExecutions",
        "FilterLogEvents",  # one log group: a machine's log gone or denied costs that machine
    }
)
KMS_CODES = frozenset({"KmsAccessDeniedException", "KmsInvalidStateException"})

READABLE = {
    "ExpiredToken": "the credentials have expired",
    "ExpiredTokenException": "the credentials have expired",
    "InvalidClientTokenId": "the access key id is not valid",
    "UnrecognizedClientException": "the access key id is not valid",
    "SignatureDoesNotMatch": "the secret access key does not match the access key id",
    "AccessDenied": "access denied",
    "AccessDeniedException": "access denied",
}


class AwsError(Exception):
    """An AWS call failed; `transient` says whether trying again later may succeed."""

    def __init__(self, message: str, *, code: str = "", operation: str = "", transient: bool):
        super().__init__(message)
        self.code = code
        self.operation = operation
        self.transient = transient
        # AWS's id of the refused request, when it answered (the operator audit records it).
        self.request_id = ""

    @property
    def about_one_resource(self) -> bool:
        """Whether, from a call naming one resource, it costs only that resource."""
        return (
            not self.transient
            and self.code in RESOURCE_CODES
            and self.operation in RESOURCE_OPERATIONS
        )

    @property
    def kms(self) -> bool:
        """The resource is encrypted with a customer-managed key the reader may not use."""
        return self.code in KMS_CODES


class AwsTransientError(AwsError):
    def __init__(self, message: str, *, code: str = "", operation: str = "") -> None:
        super().__init__(message, code=code, operation=operation, transient=True)


class AwsPermanentError(AwsError):
    def __init__(self, message: str, *, code: str = "", operation: str = "") -> None:
        super().__init__(message, code=code, operation=operation, transient=False)


def request_id_of(answer: Any) -> str:
    """AWS's request id of an answer or an error response ("" when it gave none)."""
    return str((answer.get("ResponseMetadata") or {}).get("RequestId", ""))


def aware(value: object) -> datetime | None:
    """botocore's timestamps, timezone-aware (a naive one is UTC); anything else is None."""
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return None


def translate(exc: Exception, operation: str) -> AwsError:
    """botocore's many exception shapes → one readable AwsError."""
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        code = str(err.get("Code", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        detail = READABLE.get(code) or str(err.get("Message", "")) or code
        message = f"{operation}: {code}: {detail}" if code else f"{operation}: {detail}"
        cls = AwsTransientError if code in TRANSIENT_CODES or status >= 500 else AwsPermanentError
        error: AwsError = cls(message, code=code, operation=operation)
        error.request_id = request_id_of(exc.response)
        return error
    if isinstance(exc, EndpointConnectionError):
        return AwsTransientError(
            f"{operation}: cannot reach {exc.kwargs.get('endpoint_url', 'the endpoint')}",
            code="EndpointConnectionError",
            operation=operation,
        )
    if isinstance(exc, ResponseParserError):
        # Not an AWS answer at all: a wrong endpoint URL, a proxy page, a captive portal.
        return AwsPermanentError(
            f"{operation}: the endpoint did not answer like AWS (check the endpoint URL)",
            code="ResponseParserError",
            operation=operation,
        )
    if isinstance(exc, BotoCoreError):
        name = type(exc).__name__
        transient = "Timeout" in name or "Connection" in name
        cls = AwsTransientError if transient else AwsPermanentError
        return cls(f"{operation}: {exc}", code=name, operation=operation)
    return AwsPermanentError(f"{operation}: {exc}", code=type(exc).__name__, operation=operation)


def config(*, inject_host_prefix: bool = True, read_timeout: int = 60) -> Config:
    # Adaptive retries absorb short throttling bursts client-side; our shared rate limiter
    # keeps all workers together under the quota so bursts stay rare.
    return Config(
        retries={"mode": "adaptive", "max_attempts": 8},
        connect_timeout=10,
        read_timeout=read_timeout,
        user_agent_extra="stepscope",
        inject_host_prefix=inject_host_prefix,
    )


# Successful answers of these operations are decoded straight from their bytes with msgspec and
# handed over as the raw JSON (epoch-second timestamps, as the history reader expects), instead
# of botocore's json.loads plus a walk over the output shape that builds a datetime per event:
# for GetExecutionHistory that walk is most of the client's CPU per event. Signing, retries,
# error answers (parsed and raised by botocore as before) and everything else are botocore's.
RAW_JSON_OUTPUTS = frozenset({"GetExecutionHistoryOutput"})


_decode_json = msgspec.json.Decoder().decode


def decode_json_body(raw: bytes | str) -> dict[str, Any] | None:
    """An answer's JSON object decoded by msgspec (the values json.loads gives, integers of any
    size included); None when it is not one, or msgspec refuses what json.loads would take
    (NaN, a BOM, lone surrogates): botocore's own parser then decides, as before."""
    try:
        value = _decode_json(raw)
    except (msgspec.DecodeError, ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


class _RawJsonParser(JSONParser):
    """botocore's JSON-protocol parser, except a RAW_JSON_OUTPUTS body, which stays raw JSON."""

    def _handle_json_body(self, raw_body: bytes, shape: Any) -> Any:
        if shape is not None and shape.name in RAW_JSON_OUTPUTS and raw_body:
            decoded = decode_json_body(raw_body)
            if decoded is not None:
                return decoded
        parent: Any = super()  # botocore's stubs leave its private hooks out
        return parent._handle_json_body(raw_body, shape)


class _RawJsonParserFactory(ResponseParserFactory):
    def create_parser(self, protocol_name: str) -> Any:
        if protocol_name == "json":
            return _RawJsonParser(**getattr(self, "_defaults", {}))
        return super().create_parser(protocol_name)


def _botocore_session() -> botocore.session.Session:
    session = botocore.session.get_session()
    session.register_component("response_parser_factory", _RawJsonParserFactory())
    return session


def session_for(account: AwsAccount, region: str) -> boto3.session.Session:
    """A boto3 session with the account's credentials (assume-role, keys or default chain)."""
    return session_with(
        mode=account.auth_mode,
        role_arn=account.role_arn,
        external_id=account.external_id,
        access_key_id=account.access_key_id,
        secret_access_key=account.secret_access_key,
        endpoint_url=account.endpoint_url,
        region=region,
    )


def session_with(
    *,
    mode: str,
    role_arn: str,
    external_id: str,
    access_key_id: str,
    secret_access_key: str,
    endpoint_url: str,
    region: str,
    session_name: str = "stepscope",
) -> boto3.session.Session:
    """A session from one set of credentials: the reader's (`session_for`) or the operator's
    (connections/aws/operator.py), which must never be mixed up."""
    if mode == AuthMode.ACCESS_KEYS:
        return boto3.session.Session(
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            region_name=region,
            botocore_session=_botocore_session(),
        )
    base = boto3.session.Session(region_name=region, botocore_session=_botocore_session())
    if mode != AuthMode.ASSUME_ROLE:
        return base
    sts = base.client("sts", endpoint_url=endpoint_url or None, config=config())
    try:
        if external_id:
            answer = sts.assume_role(
                RoleArn=role_arn, RoleSessionName=session_name, ExternalId=external_id
            )
        else:
            answer = sts.assume_role(RoleArn=role_arn, RoleSessionName=session_name)
    except BOTO_ERRORS as exc:
        raise translate(exc, "AssumeRole") from exc
    creds = answer["Credentials"]
    return boto3.session.Session(
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
        region_name=region,
        botocore_session=_botocore_session(),
    )


# Building a botocore client costs ~0.1 s of CPU (it loads and parses the service model), and a
# sync opens one API per state machine: clients are kept per process, keyed by everything that
# shapes them, and renewed well before assumed-role credentials (1 hour) expire.
CLIENT_TTL_SECONDS = 15 * 60
_clients: dict[tuple[Any, ...], tuple[float, Any]] = {}
_clients_lock = threading.Lock()


@overload
def cached_client(
    account: AwsAccount, region: str, service: Literal["stepfunctions"]
) -> SFNClient: ...
@overload
def cached_client(
    account: AwsAccount, region: str, service: Literal["events"]
) -> EventBridgeClient: ...
@overload
def cached_client(
    account: AwsAccount, region: str, service: Literal["logs"]
) -> CloudWatchLogsClient: ...
@overload
def cached_client(account: AwsAccount, region: str, service: Literal["sts"]) -> STSClient: ...
def cached_client(account: AwsAccount, region: str, service: Service) -> Any:
    """The account's client of `service` in `region`, built once per process and TTL."""
    key = (
        account.pk,
        region,
        service,
        account.auth_mode,
        account.role_arn,
        account.endpoint_url,
        hashlib.sha256(
            f"{account.external_id}|{account.access_key_id}|{account.secret_access_key}".encode()
        ).hexdigest(),
    )
    now = time.monotonic()
    with _clients_lock:
        entry = _clients.get(key)
        if entry is not None and now - entry[0] < CLIENT_TTL_SECONDS:
            return entry[1]
    client = session_for(account, region).client(
        service,
        region_name=region,
        endpoint_url=account.endpoint_url or None,
        config=config(),
    )
    count_throttles_of(client)
    pace_calls_of(client)
    with _clients_lock:
        _clients[key] = (now, client)
    return client


def is_expired_token(exc: AwsError) -> bool:
    return exc.code in EXPIRED_TOKEN_CODES


def expired_for_now(exc: AwsError) -> AwsTransientError:
    """Tokens that keep expiring end this listing for this run; cursors hold, the next run lists
    again. Transient, so the account is not marked FAILED as for bad credentials."""
    return AwsTransientError(str(exc), code=exc.code, operation=exc.operation)


def available_regions() -> frozenset[str]:
    """Regions where botocore knows Step Functions (all partitions), for validating input."""
    session = boto3.session.Session()
    regions: set[str] = set()
    for partition in session.get_available_partitions():
        regions.update(session.get_available_regions("stepfunctions", partition_name=partition))
    return frozenset(regions)
