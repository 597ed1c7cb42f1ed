"""Helpers for the sandbox tests: AWS clients on the sandbox, builders, the history shape check."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from functools import cache
from typing import Any

import boto3
import botocore.session
from botocore.config import Config
from botocore.model import ListShape, Shape, StructureShape

from sandbox import ACCOUNT_ID

HTTP_INVOKE = "arn:aws:states:::http:invoke"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT_ID}:role/sandbox-tests"
TASK_EVENT_PREFIX = "Task"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def http_task(parameters: dict[str, Any], **fields: Any) -> dict[str, Any]:
    state = {"Type": "Task", "Resource": HTTP_INVOKE, "Parameters": parameters, **fields}
    state.setdefault("End", True)
    return state


def single_state(state: dict[str, Any], name: str = "Call") -> dict[str, Any]:
    return {"StartAt": name, "States": {name: state}}


@dataclass
class Execution:
    arn: str
    status: str
    describe: dict[str, Any]
    events: list[dict[str, Any]]  # raw wire JSON of GetExecutionHistory

    def of_type(self, event_type: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] == event_type]

    def types(self) -> list[str]:
        return [e["type"] for e in self.events]

    def details(self, event: dict[str, Any]) -> dict[str, Any]:
        return next(v for k, v in event.items() if k.endswith("EventDetails"))

    @property
    def last_task_failure(self) -> dict[str, Any]:
        failures = [e for e in self.events if e["type"] in ("TaskFailed", "TaskTimedOut")]
        return self.details(failures[-1])


class Aws:
    """boto3 clients on the sandbox plus builders for connections and state machines."""

    def __init__(self, endpoint_url: str, region: str = "us-east-1"):
        kwargs: dict[str, Any] = {
            "endpoint_url": endpoint_url,
            "region_name": region,
            "aws_access_key_id": "testing",
            "aws_secret_access_key": "testing",
            "config": Config(retries={"mode": "standard", "total_max_attempts": 1}),
        }
        self.region = region
        # Any: the tests pass plain strings and dicts where the stubs want literals.
        self.sfn: Any = boto3.client("stepfunctions", **kwargs)
        self.events: Any = boto3.client("events", **kwargs)
        self.logs: Any = boto3.client("logs", **kwargs)
        self._raw: dict[str, bytes] = {}
        self.sfn.meta.events.register(
            "after-call.stepfunctions.GetExecutionHistory", self._keep_raw_history
        )

    def _keep_raw_history(self, http_response: Any, **_: Any) -> None:
        self._raw["history"] = http_response.content

    def connection(
        self,
        auth_type: str = "BASIC",
        auth: dict[str, Any] | None = None,
        invocation: dict[str, Any] | None = None,
        name: str | None = None,
    ) -> str:
        params = dict(auth or {})
        if invocation:
            params["InvocationHttpParameters"] = invocation
        response = self.events.create_connection(
            Name=name or unique("conn"), AuthorizationType=auth_type, AuthParameters=params
        )
        return str(response["ConnectionArn"])

    def state_machine(
        self,
        definition: dict[str, Any],
        *,
        express: bool = False,
        logging: dict[str, Any] | None = None,
        tags: list[dict[str, str]] | None = None,
        name: str | None = None,
    ) -> str:
        kwargs: dict[str, Any] = {"type": "EXPRESS"} if express else {}
        if logging:
            kwargs["loggingConfiguration"] = logging
        if tags:
            kwargs["tags"] = tags
        response = self.sfn.create_state_machine(
            name=name or unique("sm"), definition=json.dumps(definition), roleArn=ROLE_ARN, **kwargs
        )
        return str(response["stateMachineArn"])

    def log_group(self) -> tuple[str, str]:
        name = f"/aws/vendedlogs/states/{unique('tests')}"
        self.logs.create_log_group(logGroupName=name)
        return name, f"arn:aws:logs:{self.region}:{ACCOUNT_ID}:log-group:{name}:*"

    def start(self, state_machine_arn: str, payload: Any = None) -> str:
        response = self.sfn.start_execution(
            stateMachineArn=state_machine_arn, name=unique("ex"), input=json.dumps(payload or {})
        )
        return str(response["executionArn"])

    def wait(self, execution_arn: str, timeout: float = 30.0) -> Execution:
        deadline = time.monotonic() + timeout
        while True:
            described = self.sfn.describe_execution(executionArn=execution_arn)
            if described["status"] != "RUNNING" or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        return Execution(execution_arn, described["status"], described, self.history(execution_arn))

    def execute(
        self, state_machine_arn: str, payload: Any = None, timeout: float = 30.0
    ) -> Execution:
        return self.wait(self.start(state_machine_arn, payload), timeout)

    def run_task(self, parameters: dict[str, Any], payload: Any = None, **fields: Any) -> Execution:
        return self.execute(
            self.state_machine(single_state(http_task(parameters, **fields))), payload
        )

    def history(self, execution_arn: str) -> list[dict[str, Any]]:
        """Raw GetExecutionHistory events, each checked against botocore's HistoryEvent."""
        self.sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)
        events = json.loads(self._raw["history"])["events"]
        problems = [p for event in events for p in history_event_problems(event)]
        assert not problems, problems
        return list(events)

    def log_records(self, group: str) -> list[dict[str, Any]]:
        records = []
        for page in self.logs.get_paginator("filter_log_events").paginate(logGroupName=group):
            records += [
                {**json.loads(e["message"]), "_stream": e["logStreamName"]} for e in page["events"]
            ]
        return records


