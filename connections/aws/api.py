"""The AWS boundary: named, typed operations that answer with small domain objects.

Nothing else reads an AWS answer. Each operation here calls one typed boto3 method (the
boto3-stubs client types make a misspelt operation or parameter a mypy error), reads the
response fields it needs and returns a frozen dataclass: StateMachineDetail, ListedExecution,
HistoryPage… History events stay the plain event dicts `executions.history` documents as its
input (the same as the AWS CLI prints), and so do CloudWatch log events; only their page
envelopes are read here.

Every call goes through `AwsApi._call`, which waits on the shared rate limiter (one token per
HTTP attempt, connections/ratelimit.py), counts calls by
operation (for the sync record and the benchmarks) and turns botocore's exceptions into
`AwsError` (connections/aws/client.py, with the client cache and the sessions).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal, ParamSpec, TypeVar, cast, overload

from connections.aws.client import (
    BOTO_ERRORS,
    LISTING_RESTARTS,
    OUTER_BACKOFF_MAX_SECONDS,
    OUTER_BACKOFF_SECONDS,
    OUTER_BUDGET_SECONDS,
    OUTER_TRIES,
    AwsError,
    AwsPermanentError,
    AwsTransientError,
    Service,
    aware,
    cached_client,
    expired_for_now,
    is_expired_token,
    translate,
)
from connections.ratelimit import RateLimiter, pacing, quota_scope
from connections.throttles import counting

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_events.type_defs import ConnectionTypeDef, ListConnectionsRequestTypeDef
    from mypy_boto3_logs import CloudWatchLogsClient
    from mypy_boto3_logs.type_defs import FilterLogEventsRequestTypeDef
    from mypy_boto3_stepfunctions import SFNClient
    from mypy_boto3_stepfunctions.type_defs import (
        DescribeStateMachineOutputTypeDef,
        ExecutionListItemTypeDef,
        GetExecutionHistoryInputTypeDef,
        ListExecutionsInputTypeDef,
        ListStateMachinesInputTypeDef,
    )
    from mypy_boto3_sts import STSClient

    from connections.models import AwsAccount

__all__ = [
    "AwsApi",
    "AwsError",
    "AwsPermanentError",
    "AwsTransientError",
    "CallerIdentity",
    "ConnectionDetail",
    "ConnectionSummary",
    "HistoryPage",
    "InvocationParameter",
    "ListedExecution",
    "LogPage",
    "PrivateResource",
    "StateMachineDetail",
    "StateMachineSummary",
    "translate",
]

log = logging.getLogger(__name__)
P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")

# The most each page of a listing may hold (each API's maximum, or what the sync always asked).
STATE_MACHINES_PER_PAGE = 1000
EXECUTIONS_PER_PAGE = 1000
EVENTS_PER_PAGE = 1000
# Reading on after a redrive: its new events are usually a few dozen.
READ_ON_PAGE = 100
LOG_EVENTS_PER_PAGE = 10000
CONNECTIONS_PER_PAGE = 100


# ------------------------------------------------------------------------- domain objects


@dataclass(frozen=True)
class StateMachineSummary:
    """One entry of ListStateMachines."""

    arn: str
    name: str
    type: str


@dataclass(frozen=True)
class StateMachineDetail:
    """DescribeStateMachine. `definition` is None when it could not be read: then
    `definition_error` says why (a KMS key the reader may not use) and the rest came from a
    METADATA_ONLY description."""

    arn: str
    name: str
    type: str
    definition: str | None
    logging_level: str
    include_execution_data: bool
    log_group_arn: str
    kms_key_id: str  # the customer-managed KMS key, or ""
    definition_error: AwsError | None = None
    role_arn: str = ""  # the execution role: TestState runs the state with it (replay)


@dataclass(frozen=True)
class ListedExecution:
    """An execution as ListExecutions (or DescribeExecution's metadata) gives it."""

    arn: str
    name: str
    status: str
    start_date: datetime
    stop_date: datetime | None
    redrive_count: int


@dataclass(frozen=True)
class HistoryPage:
    """One GetExecutionHistory page: its events as the history parser reads them."""

    events: list[dict[str, Any]]
    next_token: str | None


@dataclass(frozen=True)
class LogPage:
    """One FilterLogEvents page: CloudWatch events ({eventId, timestamp, message…}) as
    `executions.history.LogEventsByExecution` reads them."""

    events: list[dict[str, Any]]
    next_token: str | None


@dataclass(frozen=True)
class ConnectionSummary:
    """One entry of ListConnections (entries without an ARN are not given)."""

    arn: str
    name: str
    state: str
    state_reason: str
    authorization_type: str
    modified_at: datetime | None
    authorized_at: datetime | None
    created_at: datetime | None = None


@dataclass(frozen=True)
class InvocationParameter:
    """A header, query or body parameter a connection adds to each call (never its value)."""

    kind: str  # "headers", "query" or "body"
    key: str
    secret: bool


@dataclass(frozen=True)
class PrivateResource:
    """A VPC Lattice resource configuration a connection reaches a private endpoint through
    (`ConnectivityParameters.ResourceParameters` of DescribeConnection)."""

    configuration_arn: str
    association_arn: str  # the service network resource association EventBridge made


@dataclass(frozen=True)
class ConnectionDetail:
    """What DescribeConnection says a connection adds to a call, and how it reaches it."""

    parameters: tuple[InvocationParameter, ...]
    api_key_name: str | None  # the header of an API_KEY connection
    sends_authorization: bool  # BASIC and OAUTH connections send an Authorization header
    # InvocationConnectivityParameters: the API itself is private (None: a public API).
    private_api: PrivateResource | None = None
    # AuthParameters.ConnectivityParameters: the OAuth authorization endpoint is private.
    private_auth: PrivateResource | None = None
    kms_key_identifier: str = ""  # a customer-managed key for the connection's secret


@dataclass(frozen=True)
class CallerIdentity:
    arn: str
    account: str


# ------------------------------------------------------------------------------ the API


@dataclass
class AwsApi:
    """Clients of one account in one region, with call counting and shared rate limiting."""

    account: AwsAccount
    region: str
    rate_limited: bool = True
    calls: Counter[str] = field(default_factory=Counter)
    # Throttled answers per operation, botocore's own retries included (connections/throttles.py).
    throttles: Counter[str] = field(default_factory=Counter)
    # Histories are fetched on a few threads at once (executions/sync/prefetch.py).
    _count_lock: threading.Lock = field(default_factory=threading.Lock)

    @cached_property
    def _limiter(self) -> RateLimiter:
        return RateLimiter(scope=quota_scope(self.account), region=self.region)

    @overload
    def client(self, service: Literal["stepfunctions"]) -> SFNClient: ...
    @overload
    def client(self, service: Literal["events"]) -> EventBridgeClient: ...
    @overload
    def client(self, service: Literal["logs"]) -> CloudWatchLogsClient: ...
    @overload
    def client(self, service: Literal["sts"]) -> STSClient: ...
    def client(self, service: Service) -> Any:
        return cached_client(self.account, self.region, service)

    # --------------------------------------------------------------- Step Functions

    def state_machine_pages(self) -> Iterator[list[StateMachineSummary]]:
        """ListStateMachines, page by page."""

        def fetch(token: str | None) -> tuple[list[StateMachineSummary], str | None]:
            params: ListStateMachinesInputTypeDef = {"maxResults": STATE_MACHINES_PER_PAGE}
            if token:
                params["nextToken"] = token
            sfn = self.client("stepfunctions")
            answer = self._call("ListStateMachines", sfn.list_state_machines, **params)
            machines = [
                StateMachineSummary(
                    arn=str(item["stateMachineArn"]),
                    name=str(item.get("name", "")),
                    type=str(item.get("type", "")),
                )
                for item in answer.get("stateMachines", [])
            ]
            return machines, answer.get("nextToken")

        return self._pages("ListStateMachines", fetch)

    def describe_state_machine(self, arn: str) -> StateMachineDetail:
        """DescribeStateMachine. A definition encrypted with a KMS key the reader may not use:
        described again with METADATA_ONLY (everything but the definition), the error kept on
        the answer. Any other error is raised."""
        sfn = self.client("stepfunctions")
        try:
            answer = self._call(
                "DescribeStateMachine", sfn.describe_state_machine, stateMachineArn=arn
            )
        except AwsError as exc:
            if not (exc.about_one_resource and exc.kms):
                raise
            error = exc
        else:
            return _state_machine_detail(arn, answer, None)
        answer = self._call(
            "DescribeStateMachine",
            sfn.describe_state_machine,
            stateMachineArn=arn,
            includedData="METADATA_ONLY",
        )
        return _state_machine_detail(arn, answer, error)

    def execution_pages(
        self, state_machine_arn: str = "", *, map_run_arn: str = ""
    ) -> Iterator[list[ListedExecution]]:
        """ListExecutions of one state machine, or with `map_run_arn` of one Map Run (its child
        executions, which the state machine's listing never returns), newest first, page by page."""

        def fetch(token: str | None) -> tuple[list[ListedExecution], str | None]:
            params: ListExecutionsInputTypeDef = {"maxResults": EXECUTIONS_PER_PAGE}
            if map_run_arn:
                params["mapRunArn"] = map_run_arn
            else:
                params["stateMachineArn"] = state_machine_arn
            if token:
                params["nextToken"] = token
            sfn = self.client("stepfunctions")
            answer = self._call("ListExecutions", sfn.list_executions, **params)
            executions = [_listed_execution(item) for item in answer.get("executions", [])]
            return executions, answer.get("nextToken")

        return self._pages("ListExecutions", fetch)

    def describe_execution(self, arn: str) -> ListedExecution:
        """DescribeExecution, METADATA_ONLY: status and times are all the sync asks of it, and
        that also answers for an execution encrypted with a KMS key the reader may not use."""
        sfn = self.client("stepfunctions")
        answer = self._call(
            "DescribeExecution",
            sfn.describe_execution,
            executionArn=arn,
            includedData="METADATA_ONLY",
        )
        return ListedExecution(
            arn=arn,
            name=str(answer.get("name", "")),
            status=str(answer.get("status", "")),
            start_date=answer["startDate"],
            stop_date=answer.get("stopDate"),
            redrive_count=int(answer.get("redriveCount", 0) or 0),
        )

    def history_pages(self, execution_arn: str) -> Iterator[HistoryPage]:
        """GetExecutionHistory page by page, 1,000 events each (the API's maximum), oldest
        first. After an expired token the pages already given are not given again: the
        parser must not see events twice."""

        def fetch(token: str | None) -> tuple[HistoryPage, str | None]:
            params: GetExecutionHistoryInputTypeDef = {
                "executionArn": execution_arn,
                "maxResults": EVENTS_PER_PAGE,
                "includeExecutionData": True,
            }
            if token:
                params["nextToken"] = token
            sfn = self.client("stepfunctions")
            answer = self._call("GetExecutionHistory", sfn.get_execution_history, **params)
            # The typed events are plain dicts at run time: handed over as they came.
            events = cast(list[dict[str, Any]], answer.get("events", []))
            page = HistoryPage(events=events, next_token=answer.get("nextToken"))
            return page, page.next_token

        return self._pages("GetExecutionHistory", fetch, skip_seen=True)

    def history_after(self, execution_arn: str, after_event_id: int) -> HistoryPage:
        """The events newer than `after_event_id`, oldest first, as one page. GetExecutionHistory
        cannot start at an id, so it is read newest first (reverseOrder) in READ_ON_PAGE pages
        until a page reaches the stored id: a redrive's few events cost one small call instead
        of the whole history again."""
        newer: list[dict[str, Any]] = []

        def fetch(token: str | None) -> tuple[HistoryPage, str | None]:
            params: GetExecutionHistoryInputTypeDef = {
                "executionArn": execution_arn,
                "maxResults": READ_ON_PAGE,
                "reverseOrder": True,
                "includeExecutionData": True,
            }
            if token:
                params["nextToken"] = token
            sfn = self.client("stepfunctions")
            answer = self._call("GetExecutionHistory", sfn.get_execution_history, **params)
            events = cast(list[dict[str, Any]], answer.get("events", []))
            page = HistoryPage(events=events, next_token=answer.get("nextToken"))
            return page, page.next_token

        for page in self._pages("GetExecutionHistory", fetch, skip_seen=True):
            fresh = [e for e in page.events if _event_id(e) > after_event_id]
            newer.extend(fresh)
            if len(fresh) < len(page.events):
                break  # this page reached the stored events: no older page is asked for
        newer.sort(key=_event_id)
        return HistoryPage(events=newer, next_token=None)

    # ------------------------------------------------------------------ CloudWatch Logs

    def log_pages(self, log_group_name: str, start_ms: int) -> Iterator[LogPage]:
        """FilterLogEvents of one log group from `start_ms`, page by page."""

        def fetch(token: str | None) -> tuple[LogPage, str | None]:
            params: FilterLogEventsRequestTypeDef = {
                "logGroupName": log_group_name,
                "startTime": start_ms,
                "limit": LOG_EVENTS_PER_PAGE,
            }
            if token:
                params["nextToken"] = token
            logs = self.client("logs")
            answer = self._call("FilterLogEvents", logs.filter_log_events, **params)
            events = cast(list[dict[str, Any]], answer.get("events", []))
            page = LogPage(events=events, next_token=answer.get("nextToken"))
            return page, page.next_token

        return self._pages("FilterLogEvents", fetch)

    # ------------------------------------------------------------ EventBridge connections

    def connection_pages(self) -> Iterator[list[ConnectionSummary]]:
        """ListConnections, page by page."""

        def fetch(token: str | None) -> tuple[list[ConnectionSummary], str | None]:
            params: ListConnectionsRequestTypeDef = {"Limit": CONNECTIONS_PER_PAGE}
            if token:
                params["NextToken"] = token
            events = self.client("events")
            answer = self._call("ListConnections", events.list_connections, **params)
            listed = [_connection_summary(item) for item in answer.get("Connections", [])]
            return [c for c in listed if c.arn], answer.get("NextToken")

        return self._pages("ListConnections", fetch)

    def describe_connection(self, name: str) -> ConnectionDetail:
        """DescribeConnection (it takes the name: the listing's, never one cut from the ARN)."""
        events = self.client("events")
        answer = self._call("DescribeConnection", events.describe_connection, Name=name)
        auth = answer.get("AuthParameters") or {}
        http = auth.get("InvocationHttpParameters") or {}
        parameters = [
            InvocationParameter(
                kind,
                str(item.get("Key", "")),
                # AWS omits the value of a secret parameter: no value means secret too.
                bool(item.get("IsValueSecret")) or "Value" not in item,
            )
            for kind, items in (
                ("headers", http.get("HeaderParameters")),
                ("query", http.get("QueryStringParameters")),
                ("body", http.get("BodyParameters")),
            )
            for item in cast(list[dict[str, Any]], items or [])
        ]
        api_key = auth.get("ApiKeyAuthParameters")
        return ConnectionDetail(
            parameters=tuple(parameters),
            api_key_name=None if api_key is None else str(api_key.get("ApiKeyName", "")),
            sends_authorization="BasicAuthParameters" in auth or "OAuthParameters" in auth,
            private_api=_private_resource(answer.get("InvocationConnectivityParameters")),
            private_auth=_private_resource(auth.get("ConnectivityParameters")),
            kms_key_identifier=str(answer.get("KmsKeyIdentifier") or ""),
        )

    # ---------------------------------------------------------------------------- STS

    def caller_identity(self) -> CallerIdentity:
        answer = self._call("GetCallerIdentity", self.client("sts").get_caller_identity)
        return CallerIdentity(
            arn=str(answer.get("Arn", "")), account=str(answer.get("Account", ""))
        )

    # ------------------------------------------------------------------------ plumbing

    def _call(
        self, operation: str, method: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs
    ) -> R:
        """`method` (the typed boto3 method of `operation`, its API name), rate limited,
        counted, and tried again after botocore's own retries when the error is transient
        (connections/aws/client.py: up to OUTER_TRIES rounds while under OUTER_BUDGET_SECONDS).
        Each HTTP attempt, botocore's retries included, waits for a token of the bucket shared
        by every worker (connections/ratelimit.py)."""
        limiter = self._limiter if self.rate_limited else None
        started = time.monotonic()
        for attempt in range(OUTER_TRIES):
            with self._count_lock:
                self.calls[operation] += 1
            try:
                with (
                    counting(self.throttles, self._count_lock, operation),
                    pacing(limiter, operation),
                ):
                    return method(*args, **kwargs)
            except BOTO_ERRORS as exc:
                error = translate(exc, operation)
                wait = min(OUTER_BACKOFF_SECONDS * 2**attempt, OUTER_BACKOFF_MAX_SECONDS)
                spent = time.monotonic() - started
                if (
                    not error.transient
                    or attempt == OUTER_TRIES - 1
                    or spent + wait > OUTER_BUDGET_SECONDS
                ):
                    raise error from exc
                # Wait longer than botocore did before the next round, so a throttled account
                # recovers instead of failing this sync.
                time.sleep(wait)
        raise AssertionError("unreachable")  # the loop always returns or raises

    def _pages(
        self,
        operation: str,
        fetch: Callable[[str | None], tuple[T, str | None]],
        skip_seen: bool = False,
    ) -> Iterator[T]:
        """Yield pages one at a time (never the whole listing in memory); `fetch(token)` gets
        one page and the next token.

        An expired pagination token lists again from the first page. The pages already yielded
        come again, for callers that dedupe by key; with `skip_seen` they are fetched but not
        yielded again, for ordered append-only listings (a history feeding a stateful parser).
        It gives up only after LISTING_RESTARTS restarts that got no further than the one before.
        """
        token: str | None = None
        depth = deepest = stalls = 0  # pages fetched in this pass; most in any pass
        while True:
            try:
                page, next_token = fetch(token)
            except AwsError as exc:
                if token is None or not is_expired_token(exc):
                    raise
                stalls = 0 if depth > deepest else stalls + 1
                if stalls > LISTING_RESTARTS:
                    raise expired_for_now(exc) from exc
                log.warning("%s: pagination token expired; listing again from the start", operation)
                deepest, depth, token = max(deepest, depth), 0, None
                continue
            depth += 1
            if not skip_seen or depth > deepest:
                yield page
            if not next_token:
                return
            token = next_token


def _listed_execution(item: ExecutionListItemTypeDef) -> ListedExecution:
    """One ListExecutions entry (of a state machine or of a Map Run)."""
    return ListedExecution(
        arn=str(item["executionArn"]),
        name=str(item.get("name", "")),
        status=str(item.get("status", "")),
        start_date=item["startDate"],
        stop_date=item.get("stopDate"),
        redrive_count=int(item.get("redriveCount", 0) or 0),
    )


def _event_id(event: dict[str, Any]) -> int:
    value = event.get("id")
    return value if isinstance(value, int) else 0


def _state_machine_detail(
    arn: str, answer: DescribeStateMachineOutputTypeDef, error: AwsError | None
) -> StateMachineDetail:
    logging_conf = answer.get("loggingConfiguration") or {}
    destinations = logging_conf.get("destinations") or [{}]
    log_group = (destinations[0].get("cloudWatchLogsLogGroup") or {}).get("logGroupArn", "")
    encryption = answer.get("encryptionConfiguration") or {}
    customer_key = encryption.get("type") == "CUSTOMER_MANAGED_KMS_KEY"
    definition = answer.get("definition")
    return StateMachineDetail(
        arn=str(answer.get("stateMachineArn") or arn),
        name=str(answer.get("name", "")),
        type=str(answer.get("type", "")),
        definition=None if definition is None else str(definition),
        logging_level=str(logging_conf.get("level", "")),
        include_execution_data=bool(logging_conf.get("includeExecutionData", False)),
        log_group_arn=str(log_group),
        kms_key_id=str(encryption.get("kmsKeyId") or "") if customer_key else "",
        definition_error=error,
        role_arn=str(answer.get("roleArn") or ""),
    )


def _connection_summary(item: ConnectionTypeDef) -> ConnectionSummary:
    return ConnectionSummary(
        arn=str(item.get("ConnectionArn", "")),
        name=str(item.get("Name", "")),
        state=str(item.get("ConnectionState", "")),
        state_reason=str(item.get("StateReason") or ""),
        authorization_type=str(item.get("AuthorizationType", "")),
        modified_at=aware(item.get("LastModifiedTime")),
        authorized_at=aware(item.get("LastAuthorizedTime")),
        created_at=aware(item.get("CreationTime")),
    )


def _private_resource(connectivity: object) -> PrivateResource | None:
    # Absent, or a shape we do not know: a public endpoint as far as we can tell.
    if not isinstance(connectivity, dict):
        return None
    resource = connectivity.get("ResourceParameters")
    if not isinstance(resource, dict):
        return None
    configuration = str(resource.get("ResourceConfigurationArn") or "")
    association = str(resource.get("ResourceAssociationArn") or "")
    if not (configuration or association):
        return None
    return PrivateResource(configuration_arn=configuration, association_arn=association)
