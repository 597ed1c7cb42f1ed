"""Distributed Map child executions, the way Step Functions runs them.

moto 5.2.1 runs a Distributed Map's items inline and drops their events: the parent gets
`MapRunStarted {mapRunArn}` and `MapRunSucceeded` even when every item failed, there is no child
execution to list or read, and ListExecutions with `mapRunArn` fails. Here each item is a child
execution, as on AWS (reference §8): its ARN names the Map Run's state machine and label
(`execution:MACHINE/LABEL:UUID`), its events (ExecutionStarted … the HTTP task's … ExecutionFailed
or ExecutionSucceeded) are its own history with ids from 1, and ListExecutions(mapRunArn),
DescribeExecution and GetExecutionHistory answer for it. A Map Run whose failed children exceed
the tolerated failure count (0 unless the definition says otherwise) ends with `MapRunFailed
{error: States.ExceedToleratedFailureThreshold}` and fails the parent with that error.

Children are kept in this process only (like moto's own executions) and are Standard: Express
children are not emitted.
"""

from __future__ import annotations

import datetime
import json
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any, Final

THRESHOLD_ERROR: Final = "States.ExceedToleratedFailureThreshold"
THRESHOLD_CAUSE: Final = "The specified tolerated failure threshold was exceeded"
_lock = threading.Lock()


@dataclass
class Child:
    """One child execution of a Map Run."""

    arn: str
    map_run_arn: str
    state_machine_arn: str  # the Map Run's own: `stateMachine:MACHINE/LABEL`
    start_date: datetime.datetime
    input: str
    status: str = "RUNNING"
    stop_date: datetime.datetime | None = None
    error: str | None = None
    cause: str | None = None
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.arn.rsplit(":", 1)[-1]

    def listed(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "executionArn": self.arn,
            "stateMachineArn": self.state_machine_arn,
            "name": self.name,
            "status": self.status,
            "startDate": self.start_date,
            "mapRunArn": self.map_run_arn,
        }
        if self.stop_date is not None:
            out["stopDate"] = self.stop_date
        return out

    def described(self) -> dict[str, Any]:
        out = {**self.listed(), "input": self.input, "redriveCount": 0}
        out["redriveStatus"] = "NOT_REDRIVABLE"
        out["redriveStatusReason"] = "Execution is a child of a Map Run: redrive its parent"
        if self.error is not None:
            out["error"] = self.error
        if self.cause is not None:
            out["cause"] = self.cause
        return out


_children: dict[str, Child] = {}  # by ARN
_by_run: dict[str, list[Child]] = {}


def child_arn(map_run_arn: str) -> str:
    head, _, _ = map_run_arn.rpartition(":")
    return f"{head.replace(':mapRun:', ':execution:', 1)}:{uuid.uuid4()}"


def child(arn: str) -> Child | None:
    with _lock:
        return _children.get(arn)


def children_of(map_run_arn: str) -> list[Child]:
    with _lock:
        return list(_by_run.get(map_run_arn, []))


def install(responses: Any) -> None:
    """Run each item as a child execution, enforce the failure threshold, and answer for the
    children in ListExecutions, DescribeExecution and GetExecutionHistory."""
    _install_children()
    _install_threshold()
    _install_responses(responses)
    _install_describe_map_run()


def _install_children() -> None:
    from moto.stepfunctions.parser.api import HistoryEventType
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.itemprocessor.distributed_item_processor_worker import (
        DistributedItemProcessorWorker,
    )
    from moto.stepfunctions.parser.asl.eval.event import event_detail
    from moto.stepfunctions.parser.asl.eval.event.event_manager import (
        EventHistoryContext,
        EventManager,
    )
    from moto.stepfunctions.parser.asl.eval.program_state import ProgramError, ProgramStopped

    # A TypedDict of every event's details, all required: built here with the one each needs.
    EventDetails: Any = event_detail.EventDetails  # noqa: N806
    original = DistributedItemProcessorWorker._eval_job

    def eval_job(self: Any, env: Any, job: Any) -> None:
        record = self._map_run_record
        map_run_arn = str(record.map_run_arn)
        item_input = json.dumps(job.job_input, separators=(",", ":"))
        started = datetime.datetime.now(tz=datetime.UTC)
        one = Child(
            child_arn(map_run_arn),
            map_run_arn,
            str(record.map_state_machine_arn),
            started,
            item_input,
        )
        with _lock:
            _children[one.arn] = one
            _by_run.setdefault(map_run_arn, []).append(one)
        # The child's own history: ids from 1, nothing shared with the parent's.
        env.event_manager = EventManager()
        env.event_history_context = EventHistoryContext.of_program_start()
        env.event_manager.add_event(
            context=env.event_history_context,
            event_type=HistoryEventType.ExecutionStarted,
            event_details=EventDetails(
                executionStartedEventDetails={
                    "input": item_input,
                    "inputDetails": {"truncated": False},
                    "roleArn": "",
                }
            ),
        )
        try:
            original(self, env, job)
        finally:
            _close(one, env, HistoryEventType, EventDetails, ProgramError, ProgramStopped)

    setattr(DistributedItemProcessorWorker, "_eval_job", eval_job)  # noqa: B010


