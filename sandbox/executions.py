"""Starting executions in moto's interpreter the way Step Functions does.

moto 5.2.1's `StepFunctionsParserBackend.start_execution` deep-copies the state machine together
with its running executions (which fails on their locks from the second execution on), names
unnamed executions "None", ignores Express, and never passes a logging session. `start_execution`
replaces it, `history_page` adds the GetExecutionHistory options moto ignores, and
`stop_execution_of` keeps the error and cause StopExecution was given (moto drops both);
`sandbox.http_task.install()` does the wiring.
"""

from __future__ import annotations

import base64
import copy
import datetime
import json
import threading
import uuid
from typing import Any, cast

from moto.core.exceptions import AWSError
from moto.stepfunctions.exceptions import InvalidExecutionInput
from moto.stepfunctions.parser.backend.execution import Execution

from sandbox import clock, logs

EXPRESS = "EXPRESS"
_DEFAULT_PAGE = 100
_TOKEN_PREFIX = "sandbox-history:"
_EXECUTION_DATA_KEYS = frozenset({"input", "inputDetails", "output", "outputDetails"})
# Executions started in this process and not yet seen finished (for /_sandbox/executions).
_running: list[Execution] = []
_running_lock = threading.Lock()


class StateMachineTypeNotSupportedError(AWSError):
    TYPE = "StateMachineTypeNotSupported"
    STATUS = 400

    def __init__(self) -> None:
        super().__init__("This operation is not supported by this type of state machine")


def start_execution(
    backend: Any,
    state_machine_arn: str,
    name: str | None = None,
    execution_input: str | None = None,
    trace_header: str | None = None,
) -> Execution:
    """StepFunctionsParserBackend.start_execution, fixed (see module docstring)."""
    state_machine = backend.describe_state_machine(state_machine_arn)
    name = name or str(uuid.uuid4())
    backend._validate_name(name)
    input_data = "{}" if execution_input is None else execution_input
    existing = _idempotent_match(state_machine, name, input_data)
    if existing is not None:
        return existing
    try:
        json.loads(input_data)
    except ValueError as exc:
        raise InvalidExecutionInput(f"Invalid State Machine Execution Input: '{exc}'") from exc

    # The execution keeps the definition it started with; later updates must not reach it.
    snapshot = copy.copy(state_machine)
    snapshot.executions = []
    execution_arn = execution_arn_for(backend, state_machine, name)
    execution = Execution(
        name=name,
        sm_type=state_machine.sm_type,
        role_arn=state_machine.roleArn,
        exec_arn=execution_arn,
        account_id=backend.account_id,
        region_name=backend.region_name,
        state_machine=snapshot,
        # A planned past (sandbox.clock) starts now and reads as started that long ago.
        start_date=clock.back(datetime.datetime.now(tz=datetime.UTC), clock.shift_for_name(name)),
        # Duck-typed: implements what moto's EventManager calls on its own session class.
        cloud_watch_logging_session=cast(
            Any,
            logs.session_for(execution_arn, state_machine.name, state_machine.loggingConfiguration),
        ),
        input_data=input_data,
        trace_header=trace_header,
        activity_store={},
    )
    state_machine.executions.append(execution)
    with _running_lock:
        _running.append(execution)
    execution.start()
    return execution


def execution_arn_for(backend: Any, state_machine: Any, name: str) -> str:
    prefix = f"arn:{backend.partition}:states:{backend.region_name}:{backend.account_id}"
    if state_machine.sm_type == EXPRESS:
        return (
            f"{prefix}:express:{state_machine.name}:{name}:{clock.express_id(name) or uuid.uuid4()}"
        )
    return f"{prefix}:execution:{state_machine.name}:{name}"


def running_execution_arns() -> list[str]:
    """ARNs of executions (Standard and Express) still running in this process."""
    with _running_lock:
        _running[:] = [e for e in _running if e.exec_status is None or e.status == "RUNNING"]
        return [e.exec_arn for e in _running]


def history_page(
    events: list[dict[str, Any]],
    max_results: int | None,
    reverse_order: bool,
    next_token: str | None,
    include_execution_data: bool,
) -> dict[str, Any]:
    """One GetExecutionHistory page: maxResults (default 100), reverseOrder, nextToken,
    includeExecutionData, which moto ignores (it returns every event, oldest first)."""
    ordered = list(reversed(events)) if reverse_order else list(events)
    start = _token_offset(next_token, len(ordered)) if next_token else 0
    size = max_results or _DEFAULT_PAGE
    page = ordered[start : start + size]
    if not include_execution_data:
        page = [_without_execution_data(event) for event in page]
    out: dict[str, Any] = {"events": page}
    if start + size < len(ordered):
        out["nextToken"] = base64.urlsafe_b64encode(
            f"{_TOKEN_PREFIX}{start + size}".encode()
        ).decode()
    return out


def _token_offset(token: str, total: int) -> int:
    from moto.stepfunctions.parser.api import InvalidToken

    try:
        text = base64.urlsafe_b64decode(token.encode()).decode()
        offset = int(text.removeprefix(_TOKEN_PREFIX)) if text.startswith(_TOKEN_PREFIX) else -1
    except ValueError:
        offset = -1
    if not 0 <= offset <= total:
        raise InvalidToken()
    return offset


def _without_execution_data(event: dict[str, Any]) -> dict[str, Any]:
    out = dict(event)
    for key, value in event.items():
        if key.endswith("EventDetails") and isinstance(value, dict):
            out[key] = {k: v for k, v in value.items() if k not in _EXECUTION_DATA_KEYS}
    return out


def is_express(state_machine: Any) -> bool:
    return getattr(state_machine, "sm_type", None) == EXPRESS


def mark_express(state_machine: Any) -> None:
    state_machine.type = EXPRESS
    state_machine.sm_type = EXPRESS


def _idempotent_match(state_machine: Any, name: str, input_data: str) -> Execution | None:
    handle = getattr(state_machine, "_handle_name_input_idempotency", None)
    return handle(name, input_data) if handle else None


def stop_execution_of(
    backend: Any, execution_arn: str, error: str | None, cause: str | None
) -> datetime.datetime:
    """StopExecution as AWS does it: `ExecutionAborted` carries the caller's error and cause
    (none given: `executionAbortedEventDetails: {}`, reference §8). Returns the stop date."""
    execution = backend.describe_execution(execution_arn)  # ExecutionDoesNotExist, as AWS
    stop_date = datetime.datetime.now(tz=datetime.UTC)
    execution.stop(stop_date=stop_date, error=error or "", cause=cause or "")
    return stop_date


def install_stop(responses: Any) -> None:
    """Route StopExecution through `stop_execution` (moto's handler drops error and cause)."""
    from moto.core.responses import ActionResult

    def stop_execution(self: Any) -> Any:
        arn, error, cause = (self._get_param(k) for k in ("executionArn", "error", "cause"))
        return ActionResult(
            {"stopDate": stop_execution_of(self.stepfunction_backend, arn, error, cause)}
        )

    responses.stop_execution = stop_execution
