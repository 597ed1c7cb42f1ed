"""The sandbox the ingest and classify parts read from, filled to the issue's sizes.

Real executions come first: `sandbox.scenarios.run` drives every failure mode through the
sandbox's HTTP tasks. The failed or retried Standard ones become templates, stored again under
new names until the sandbox holds `config.executions` of them (running 2,000 through moto would
take most of the time budget). The 25,000-event histories are written by `bench.histories` into
a Map state machine created through the API. Everything is stored inside the sandbox's own moto
backend, so plain boto3 and the ingest worker read exactly the same served bytes.

This module reaches into moto 5.2.1 internals (the parser backend's executions); the sandbox
pins that version and checks its internals at start.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import io
import json
import logging
import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import requests
from botocore.config import Config as BotoConfig

from bench import histories
from bench.common import Config, say, stopwatch
from connections.arn import execution_arn, region_of
from executions.history import EXECUTION_TERMINAL, TASK_FAILURE_TYPES

ACCOUNT_ID = "123456789012"
ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"
SECRET_KEY = "bench-secret-access-key-0000000000"
REGION = "us-east-1"  # the sandbox's workload and the main bench account
RSS_REGION = "eu-west-1"  # one long history alone, for the memory measurement
FANOUT_NAME = "bench-fanout"
TERMINAL = frozenset(EXECUTION_TERMINAL.values())
# A real GetExecutionHistory answers at most this many events per page.
MAX_PAGE = 1000


@dataclass(frozen=True)
class Stored:
    """One execution the bench stored in the sandbox."""

    arn: str
    events: int
    long: bool
    machine_arn: str


@dataclass(frozen=True)
class Template:
    machine: Any  # moto's StateMachine
    status: str
    start: datetime
    stop: datetime | None
    error: str | None
    cause: str | None
    events: list[dict[str, Any]]
    errors: tuple[str, ...]


@dataclass
class World:
    sandbox: Any  # sandbox.server.Sandbox
    executions: list[Stored]
    rss_execution: Stored
    templates: list[Template]
    task_errors: Counter[str]
    history_pagination: str
    scenario_seconds: float
    build_seconds: float
    definitions: dict[str, str] = field(default_factory=dict)  # machine ARN → definition

    @property
    def endpoint_url(self) -> str:
        return str(self.sandbox.endpoint_url)

    @property
    def events(self) -> int:
        return sum(e.events for e in self.executions)

    def describe(self) -> dict[str, Any]:
        return {
            "executions": len(self.executions),
            "long_histories": sum(1 for e in self.executions if e.long),
            "events": self.events,
            "templates": len(self.templates),
            "task_errors_in_templates": dict(self.task_errors.most_common()),
            "history_pagination": self.history_pagination,
            "scenario_seconds": round(self.scenario_seconds, 1),
            "build_seconds": round(self.build_seconds, 1),
        }

    def close(self) -> None:
        self.sandbox.stop()
        _ENCODED.clear()
        for region in (REGION, RSS_REGION):
            backend = _backend(region)
            for machine in backend.state_machines:
                machine.executions = []


def build_world(config: Config) -> World:
    from sandbox import scenarios
    from sandbox.server import start_sandbox

    # moto logs every task failure with the whole state tree; the bench wants none of it.
    logging.getLogger("moto").setLevel(logging.CRITICAL)
    sandbox = start_sandbox(http_timeout_seconds=2.0)
    try:
        with stopwatch() as scenario_time, _quiet():
            summary = scenarios.run(
                sandbox.endpoint_url,
                region=REGION,
                executions=config.scenario_executions,
                seed=config.seed,
            )
        say(f"sandbox ran {summary.executions} executions in {scenario_time():.1f} s")
        with stopwatch() as build_time:
            world = _fill(sandbox, config, scenario_time())
        world.build_seconds = build_time()
    except BaseException:
        sandbox.stop()
        raise
    return world


def _fill(sandbox: Any, config: Config, scenario_seconds: float) -> World:
    sfn = sfn_client(sandbox.endpoint_url, REGION)
    templates = _harvest(sfn)
    if not templates:
        raise RuntimeError("the sandbox produced no failed or retried Standard execution")
    start = datetime.now(UTC) - timedelta(hours=2)
    stored = _clone(templates, config.executions, start)
    conn = _connection_arn(sandbox.endpoint_url)
    definition = json.dumps(histories.fanout_definition(sandbox.partner_url, conn))
    fanout = _create_machine(sfn, FANOUT_NAME, definition)
    for i in range(config.big_histories):
        stored.append(
            _store_long(fanout, f"long-{i}", start + timedelta(minutes=90 + i), config, i, conn)
        )
    rss_sfn = sfn_client(sandbox.endpoint_url, RSS_REGION)
    rss_machine = _create_machine(rss_sfn, FANOUT_NAME, definition)
    rss = _store_long(rss_machine, "rss", start + timedelta(minutes=100), config, 99, conn, True)
    samples = [e.arn for e in stored[: len(templates)]]
    probe = _probe(fanout, stored[-1].arn if config.big_histories else rss.arn, start)
    pagination = _serve_history_pages(sfn, sandbox.endpoint_url, [*samples, probe])
    fanout.executions = [e for e in fanout.executions if e.exec_arn != probe]
    errors: Counter[str] = Counter()
    for template in templates:
        errors.update(template.errors)
    definitions = {
        m.arn: m.definition for r in (REGION, RSS_REGION) for m in _backend(r).state_machines
    }
    return World(
        sandbox=sandbox,
        executions=stored,
        rss_execution=rss,
        templates=templates,
        task_errors=errors,
        history_pagination=pagination,
        scenario_seconds=scenario_seconds,
        build_seconds=0.0,
        definitions=definitions,
    )


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    # The partner API's "connection reset" endpoint makes http.server print tracebacks.
    with contextlib.redirect_stderr(io.StringIO()):
        yield


def sfn_client(endpoint_url: str, region: str) -> Any:
    return boto3.client(
        "stepfunctions",
        endpoint_url=endpoint_url,
        region_name=region,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        config=BotoConfig(retries={"mode": "standard", "max_attempts": 3}),
    )


def _backend(region: str) -> Any:
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    return stepfunctions_parser_backends[ACCOUNT_ID][region]


def _harvest(sfn: Any) -> list[Template]:
    """Failed or retried Standard executions become templates; the sandbox is then emptied."""
    templates = []
    for machine in list(_backend(REGION).state_machines):
        if getattr(machine, "sm_type", "STANDARD") == "EXPRESS":
            # Express executions are read from CloudWatch Logs, not histories: out of scope here.
            sfn.delete_state_machine(stateMachineArn=machine.arn)
            continue
        for execution in machine.executions:
            template = _template(machine, execution)
            if template is not None:
                templates.append(template)
        machine.executions = []
    # Their log lines go too, and the Standard machines stop logging: a machine that logs is
    # read from its log first (one FilterLogEvents call each, finding nothing, since the clones
    # have no log lines), and the ingest figures measure the history path. The storm bench
    # measures the logs-first path (storm.logs_on.*).
    for machine in list(_backend(REGION).state_machines):
        sfn.update_state_machine(stateMachineArn=machine.arn, loggingConfiguration={"level": "OFF"})
    from moto.logs.models import logs_backends

    for group in logs_backends[ACCOUNT_ID][REGION].groups.values():
        group.streams.clear()
    templates.sort(key=lambda t: (t.machine.name, t.start))
    return templates


def _template(machine: Any, execution: Any) -> Template | None:
    status = str(execution.status)
    if status not in TERMINAL:
        return None
    events = list(execution.to_history_output()["events"])
    errors = tuple(
        str(_details(e).get("error", "")) for e in events if _type(e) in TASK_FAILURE_TYPES
    )
    if status == "SUCCEEDED" and not errors:
        return None  # neither failed nor retried
    return Template(
        machine=machine,
        status=status,
        start=execution.start_date,
        stop=execution.stop_date,
        error=execution.error,
        cause=execution.cause,
        events=events,
        errors=errors,
    )


def _type(event: dict[str, Any]) -> str:
    kind = event.get("type", "")
    return str(getattr(kind, "value", kind))


def _details(event: dict[str, Any]) -> dict[str, Any]:
    for key, value in event.items():
        if key.endswith("EventDetails") and isinstance(value, dict):
            return value
    return {}


def _clone(templates: list[Template], count: int, start: datetime) -> list[Stored]:
    from moto.core.utils import iso_8601_datetime_with_milliseconds

    stored = []
    for i in range(count):
        template = templates[i % len(templates)]
        began = start + timedelta(seconds=2 * i)
        shift = began - template.start
        events = copy.deepcopy(template.events)
        for event in events:
            event["timestamp"] = iso_8601_datetime_with_milliseconds(
                _parse_iso(event["timestamp"]) + shift
            )
        stop = template.stop + shift if template.stop else None
        name = f"bench-{i:05d}"
        arn = _store(
            template.machine, name, began, stop, template.status, template.error,
            template.cause, events,
        )  # fmt: skip
        stored.append(Stored(arn, len(events), False, template.machine.arn))
    return stored


def _parse_iso(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _store_long(
    machine: Any,
    name: str,
    began: datetime,
    config: Config,
    seed: int,
    connection_arn: str,
    rss: bool = False,
) -> Stored:
    from moto.core.utils import iso_8601_datetime_with_milliseconds

    target = config.rss_history_events if rss else config.big_history_events
    events = histories.map_history(
        target_events=target,
        partner_url=str(_partner_url(machine)),
        connection_arn=connection_arn,
        start=began,
        seed=config.seed * 1000 + seed,
    )
    stop = events[-1]["timestamp"]
    for event in events:
        event["timestamp"] = iso_8601_datetime_with_milliseconds(event["timestamp"])
    arn = _store(machine, name, began, stop, "SUCCEEDED", None, None, events)
    return Stored(arn, len(events), True, machine.arn)


def _probe(machine: Any, long_arn: str, began: datetime) -> str:
    """A short execution holding the first events of a long one (moto serializes it quickly)."""
    region = region_of(long_arn)
    events = _backend(region).describe_execution(long_arn).stored_events[:300]
    return _store(machine, "probe", began, None, "SUCCEEDED", None, None, events)


def _partner_url(machine: Any) -> str:
    definition = json.loads(machine.definition)
    task = definition["States"][histories.MAP_STATE]["ItemProcessor"]["States"]
    template = task[histories.TASK_STATE]["Parameters"]["ApiEndpoint.$"]
    return str(template.split("'")[1].rsplit("/inventory/", 1)[0])


def _store(
    machine: Any,
    name: str,
    began: datetime,
    stop: datetime | None,
    status: str,
    error: str | None,
    cause: str | None,
    events: list[dict[str, Any]],
) -> str:
    """Put one finished execution with this history into the sandbox's backend."""
    from moto.stepfunctions.parser.api import ExecutionStatus

    region = region_of(machine.arn)
    arn = execution_arn(region, ACCOUNT_ID, machine.name, name)
    execution = _stored_execution_class()(
        name=name,
        sm_type=machine.sm_type,
        role_arn=machine.roleArn,
        exec_arn=arn,
        account_id=ACCOUNT_ID,
        region_name=region,
        state_machine=machine,
        start_date=began,
        cloud_watch_logging_session=None,
        activity_store={},
        input_data="{}",
    )
    execution.exec_status = ExecutionStatus(status)
    execution.stop_date = stop
    execution.error = error
    execution.cause = cause
    execution.stored_events = events
    machine.executions.append(execution)
    return arn


