"""factory_boy factories for every model, plus `build_demo_data()` for the browser tests.

Defaults describe the common case (a failed HTTP attempt in a Standard state machine, logged at
ALL with execution data, through an authorized API-key connection); override what a test is
about. Related objects follow each other: an attempt's account is its execution's account,
a connection's ARN carries its account id and region.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.models import Group, Permission, User
from django.utils import timezone
from factory.declarations import (
    LazyAttribute,
    LazyFunction,
    PostGeneration,
    PostGenerationMethodCall,
    SelfAttribute,
    Sequence,
    SubFactory,
    Trait,
)
from factory.django import DjangoModelFactory

from connections.choices import AuthorizationType, ConnectionState, SyncStatus
from connections.models import (
    AwsAccount,
    Connection,
    ConnectionStateChange,
    Endpoint,
    SyncRun,
)
from executions.choices import (
    Category,
    ExecutionStatus,
    GroupStatus,
    LoggingLevel,
    Outcome,
    StateMachineType,
)
from executions.classify import group_title
from executions.models import Execution, FailureGroup, HttpAttempt, StateMachine

PASSWORD = "correct-horse-battery-staple"


def _add_groups(obj: User | AwsAccount, create: bool, groups: Any, **kwargs: Any) -> None:
    if create and groups:
        obj.groups.add(*groups)


def _add_perms(user: User, create: bool, perms: Any, **kwargs: Any) -> None:
    """perms=["executions.change_failuregroup", ...] as "app_label.codename"."""
    for dotted in (perms or ()) if create else ():
        app_label, codename = dotted.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )


class GroupFactory(DjangoModelFactory[Group]):
    class Meta:
        model = Group
        django_get_or_create = ("name",)

    name = Sequence(lambda n: f"team-{n}")


class UserFactory(DjangoModelFactory[User]):
    """A user whose password is PASSWORD; pass groups=[...] and perms=["app.codename"]."""

    class Meta:
        model = User
        skip_postgeneration_save = True

    username = Sequence(lambda n: f"user{n}")
    email = LazyAttribute(lambda o: f"{o.username}@example.com")
    password = PostGenerationMethodCall("set_password", PASSWORD)

    groups = PostGeneration(_add_groups)
    perms = PostGeneration(_add_perms)

    @classmethod
    def _after_postgeneration(cls, instance: User, create: bool, results: Any = None) -> None:
        if create:
            instance.save()


class AwsAccountFactory(DjangoModelFactory[AwsAccount]):
    """An account; pass groups=[...] to grant it to groups."""

    class Meta:
        model = AwsAccount
        skip_postgeneration_save = True

    name = Sequence(lambda n: f"account-{n}")
    account_id = Sequence(lambda n: f"{111122220000 + n:012d}")
    regions = LazyFunction(lambda: ["eu-west-1"])
    sync_status = SyncStatus.OK
    last_synced_at = LazyFunction(timezone.now)

    groups = PostGeneration(_add_groups)


class ConnectionFactory(DjangoModelFactory[Connection]):
    class Meta:
        model = Connection

    account = SubFactory(AwsAccountFactory)
    region = LazyAttribute(lambda o: o.account.regions[0])
    name = Sequence(lambda n: f"partner-api-{n}")
    arn = LazyAttribute(
        lambda o: (
            f"arn:aws:events:{o.region}:{o.account.account_id}:connection/{o.name}/{uuid.uuid4()}"
        )
    )
    authorization_type = AuthorizationType.API_KEY
    state = ConnectionState.AUTHORIZED
    last_authorized_at = LazyFunction(lambda: timezone.now() - timedelta(days=3))
    invocation_parameter_names = LazyFunction(lambda: {"headers": ["x-api-key"]})


class ConnectionStateChangeFactory(DjangoModelFactory[ConnectionStateChange]):
    class Meta:
        model = ConnectionStateChange

    connection = SubFactory(ConnectionFactory)
    state = ConnectionState.AUTHORIZED
    changed_at = LazyFunction(timezone.now)


class EndpointFactory(DjangoModelFactory[Endpoint]):
    class Meta:
        model = Endpoint

    account = SubFactory(AwsAccountFactory)
    method = "POST"
    url_template = Sequence(lambda n: f"https://api{n}.example.com/v1/orders/{{id}}")
    first_seen_at = LazyFunction(lambda: timezone.now() - timedelta(days=7))
    last_seen_at = LazyFunction(timezone.now)


class SyncRunFactory(DjangoModelFactory[SyncRun]):
    class Meta:
        model = SyncRun

    account = SubFactory(AwsAccountFactory)
    status = SyncStatus.OK
    trigger = "schedule"
    finished_at = LazyFunction(timezone.now)
    api_calls = LazyFunction(lambda: {"ListExecutions": 2, "GetExecutionHistory": 5})
    executions_added = 5
    attempts_added = 9

    class Params:
        running = Trait(
            status=SyncStatus.RUNNING, finished_at=None, progress="state machine 2 of 5"
        )


class StateMachineFactory(DjangoModelFactory[StateMachine]):
    class Meta:
        model = StateMachine

    account = SubFactory(AwsAccountFactory)
    region = LazyAttribute(lambda o: o.account.regions[0])
    name = Sequence(lambda n: f"OrderFlow{n}")
    arn = LazyAttribute(
        lambda o: f"arn:aws:states:{o.region}:{o.account.account_id}:stateMachine:{o.name}"
    )
    type = StateMachineType.STANDARD
    logging_level = LoggingLevel.ALL
    include_execution_data = True
    last_synced_at = LazyFunction(timezone.now)


class ExecutionFactory(DjangoModelFactory[Execution]):
    class Meta:
        model = Execution

    state_machine = SubFactory(StateMachineFactory)
    account = SelfAttribute("state_machine.account")
    name = Sequence(lambda n: f"run-{n:05d}")
    arn = LazyAttribute(
        lambda o: o.state_machine.arn.replace(":stateMachine:", ":execution:", 1) + f":{o.name}"
    )
    status = ExecutionStatus.FAILED
    start_date = LazyFunction(lambda: timezone.now() - timedelta(minutes=5))
    stop_date = LazyAttribute(lambda o: o.start_date + timedelta(seconds=3))
    error = "States.Http.StatusCode.503"
    cause = "Service Unavailable"
    has_failed_attempt = True
    history_complete = True
    last_event_id = 9


class FailureGroupFactory(DjangoModelFactory[FailureGroup]):
    class Meta:
        model = FailureGroup

    account = SubFactory(AwsAccountFactory)
    fingerprint = Sequence(lambda n: f"{n:064x}")
    connection = None
    connection_arn = LazyAttribute(lambda o: o.connection.arn if o.connection else "")
    endpoint = None
    method = "POST"
    category = Category.SERVER_ERROR
    status_code = 503
    error = "States.Http.StatusCode.503"
    title = Sequence(lambda n: f"503 from POST /v1/orders/{{id}} ({n})")
    hint = "The partner API is unavailable; retry with backoff."
    first_seen_at = LazyFunction(lambda: timezone.now() - timedelta(days=2))
    last_seen_at = LazyFunction(timezone.now)
    count = 1
    status = GroupStatus.OPEN


class HttpAttemptFactory(DjangoModelFactory[HttpAttempt]):
    """A failed attempt (503) by default; `succeeded=True` makes a 200."""

    class Meta:
        model = HttpAttempt

    execution = SubFactory(ExecutionFactory)
    account = SelfAttribute("execution.account")
    state_name = "CallPartner"
    attempt_number = 1
    key_event_id = Sequence(lambda n: n + 3)
    scheduled_event_id = SelfAttribute("key_event_id")
    closed_event_id = LazyAttribute(lambda o: o.key_event_id + 2)
    entered_event_id = 2
    occurred_at = LazyFunction(lambda: timezone.now() - timedelta(minutes=1))
    scheduled_at = SelfAttribute("occurred_at")
    closed_at = LazyAttribute(lambda o: o.occurred_at + timedelta(milliseconds=o.duration_ms or 0))
    duration_ms = 420
    method = "POST"
    url = "https://api.example.com/v1/orders/123"
    endpoint = None
    connection = None
    connection_arn = LazyAttribute(lambda o: o.connection.arn if o.connection else "")
    request_headers = LazyFunction(
        lambda: {"content-type": "application/json", "x-request-id": "abc"}
    )
    request_query = None
    request_body = LazyFunction(lambda: {"order": {"id": 123, "amount": 10}})
    status_code = 503
    response_headers = LazyFunction(lambda: {"content-type": ["application/json"]})
    response_body = '{"message": "upstream unavailable"}'
    error = "States.Http.StatusCode.503"
    cause = "Service Unavailable"
    outcome = Outcome.FAILED
    category = Category.SERVER_ERROR
    subcategory = "http_503"
    evidence = LazyFunction(lambda: {"status_code": 503, "rule": "status-5xx"})
    hint = "The endpoint answered 503: the partner is down or overloaded; retry with backoff."
    classifier_version = "test-1"

    class Params:
        succeeded = Trait(
            outcome=Outcome.SUCCEEDED,
            status_code=200,
            error="",
            cause="",
            category="",
            subcategory="",
            hint="",
            evidence={},
            response_body='{"ok": true}',
        )


# --- Demo data (browser tests) ----------------------------------------------------------------


@dataclass
class DemoData:
    """What build_demo_data() made, for tests that need to point at something."""

    viewers: Group
    account: AwsAccount
    other_account: AwsAccount
    connection: Connection
    deauthorized: Connection
    endpoints: list[Endpoint]
    machine: StateMachine
    executions: list[Execution] = field(default_factory=list)
    groups: list[FailureGroup] = field(default_factory=list)
    failing_execution: Execution | None = None


_FAILURES: list[tuple[str, int | None, str, str, str]] = [
    # category, status, error, cause, hint
    (
        Category.SERVER_ERROR,
        503,
        "States.Http.StatusCode.503",
        "Service Unavailable",
        "The partner answered 503: it is down or overloaded. Retry with backoff.",
    ),
    (
        Category.AUTH,
        401,
        "States.Http.StatusCode.401",
        "Unauthorized",
        "The API key was rejected; EventBridge de-authorizes Basic/API-key connections on 401.",
    ),
    (
        Category.RATE_LIMITED,
        429,
        "States.Http.StatusCode.429",
        "Too Many Requests",
        "Rate limited by the partner: add a Retry with a longer interval.",
    ),
    (
        Category.TIMEOUT,
        None,
        "States.Http.Socket",
        "",
        "No answer within the 60 s hard limit of HTTP tasks.",
    ),
    (
        Category.MISSING_HEADER,
        400,
        "States.Http.StatusCode.400",
        "Bad Request",
        "The request lacks the Idempotency-Key header the last successful call sent.",
    ),
]


# What the classifier would have said of each demo failure (subcategory and evidence).
_DEMO_CLASSES: dict[str, tuple[str, dict[str, Any]]] = {
    Category.SERVER_ERROR: ("http_503", {}),
    Category.AUTH: ("http_401", {}),
    Category.RATE_LIMITED: ("http_429", {}),
    Category.TIMEOUT: ("http_60s_limit", {}),
    Category.MISSING_HEADER: (
        "absent_vs_last_success",
        {"shape_diff": {"headers": ["idempotency-key"]}},
    ),
}


def _attempts_for(
    execution: Execution,
    endpoint: Endpoint,
    connection: Connection,
    failure: tuple[str, int | None, str, str, str],
    when: datetime,
    group: FailureGroup,
) -> None:
    category, status, error, cause, hint = failure
    subcategory, evidence = _DEMO_CLASSES[category]
    for number in (1, 2):
        HttpAttemptFactory.create(
            execution=execution,
            attempt_number=number,
            final_attempt=number == 2,
            occurred_at=when + timedelta(seconds=3 * (number - 1)),
            endpoint=endpoint,
            method=endpoint.method,
            url=endpoint.url_template.replace("{id}", "4711"),
            connection=connection,
            status_code=status,
            error=error,
            cause=cause,
            category=category,
            subcategory=subcategory,
            evidence={"status_code": status, **evidence},
            hint=hint,
            duration_ms=60000 if status is None else 380 + 40 * number,
            failure_group=group,
            request_headers={"content-type": "application/json"},
        )


def build_demo_data(now: datetime | None = None) -> DemoData:
    """A small but realistic picture: two accounts, a de-authorized connection, five kinds of
    failure over the last day, a state machine logging at ERROR only, sync runs."""
    now = now or timezone.now()
    viewers = GroupFactory.create(name="payments-team")
    account = AwsAccountFactory.create(name="payments-prod", regions=["eu-west-1", "us-east-1"])
    account.groups.add(viewers)
    other = AwsAccountFactory.create(name="marketing-prod", regions=["us-east-1"])
    conn = ConnectionFactory.create(account=account, name="stripe-api", region="eu-west-1")
    deauth = ConnectionFactory.create(
        account=account,
        name="crm-basic-auth",
        region="eu-west-1",
        authorization_type=AuthorizationType.BASIC,
        state=ConnectionState.DEAUTHORIZED,
        state_reason="Endpoint returned 401 Unauthorized; connection de-authorized.",
    )
    ConnectionStateChangeFactory.create(
        connection=deauth, state=ConnectionState.AUTHORIZED, changed_at=now - timedelta(days=3)
    )
    ConnectionStateChangeFactory.create(
        connection=deauth,
        state=ConnectionState.DEAUTHORIZED,
        changed_at=now - timedelta(hours=9),
        reason="Endpoint returned 401 Unauthorized",
    )
    endpoints = [
        EndpointFactory.create(account=account, method="POST", url_template="https://api.stripe.example/v1/charges"),
        EndpointFactory.create(account=account, method="GET", url_template="https://crm.example.com/api/customers/{id}"),
        EndpointFactory.create(account=account, method="PUT", url_template="https://ledger.example.net/entries/{id}"),
    ]  # fmt: skip
    machine = StateMachineFactory.create(account=account, name="ChargeCustomer", region="eu-west-1")
    StateMachineFactory.create(
        account=account,
        name="SyncCrmContacts",
        region="eu-west-1",
        type=StateMachineType.EXPRESS,
        logging_level=LoggingLevel.ERROR,
        include_execution_data=False,
    )
    StateMachineFactory.create(account=account, name="NightlyLedger", region="us-east-1")
    data = DemoData(viewers, account, other, conn, deauth, endpoints, machine)
    groups = {}
    for i, failure in enumerate(_FAILURES):
        endpoint = endpoints[i % len(endpoints)]
        connection = deauth if failure[0] == Category.AUTH else conn
        groups[failure[0]] = FailureGroupFactory.create(
            account=account,
            connection=connection,
            endpoint=endpoint,
            method=endpoint.method,
            category=failure[0],
            status_code=failure[1],
            error=failure[2],
            subcategory=_DEMO_CLASSES[failure[0]][0],
            title=group_title(
                method=endpoint.method,
                template=endpoint.url_template,
                status_code=failure[1],
                error=failure[2],
                category=failure[0],
                subcategory=_DEMO_CLASSES[failure[0]][0],
                evidence=_DEMO_CLASSES[failure[0]][1],
                connection_arn=connection.arn,
            ),
            hint=failure[4],
            first_seen_at=now - timedelta(hours=23),
            last_seen_at=now - timedelta(minutes=20),
            count=0,
        )
    for hour in range(0, 24, 2):
        when = now - timedelta(hours=hour, minutes=17)
        # The first success per endpoint, a few minutes before each failure batch.
        for endpoint in endpoints:
            ok = ExecutionFactory.create(
                state_machine=machine,
                status=ExecutionStatus.SUCCEEDED,
                start_date=when - timedelta(minutes=10),
                error="",
                cause="",
                has_failed_attempt=False,
            )
            HttpAttemptFactory.create(
                execution=ok,
                succeeded=True,
                occurred_at=when - timedelta(minutes=10),
                endpoint=endpoint,
                method=endpoint.method,
                url=endpoint.url_template.replace("{id}", "42"),
                connection=conn,
                request_headers={"content-type": "application/json", "idempotency-key": "k-1"},
            )
        for i, failure in enumerate(_FAILURES[: 2 + (hour // 2) % 4]):
            endpoint = endpoints[i % len(endpoints)]
            connection = deauth if failure[0] == Category.AUTH else conn
            execution = ExecutionFactory.create(
                state_machine=machine,
                start_date=when - timedelta(seconds=5),
                stop_date=when + timedelta(seconds=8),
                error=failure[2],
                cause=failure[3],
            )
            group = groups[failure[0]]
            _attempts_for(execution, endpoint, connection, failure, when, group)
            group.count += 2
            data.executions.append(execution)
    for group in groups.values():
        group.save(update_fields=["count"])
    data.groups = list(groups.values())
    data.failing_execution = data.executions[0]
    SyncRunFactory.create(account=account, started_at=now - timedelta(minutes=30))
    SyncRunFactory.create(
        account=account,
        status=SyncStatus.PARTIAL,
        errors=[{"region": "us-east-1", "operation": "ListExecutions", "message": "Rate exceeded"}],
    )
    SyncRunFactory.create(account=other)
    return data
