"""`sandbox run`: a seeded mix of every HTTP-task failure mode (and successes) on the sandbox.

`run()` sets up the account (sandbox.account), starts `executions` executions drawn from `CASES`
with `random.Random(seed)`, keeps at most `concurrency` of them running, waits for all of them and
returns a `Summary`. Standard executions are read back with DescribeExecution and
GetExecutionHistory; Express ones only through their CloudWatch logs, as on AWS.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import boto3
import requests
from botocore.config import Config

from sandbox import account

TERMINAL_LOG_TYPES = {
    "ExecutionSucceeded": "SUCCEEDED",
    "ExecutionFailed": "FAILED",
    "ExecutionTimedOut": "TIMED_OUT",
    "ExecutionAborted": "ABORTED",
}
TASK_FAILURE_TYPES = frozenset(
    {"TaskFailed", "TaskTimedOut", "TaskStartFailed", "TaskSubmitFailed"}
)
DEFAULT_CONCURRENCY = 48
WAIT_LIMIT_SECONDS = 900.0
_POLL_SECONDS = 0.1


@dataclass(frozen=True)
class CaseContext:
    partner_url: str
    name: str  # the execution name
    http_timeout_seconds: float


@dataclass(frozen=True)
class Case:
    """One kind of execution: which state machine, with which input, how often."""

    name: str
    state_machine: str
    weight: int
    make_input: Callable[[CaseContext], dict[str, Any]]


def _hook(
    path: str, method: str = "GET", body: Any = None, headers: dict[str, str] | None = None
) -> Callable[[CaseContext], dict[str, Any]]:
    def make(ctx: CaseContext) -> dict[str, Any]:
        url = ctx.partner_url + path.format(name=ctx.name, hang=ctx.http_timeout_seconds + 1)
        return {"url": url, "method": method, "headers": headers or {}, "body": body}

    return make


def _orders(**overrides: Any) -> Callable[[CaseContext], dict[str, Any]]:
    base = {
        "since": "2024-06-01T00:00:00Z",
        "fetchDelay": 0,
        "customerId": "cus-42",
        "amount": 1999,
        "tags": ["vip", "eu"],
        "warehouseFailures": 0,
    }
    return lambda ctx: {**base, **overrides}


def _fanout(*paths: str) -> Callable[[CaseContext], dict[str, Any]]:
    """A batch of orders for the Distributed Map, one partner path per order."""

    def make(ctx: CaseContext) -> dict[str, Any]:
        return {"orders": [{"url": ctx.partner_url + path, "order": _ORDER} for path in paths]}

    return make


def _const(value: dict[str, Any]) -> Callable[[CaseContext], dict[str, Any]]:
    return lambda ctx: dict(value)


_ORDER = {"customerId": "cus-42", "amount": 1999}
_ORDER_HEADERS = {"Idempotency-Key": "evt-1"}

CASES: tuple[Case, ...] = (
    # webhook-dispatcher (API key; Retry on 429/5xx, Catch 404/409)
    Case("hook-ok", "webhook-dispatcher", 8, _hook("/ok")),
    Case("hook-echo", "webhook-dispatcher", 4, _hook("/echo", "POST", {"event": "order.created"})),
    Case("hook-order", "webhook-dispatcher", 6, _hook("/orders", "POST", _ORDER, _ORDER_HEADERS)),
    Case("hook-text", "webhook-dispatcher", 2, _hook("/text")),
    Case("hook-missing-header", "webhook-dispatcher", 3, _hook("/orders", "POST", _ORDER)),
    Case(
        "hook-missing-field",
        "webhook-dispatcher",
        3,
        _hook("/orders", "POST", {"customerId": "cus-42"}, _ORDER_HEADERS),
    ),
    Case(
        "hook-content-type",
        "webhook-dispatcher",
        2,
        _hook(
            "/orders", "POST", "customerId=cus-42", {"Content-Type": "text/plain", **_ORDER_HEADERS}
        ),
    ),
    Case("hook-404", "webhook-dispatcher", 3, _hook("/status/404")),
    Case("hook-409", "webhook-dispatcher", 2, _hook("/status/409", "POST", {"event": "dup"})),
    Case("hook-429", "webhook-dispatcher", 2, _hook("/status/429")),
    Case("hook-500", "webhook-dispatcher", 2, _hook("/status/500", "POST", {"event": "x"})),
    Case("hook-502", "webhook-dispatcher", 1, _hook("/status/502")),
    Case("hook-503", "webhook-dispatcher", 2, _hook("/status/503")),
    Case("hook-504", "webhook-dispatcher", 1, _hook("/status/504")),
    Case("hook-flaky", "webhook-dispatcher", 3, _hook("/flaky?key={name}&fail=2&of=3")),
    Case(
        "hook-forbidden-header",
        "webhook-dispatcher",
        2,
        _hook("/ok", headers={"Cache-Control": "no-cache"}),
    ),
    Case("hook-oversized", "webhook-dispatcher", 1, _hook("/oversized?kb=300")),
    Case("hook-binary", "webhook-dispatcher", 1, _hook("/binary")),
    Case("hook-reset", "webhook-dispatcher", 2, _hook("/reset")),
    Case("hook-hang", "webhook-dispatcher", 1, _hook("/slow?seconds={hang}")),
    # orders-sync (Basic + API key; TimeoutSeconds, Parallel, URL_ENCODED)
    Case("orders-ok", "orders-sync", 8, _orders()),
    Case("orders-warehouse-retried", "orders-sync", 3, _orders(warehouseFailures=2)),
    Case("orders-warehouse-down", "orders-sync", 2, _orders(warehouseFailures=3)),
    Case("orders-fetch-timeout", "orders-sync", 2, _orders(fetchDelay=3)),
    Case("orders-missing-amount", "orders-sync", 2, _orders(amount=None)),
    # inventory-fanout (OAuth; Map)
    Case(
        "inventory-ok",
        "inventory-fanout",
        5,
        _const({"skus": [{"sku": "sku-1"}, {"sku": "sku-2"}, {"sku": "sku-3"}]}),
    ),
    Case(
        "inventory-missing-sku",
        "inventory-fanout",
        2,
        _const({"skus": [{"sku": "sku-1"}, {"sku": "missing-9"}]}),
    ),
    # payments-capture (OAuth good / revoked / read-only)
    Case(
        "payment-capture",
        "payments-capture",
        5,
        _const({"route": "capture", "paymentId": "pay-1", "amount": 2500}),
    ),
    Case(
        "payment-refund-revoked",
        "payments-capture",
        2,
        _const({"route": "refund", "paymentId": "pay-2", "amount": 500}),
    ),
    Case(
        "payment-audit-readonly",
        "payments-capture",
        1,
        _const({"route": "audit", "paymentId": "pay-3", "amount": 0}),
    ),
    # crm-legacy (Basic; 401 → DEAUTHORIZED cascade; 403 read-only)
    Case("crm-rotated", "crm-legacy", 3, _const({"account": "main", "email": "ada@example.com"})),
    Case(
        "crm-readonly", "crm-legacy", 1, _const({"account": "readonly", "email": "bob@example.com"})
    ),
    # connection-level failures
    Case("reports-deleted-connection", "reports-export", 1, _const({})),
    Case("ledger-access-denied", "ledger-sync", 1, _const({"entry": {"debit": 10}})),
    # notifications-express (Express; logs only)
    Case("notify-ok", "notifications-express", 5, _hook("/basic", "POST", {"text": "hi"})),
    Case("notify-503", "notifications-express", 2, _hook("/status/503", "POST", {"text": "hi"})),
    Case("notify-reset", "notifications-express", 1, _hook("/reset", "POST", {"text": "hi"})),
    Case("notify-missing-header", "notifications-express", 1, _hook("/orders", "POST", _ORDER)),
    # orders-fanout (Distributed Map: MapRunStarted, then MapRunSucceeded or, over the tolerated
    # failures, MapRunFailed; the calls live in child executions named after the Map Run)
    Case("fanout-ok", "orders-fanout", 2, _fanout("/ok", "/ok", "/ok")),
    Case("fanout-endpoint-down", "orders-fanout", 2, _fanout("/status/503", "/status/503", "/ok")),
)


@dataclass
class Summary:
    """Outcome of a run: executions by status, execution errors and task errors by name."""

    executions: int
    by_status: dict[str, int]
    by_error: dict[str, int]
    task_errors: dict[str, int] = field(default_factory=dict)
    by_case: dict[str, dict[str, int]] = field(default_factory=dict)
    elapsed_seconds: float = 0.0

    def table(self) -> str:
        lines = [f"{self.executions} executions in {self.elapsed_seconds:.1f} s", ""]
        lines += _section("Status", self.by_status)
        lines += _section("Execution error", self.by_error)
        lines += _section("Task error (every attempt)", self.task_errors)
        return "\n".join(lines).rstrip() + "\n"

    def __str__(self) -> str:
        return self.table()


def _section(title: str, counts: dict[str, int]) -> list[str]:
    if not counts:
        return [f"{title:<52} {'count':>6}", f"{'(none)':<52} {0:>6}", ""]
    width = max(52, *(len(k) for k in counts))
    rows = [f"{title:<{width}} {'count':>6}", "-" * (width + 7)]
    rows += [
        f"{name:<{width}} {n:>6}"
        for name, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    ]
    return [*rows, ""]


@dataclass(frozen=True)
class Started:
    arn: str
    case: str
    express: bool


def run(
    endpoint_url: str,
    region: str = "us-east-1",
    executions: int = 100,
    seed: int = 0,
    partner_url: str | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    progress: Callable[[str], None] | None = None,
) -> Summary:
    """Set up the account idempotently, run `executions` seeded executions, wait, summarise."""
    began = time.monotonic()
    info = sandbox_info(endpoint_url)
    partner_url = partner_url or str(info["partner_url"])
    clients = _clients(endpoint_url, region)
    acct = account.ensure_account(clients, partner_url, region)
    cases = plan(executions, seed)
    run_id = uuid.uuid4().hex[:6]
    timeout = float(info.get("http_timeout_seconds", 60.0))
    started: list[Started] = []
    running: set[str] = set()
    for i, case in enumerate(cases):
        _wait_for_room(endpoint_url, running, concurrency)
        name = f"{case.name}-{seed}-{i:05d}-{run_id}"
        ctx = CaseContext(partner_url, name, timeout)
        arn = clients.stepfunctions.start_execution(
            stateMachineArn=acct.state_machines[case.state_machine],
            name=name,
            input=json.dumps(case.make_input(ctx)),
        )["executionArn"]
        started.append(Started(arn, case.name, case.state_machine in acct.express))
        running.add(arn)
        if progress and (i + 1) % 100 == 0:
            progress(f"started {i + 1}/{executions}")
    _wait_until_done(endpoint_url, running)
    summary = _summarise(clients, acct, started)
    summary.elapsed_seconds = time.monotonic() - began
    return summary


def plan(executions: int, seed: int) -> list[Case]:
    """The cases `run` starts, in order: the same seed always gives the same workload."""
    rng = random.Random(seed)  # noqa: S311 — a reproducible workload, not a secret
    return rng.choices(CASES, weights=[c.weight for c in CASES], k=executions)


def sandbox_info(endpoint_url: str) -> dict[str, Any]:
    response = requests.get(f"{endpoint_url.rstrip('/')}/_sandbox/info", timeout=10)
    response.raise_for_status()
    return dict(response.json())


def running_arns(endpoint_url: str) -> set[str]:
    response = requests.get(f"{endpoint_url.rstrip('/')}/_sandbox/executions", timeout=10)
    response.raise_for_status()
    return set(response.json()["running"])


def _clients(endpoint_url: str, region: str) -> SimpleNamespace:
    config = Config(retries={"mode": "standard", "max_attempts": 10}, max_pool_connections=16)
    kwargs: dict[str, Any] = {
        "endpoint_url": endpoint_url,
        "region_name": region,
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",  # the sandbox accepts any credentials
        "config": config,
    }
    return SimpleNamespace(
        stepfunctions=boto3.client("stepfunctions", **kwargs),
        events=boto3.client("events", **kwargs),
        logs=boto3.client("logs", **kwargs),
    )


def _wait_for_room(endpoint_url: str, running: set[str], concurrency: int) -> None:
    """Block until fewer than `concurrency` of our executions run; prunes `running`."""
    while len(running) >= concurrency:
        running &= running_arns(endpoint_url)
        if len(running) >= concurrency:
            time.sleep(_POLL_SECONDS)


def _wait_until_done(endpoint_url: str, running: set[str]) -> None:
    deadline = time.monotonic() + WAIT_LIMIT_SECONDS
    while running and time.monotonic() < deadline:
        running &= running_arns(endpoint_url)
        if running:
            time.sleep(_POLL_SECONDS * 2)


def _summarise(clients: SimpleNamespace, acct: account.Account, started: list[Started]) -> Summary:
    by_status: Counter[str] = Counter()
    by_error: Counter[str] = Counter()
    task_errors: Counter[str] = Counter()
    by_case: defaultdict[str, Counter[str]] = defaultdict(Counter)
    standard = [s for s in started if not s.express]
    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(
            pool.map(lambda s: _standard_outcome(clients.stepfunctions, s.arn), standard)
        )
    express = _express_outcomes(clients.logs, acct, {s.arn for s in started if s.express})
    for item, (status, error, errors) in zip(standard, outcomes, strict=True):
        _count(item, status, error, errors, by_status, by_error, task_errors, by_case)
    for item in (s for s in started if s.express):
        status, error, errors = express.get(item.arn, ("RUNNING", None, []))
        _count(item, status, error, errors, by_status, by_error, task_errors, by_case)
    return Summary(
        executions=len(started),
        by_status=dict(by_status),
        by_error=dict(by_error),
        task_errors=dict(task_errors),
        by_case={case: dict(counts) for case, counts in sorted(by_case.items())},
    )


def _count(
    item: Started,
    status: str,
    error: str | None,
    errors: Iterable[str],
    by_status: Counter[str],
    by_error: Counter[str],
    task_errors: Counter[str],
    by_case: defaultdict[str, Counter[str]],
) -> None:
    by_status[status] += 1
    by_case[item.case][status] += 1
    if error:
        by_error[error] += 1
    task_errors.update(errors)


def _standard_outcome(sfn: Any, arn: str) -> tuple[str, str | None, list[str]]:
    described = sfn.describe_execution(executionArn=arn)
    errors: list[str] = []
    for page in sfn.get_paginator("get_execution_history").paginate(
        executionArn=arn, maxResults=1000
    ):
        for event in page["events"]:
            if event["type"] in TASK_FAILURE_TYPES:
                details = next(v for k, v in event.items() if k.endswith("EventDetails"))
                errors.append(details.get("error", ""))
    error = described.get("error") or (
        "States.Timeout" if described["status"] == "TIMED_OUT" else None
    )
    return str(described["status"]), error, errors


def _express_outcomes(
    logs: Any, acct: account.Account, arns: set[str]
) -> dict[str, tuple[str, str | None, list[str]]]:
    status: dict[str, str] = {}
    error: dict[str, str | None] = {}
    errors: defaultdict[str, list[str]] = defaultdict(list)
    for short in acct.express:
        paginator = logs.get_paginator("filter_log_events")
        for page in paginator.paginate(logGroupName=acct.log_groups[short]):
            for event in page["events"]:
                record = json.loads(event["message"])
                arn = record.get("execution_arn")
                if arn not in arns:
                    continue
                kind = record.get("type")
                if kind in TERMINAL_LOG_TYPES:
                    status[arn] = TERMINAL_LOG_TYPES[kind]
                    error[arn] = (record.get("details") or {}).get("error")
                elif kind in TASK_FAILURE_TYPES:
                    errors[arn].append((record.get("details") or {}).get("error", ""))
    return {arn: (status[arn], error.get(arn), errors[arn]) for arn in status}