@functools.cache
def _stored_execution_class() -> type:
    from moto.stepfunctions.parser.backend.execution import Execution

    class StoredExecution(Execution):
        """A finished execution whose history is given, not interpreted."""

        stored_events: list[Any]

        def to_history_output(self) -> Any:
            return {"events": self.stored_events}

    return StoredExecution


def _connection_arn(endpoint_url: str) -> str:
    events = boto3.client(
        "events",
        endpoint_url=endpoint_url,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    )
    found = events.list_connections(NamePrefix="sandbox-partner-oauth").get("Connections", [])
    if not found:
        found = events.list_connections().get("Connections", [])
    return str(found[0]["ConnectionArn"])


def _create_machine(sfn: Any, name: str, definition: str) -> Any:
    role = f"arn:aws:iam::{ACCOUNT_ID}:role/stepscope-sandbox-states"
    arn = sfn.create_state_machine(name=name, definition=definition, roleArn=role)[
        "stateMachineArn"
    ]
    region = region_of(arn)
    return _backend(region).describe_state_machine(arn)


# --- GetExecutionHistory pages -----------------------------------------------------------------


def _serve_history_pages(sfn: Any, endpoint_url: str, samples: list[str]) -> str:
    """Serve GetExecutionHistory pages (at most 1,000 events, as AWS) from cached JSON.

    moto's generic response serializer spends about 0.3 ms per event, so the sandbox took 0.3 s
    to serve a 1,000-event page. That time is added to ingest and floor alike and would flatter
    the ratio, so the bench serves the same events from a cache of their JSON, paging as AWS
    does. The events moto returns for `samples` are read before the switch; after it they must
    be identical, or the run stops.
    """
    expected = {arn: _all_events(endpoint_url, arn) for arn in samples}
    native_pages = _native_paging(sfn, samples[0])
    _install_fast_pages()
    for region in (REGION, RSS_REGION):
        for machine in _backend(region).state_machines:
            for execution in machine.executions:
                _encode(execution.exec_arn, execution.to_history_output()["events"])
    for arn, events in expected.items():
        if _all_events(endpoint_url, arn) != events:
            raise RuntimeError(f"the bench's history pages differ from moto's for {arn}")
    if native_pages:
        return "sandbox pages; served from the bench's cache (checked equal to moto)"
    return "bench pages (the sandbox returned whole histories); checked equal to moto"