def _close(
    one: Child,
    env: Any,
    event_types: Any,
    details: Any,
    program_error: Any,
    program_stopped: Any,
) -> None:
    state = env.program_state()
    context = env.event_history_context
    if isinstance(state, program_error) or getattr(env, "sandbox_item_failed", False):
        failure = dict(getattr(state, "error", None) or {})
        one.status, one.error, one.cause = "FAILED", failure.get("error"), failure.get("cause")
        env.event_manager.add_event(
            context=context,
            event_type=event_types.ExecutionFailed,
            event_details=details(
                executionFailedEventDetails={
                    k: v for k, v in failure.items() if k in ("error", "cause") and v is not None
                }
            ),
        )
    elif isinstance(state, program_stopped):
        one.status = "ABORTED"
        env.event_manager.add_event(
            context=context,
            event_type=event_types.ExecutionAborted,
            event_details=details(executionAbortedEventDetails={}),
        )
    else:
        one.status = "SUCCEEDED"
        output = json.dumps(env.states.get_input(), separators=(",", ":"))
        env.event_manager.add_event(
            context=context,
            event_type=event_types.ExecutionSucceeded,
            event_details=details(
                executionSucceededEventDetails={
                    "output": output,
                    "outputDetails": {"truncated": False},
                }
            ),
        )
    one.stop_date = datetime.datetime.now(tz=datetime.UTC)
    one.events = list(env.event_manager.get_event_history())


def _install_threshold() -> None:
    from moto.stepfunctions.parser.api import ExecutionFailedEventDetails, HistoryEventType
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
        FailureEvent,
        FailureEventException,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import (
        StatesErrorName,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
        StatesErrorNameType,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.distributed_iteration_component import (
        DistributedIterationComponent,
    )
    from moto.stepfunctions.parser.asl.eval.event import event_detail

    EventDetails: Any = event_detail.EventDetails  # noqa: N806 (see _install_children)

    original = DistributedIterationComponent._map_run

    def map_run(self: Any, env: Any, eval_input: Any) -> None:
        original(self, env, eval_input)
        record = eval_input.map_run_record
        ran = children_of(str(record.map_run_arn))
        failed = sum(1 for c in ran if c.status in ("FAILED", "ABORTED", "TIMED_OUT"))
        if not _exceeds(failed, len(ran), eval_input):
            return
        raise FailureEventException(
            failure_event=FailureEvent(
                env=env,
                error_name=StatesErrorName(
                    typ=StatesErrorNameType.StatesExceedToleratedFailureThreshold
                ),
                event_type=HistoryEventType.ExecutionFailed,
                event_details=EventDetails(
                    executionFailedEventDetails=ExecutionFailedEventDetails(
                        error=THRESHOLD_ERROR, cause=THRESHOLD_CAUSE
                    )
                ),
            )
        )

    setattr(DistributedIterationComponent, "_map_run", map_run)  # noqa: B010


def _exceeds(failed: int, total: int, eval_input: Any) -> bool:
    if not failed:
        return False
    count = int(getattr(eval_input, "tolerated_failure_count", 0) or 0)
    percentage = float(getattr(eval_input, "tolerated_failure_percentage", 0.0) or 0.0)
    if count and failed > count:
        return True
    if percentage and total and 100.0 * failed / total > percentage:
        return True
    return not count and not percentage


def _install_responses(responses: Any) -> None:
    from moto.core.responses import ActionResult

    from sandbox import executions

    original_list = responses.list_executions
    original_describe = responses.describe_execution
    original_history = responses.get_execution_history

    def list_executions(self: Any) -> Any:
        map_run_arn = self._get_param("mapRunArn")
        if not map_run_arn:
            return original_list(self)
        return ActionResult({"executions": [c.listed() for c in children_of(map_run_arn)]})

    def describe_execution(self: Any) -> Any:
        found = child(self._get_param("executionArn") or "")
        return ActionResult(found.described()) if found else original_describe(self)

    def get_execution_history(self: Any) -> Any:
        found = child(self._get_param("executionArn") or "")
        if found is None:
            return original_history(self)
        return ActionResult(
            executions.history_page(
                found.events,
                self._get_int_param("maxResults"),
                bool(self._get_param("reverseOrder", False)),
                self._get_param("nextToken"),
                self._get_param("includeExecutionData", True) is not False,
            )
        )

    responses.list_executions = list_executions
    responses.describe_execution = describe_execution
    responses.get_execution_history = get_execution_history


def _install_describe_map_run() -> None:
    """moto's DescribeMapRun asks every execution's interpreter for the run and fails (a 500)
    on an execution that has none: one copied from a template (the bench's world, the
    scenarios) or a child run here. Those are skipped; an unknown run is ResourceNotFound as
    moto's own AWS errors render it (the parser's exception of that name came back as a
    code-less error)."""
    from moto.stepfunctions.exceptions import ResourceNotFound
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    def describe_map_run(self: Any, map_run_arn: str) -> dict[str, Any]:
        for execution in self._get_executions():
            env = getattr(getattr(execution, "exec_worker", None), "env", None)
            record = env.map_run_record_pool_manager.get(map_run_arn) if env else None
            if record is not None:
                return record.describe()  # type: ignore[no-any-return]
        raise ResourceNotFound(map_run_arn)

    StepFunctionsParserBackend.describe_map_run = describe_map_run  # type: ignore[method-assign]