class SuiteAws(Aws):
    """`Aws` in one suite's own region (so no other suite lists its machines) that deletes
    the state machines a test made, when the test ends (`delete_made`)."""

    def __init__(self, endpoint_url: str, region: str):
        super().__init__(endpoint_url, region)
        self.made: list[str] = []

    def state_machine(self, definition: dict[str, Any], **options: Any) -> str:
        arn = super().state_machine(definition, **options)
        self.made.append(arn)
        return arn

    def delete_made(self) -> None:
        for arn in self.made:
            self.sfn.delete_state_machine(stateMachineArn=arn)


@cache
def _history_event_shape() -> StructureShape:
    model = botocore.session.get_session().get_service_model("stepfunctions")
    shape = model.shape_for("HistoryEvent")
    assert isinstance(shape, StructureShape)
    return shape


def history_event_problems(event: dict[str, Any]) -> list[str]:
    """Differences between one raw history event and botocore's HistoryEvent model."""
    problems = _problems(event, _history_event_shape(), f"event {event.get('id')}")
    details = [k for k in event if k.endswith("EventDetails")]
    if len(details) > 1:
        problems.append(f"event {event.get('id')}: several detail members {details}")
    if str(event.get("type", "")).startswith(TASK_EVENT_PREFIX) and details:
        body = event[details[0]]
        if "resourceType" in body and (body["resourceType"], body.get("resource")) != (
            "http",
            "invoke",
        ):
            problems.append(
                f"event {event['id']}: task resource {body['resourceType']}/{body.get('resource')}"
            )
    return problems


def _problems(value: Any, shape: Shape, where: str) -> list[str]:
    kind = shape.type_name
    if kind == "structure":
        assert isinstance(shape, StructureShape)
        if not isinstance(value, dict):
            return [f"{where}: expected object, got {value!r}"]
        out = [f"{where}.{k}: not in model" for k in value if k not in shape.members]
        out += [f"{where}.{k}: required" for k in shape.required_members if k not in value]
        for key, member in shape.members.items():
            if key in value:
                out += _problems(value[key], member, f"{where}.{key}")
        return out
    if kind == "string":
        if not isinstance(value, str):
            return [f"{where}: expected string, got {type(value).__name__}"]
        out = []
        enum = getattr(shape, "enum", None)
        if enum and value not in enum:
            out.append(f"{where}: {value!r} not in enum")
        if "max" in shape.metadata and len(value) > shape.metadata["max"]:
            out.append(f"{where}: longer than {shape.metadata['max']}")
        return out
    if kind in ("long", "integer"):
        ok = isinstance(value, int) and not isinstance(value, bool)
        return (
            []
            if ok and value >= shape.metadata.get("min", 0)
            else [f"{where}: bad {kind} {value!r}"]
        )
    if kind == "boolean":
        return [] if isinstance(value, bool) else [f"{where}: expected boolean"]
    if kind == "timestamp":
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return [] if ok else [f"{where}: expected epoch seconds, got {value!r}"]
    if kind == "list":
        if not isinstance(value, list) or not isinstance(shape, ListShape):
            return [f"{where}: expected list"]
        return [
            p
            for i, item in enumerate(value)
            for p in _problems(item, shape.member, f"{where}[{i}]")
        ]
    return []