def _native_paging(sfn: Any, arn: str) -> bool:
    return len(sfn.get_execution_history(executionArn=arn, maxResults=1)["events"]) <= 1


def _all_events(endpoint_url: str, arn: str) -> list[Any]:
    return [e for raw in _raw_pages(endpoint_url, arn) for e in json.loads(raw)["events"]]


# Execution ARN → its events as JSON, filled before anything is timed.
_ENCODED: dict[str, list[str]] = {}


def _encode(arn: str, events: list[dict[str, Any]]) -> list[str]:
    if arn not in _ENCODED or len(_ENCODED[arn]) != len(events):
        _ENCODED[arn] = [json.dumps(_wire(e), separators=(",", ":")) for e in events]
    return _ENCODED[arn]


def _install_fast_pages() -> None:
    from moto.stepfunctions.responses import StepFunctionResponse

    def get_execution_history(self: Any) -> str:
        arn = self._get_param("executionArn")
        encoded = _encode(arn, self.stepfunction_backend.get_execution_history(arn)["events"])
        if self._get_param("reverseOrder"):
            encoded = encoded[::-1]
        size = max(1, min(int(self._get_param("maxResults") or 0) or 100, MAX_PAGE))
        token = str(self._get_param("nextToken") or "")
        offset = int(token) if token.isdigit() else 0
        body = '{"events":[' + ",".join(encoded[offset : offset + size]) + "]"
        if offset + size < len(encoded):
            body += f',"nextToken":"{offset + size}"'
        return body + "}"

    setattr(StepFunctionResponse, "get_execution_history", get_execution_history)  # noqa: B010


