"""The one boto3 boundary: clients per account and region, errors as one domain type.

Nothing else imports boto3. Every call goes through `AwsApi.call`, which waits on the shared
rate limiter, counts calls by operation (for the sync record and the benchmarks) and turns
botocore's exceptions into `AwsError` with a `transient` flag that decides retry vs. give up.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError
from botocore.parsers import ResponseParserError

from connections.choices import AuthMode
from connections.ratelimit import RateLimiter
from connections.throttles import count_throttles_of, counting

if TYPE_CHECKING:
    from connections.models import AwsAccount

log = logging.getLogger(__name__)

# Rounds of botocore's own retries before a transient error reaches the caller.
OUTER_TRIES = 3
OUTER_BACKOFF_SECONDS = 1.0

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


def translate(exc: Exception, operation: str) -> AwsError:
    """botocore's many exception shapes → one readable AwsError."""
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        code = str(err.get("Code", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        detail = READABLE.get(code) or str(err.get("Message", "")) or code
        message = f"{operation}: {code}: {detail}" if code else f"{operation}: {detail}"
        if code in TRANSIENT_CODES or status >= 500:
            return AwsTransientError(message, code=code, operation=operation)
        return AwsPermanentError(message, code=code, operation=operation)
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


def _config() -> Config:
    # Adaptive retries absorb short throttling bursts client-side; our shared rate limiter
    # keeps all workers together under the quota so bursts stay rare.
    return Config(
        retries={"mode": "adaptive", "max_attempts": 8},
        connect_timeout=10,
        read_timeout=60,
        user_agent_extra="stepscope",
    )


def session_for(account: AwsAccount, region: str) -> boto3.session.Session:
    """A boto3 session with the account's credentials (assume-role, keys or default chain)."""
    if account.auth_mode == AuthMode.ACCESS_KEYS:
        return boto3.session.Session(
            aws_access_key_id=account.access_key_id,
            aws_secret_access_key=account.secret_access_key,
            region_name=region,
        )
    base = boto3.session.Session(region_name=region)
    if account.auth_mode != AuthMode.ASSUME_ROLE:
        return base
    sts = base.client("sts", endpoint_url=account.endpoint_url or None, config=_config())
    params: dict[str, Any] = {"RoleArn": account.role_arn, "RoleSessionName": "stepscope"}
    if account.external_id:
        params["ExternalId"] = account.external_id
    try:
        creds = sts.assume_role(**params)["Credentials"]
    except (ClientError, BotoCoreError, ResponseParserError) as exc:
        raise translate(exc, "AssumeRole") from exc
    return boto3.session.Session(
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
        region_name=region,
    )


# Building a botocore client costs ~0.1 s of CPU (it loads and parses the service model), and a
# sync opens one API per state machine: clients are kept per process, keyed by everything that
# shapes them, and renewed well before assumed-role credentials (1 hour) expire.
CLIENT_TTL_SECONDS = 15 * 60
_clients: dict[tuple[Any, ...], tuple[float, Any]] = {}
_clients_lock = threading.Lock()


def cached_client(account: AwsAccount, region: str, service: str) -> Any:
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
        service,  # type: ignore[call-overload]
        region_name=region,
        endpoint_url=account.endpoint_url or None,
        config=_config(),
    )
    count_throttles_of(client)
    with _clients_lock:
        _clients[key] = (now, client)
    return client


@dataclass
class AwsApi:
    """Clients of one account in one region, with call counting and shared rate limiting."""

    account: AwsAccount
    region: str
    rate_limited: bool = True
    calls: Counter[str] = field(default_factory=Counter)
    # Throttled answers by operation, each of botocore's retries counted.
    throttles: Counter[str] = field(default_factory=Counter)
    # Histories are fetched on a few threads at once (executions/sync/prefetch.py).
    _count_lock: threading.Lock = field(default_factory=threading.Lock)

    @cached_property
    def _limiter(self) -> RateLimiter:
        return RateLimiter(scope=f"{self.account.pk}", region=self.region)

    def client(self, service: str) -> Any:
        return cached_client(self.account, self.region, service)

    def call(self, service: str, operation: str, **params: Any) -> dict[str, Any]:
        """Call `operation` (its API name, e.g. "GetExecutionHistory") on `service`."""
        if self.rate_limited:
            self._limiter.acquire(operation)
        method = getattr(self.client(service), _snake(operation))
        for attempt in range(OUTER_TRIES):
            with self._count_lock:
                self.calls[operation] += 1
            try:
                with counting(self.throttles, self._count_lock, operation):
                    response: dict[str, Any] = method(**params)
            except (ClientError, BotoCoreError, ResponseParserError) as exc:
                error = translate(exc, operation)
                if not error.transient or attempt == OUTER_TRIES - 1:
                    raise error from exc
                # botocore already retried with backoff; wait longer before its next round
                # so a throttled account recovers instead of failing this sync.
                time.sleep(OUTER_BACKOFF_SECONDS * 2**attempt)
                continue
            return response
        raise AssertionError("unreachable")  # the loop always returns or raises

    def pages(
        self,
        service: str,
        operation: str,
        token_key: str = "nextToken",
        skip_seen: bool = False,
        **params: Any,
    ) -> Iterator[dict[str, Any]]:
        """Yield pages one at a time (never the whole listing in memory).

        An expired pagination token lists again from the first page. The pages already yielded
        come again, for callers that dedupe by key; with `skip_seen` they are fetched but not
        yielded again, for ordered append-only listings (a history feeding a stateful parser).
        It gives up only after LISTING_RESTARTS restarts that got no further than the one before.
        """
        first = dict(params)
        depth = deepest = stalls = 0  # pages fetched in this pass; most in any pass
        while True:
            try:
                page = self.call(service, operation, **params)
            except AwsError as exc:
                if token_key not in params or not is_expired_token(exc):
                    raise
                stalls = 0 if depth > deepest else stalls + 1
                if stalls > LISTING_RESTARTS:
                    raise expired_for_now(exc) from exc
                log.warning("%s: pagination token expired; listing again from the start", operation)
                deepest, depth, params = max(deepest, depth), 0, dict(first)
                continue
            depth += 1
            if not skip_seen or depth > deepest:
                yield page
            token = page.get(token_key) or page.get("NextToken")
            if not token:
                return
            params[token_key] = token


def is_expired_token(exc: AwsError) -> bool:
    return exc.code in EXPIRED_TOKEN_CODES


def expired_for_now(exc: AwsError) -> AwsTransientError:
    """Tokens that keep expiring end this listing for this run; cursors hold, the next run lists
    again. Transient, so the account is not marked FAILED as for bad credentials."""
    return AwsTransientError(str(exc), code=exc.code, operation=exc.operation)


def _snake(operation: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in operation).lstrip("_")


@dataclass(frozen=True)
class CredentialCheck:
    ok: bool
    message: str
    identity_arn: str = ""


def check_credentials(account: AwsAccount) -> CredentialCheck:
    """sts:GetCallerIdentity + states:ListStateMachines in each region, said in one sentence."""
    try:
        api = AwsApi(
            account, account.regions[0] if account.regions else "us-east-1", rate_limited=False
        )
        identity = api.call("sts", "GetCallerIdentity")
        counts = []
        for region in account.regions:
            machines = AwsApi(account, region, rate_limited=False).call(
                "stepfunctions", "ListStateMachines", maxResults=1000
            )
            counts.append(f"{region}: {len(machines.get('stateMachines', []))} state machines")
    except AwsError as exc:
        return CredentialCheck(False, f"Credentials of {account.name} failed — {exc}")
    arn = str(identity.get("Arn", ""))
    actual = str(identity.get("Account", ""))
    if actual and actual != account.account_id:
        return CredentialCheck(
            False,
            f"Credentials of {account.name} belong to account {actual}, not {account.account_id}.",
            arn,
        )
    return CredentialCheck(
        True, f"{account.name}: authenticated as {arn}; " + "; ".join(counts), arn
    )


def available_regions() -> frozenset[str]:
    """Regions where botocore knows Step Functions (all partitions), for validating input."""
    session = boto3.session.Session()
    regions: set[str] = set()
    for partition in session.get_available_partitions():
        regions.update(session.get_available_regions("stepfunctions", partition_name=partition))
    return frozenset(regions)