def _wire(event: dict[str, Any]) -> dict[str, Any]:
    """One history event as the JSON protocol carries it (epoch-second timestamps)."""
    out = {k: (getattr(v, "value", v)) for k, v in event.items() if v is not None}
    stamp = _parse_iso(event["timestamp"])
    out["timestamp"] = round(stamp.timestamp(), 3)
    return out


# --- the classify corpus -----------------------------------------------------------------------


def write_corpus(world: World, directory: Path) -> Path:
    """Raw GetExecutionHistory pages, as served, of every template and one long history."""
    chosen = world.executions[: len(world.templates)]
    chosen += ([e for e in world.executions if e.long] or [world.rss_execution])[:1]
    histories_ = [
        {
            "arn": e.arn,
            "definition": world.definitions.get(e.machine_arn, ""),
            "events": e.events,
            "pages": list(_raw_pages(world.endpoint_url, e.arn)),
        }
        for e in chosen
    ]
    path = directory / "corpus.json"
    path.write_text(json.dumps({"histories": histories_}), encoding="utf-8")
    return path


def _raw_pages(endpoint_url: str, arn: str) -> Iterator[str]:
    """The response bodies exactly as the sandbox sends them (no SDK parsing)."""
    region = region_of(arn)
    session = requests.Session()
    token: str | None = None
    for _ in range(100):  # 25,000 events / 1,000 per page, with room to spare
        body: dict[str, Any] = {"executionArn": arn, "maxResults": MAX_PAGE}
        if token:
            body["nextToken"] = token
        response = session.post(
            endpoint_url,
            data=json.dumps(body),
            headers={
                "X-Amz-Target": "AWSStepFunctions.GetExecutionHistory",
                "Content-Type": "application/x-amz-json-1.0",
                # moto reads the account from the access key; it does not check signatures.
                "Authorization": (
                    f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/20260101/{region}/states/"
                    "aws4_request, SignedHeaders=host, Signature=0"
                ),
            },
            timeout=60,
        )
        response.raise_for_status()
        yield response.text
        token = response.json().get("nextToken")
        if not token:
            return
    raise RuntimeError(f"{arn}: more than 100 history pages")


def temp_dir() -> tempfile.TemporaryDirectory[str]:
    return tempfile.TemporaryDirectory(prefix="stepscope-bench-")
