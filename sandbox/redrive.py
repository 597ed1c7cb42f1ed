"""RedriveExecution for Standard executions, and the redrive fields of DescribeExecution.

moto 5.2.1 has neither. A redrive re-runs the execution in moto's interpreter from the top-level
state that failed (a Map or Parallel state re-runs whole: AWS re-runs only the failed
iterations), with that state's input, on the execution's own history: ids continue and the
first new event is `ExecutionRedriven {redriveCount}`. Eligibility follows reference §7/§8: a
Standard execution that closed FAILED, TIMED_OUT or ABORTED within the last 14 days.

The clientToken is honoured as AWS documents it: the last 10 tokens that redrove an execution
answer the same redriveDate again, without a new redrive, for 15 minutes after their first use.
A worker killed after its call reached AWS sends the same token again and must not be refused.
"""

from __future__ import annotations

import datetime
import json
import threading
from typing import Any, Final, cast

from moto.core.exceptions import AWSError
from moto.stepfunctions.parser.api import (
    ExecutionRedrivenEventDetails,
    ExecutionStatus,
    HistoryEventType,
)
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
from moto.stepfunctions.parser.asl.eval.event.event_manager import EventHistoryContext
from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

REDRIVABLE_STATUSES: Final = frozenset({"FAILED", "TIMED_OUT", "ABORTED"})
REDRIVE_WINDOW: Final = datetime.timedelta(days=14)
TOKENS_KEPT: Final = 10
TOKEN_LIFETIME: Final = datetime.timedelta(minutes=15)
_lock = threading.Lock()


class ExecutionNotRedrivableError(AWSError):
    TYPE = "ExecutionNotRedrivable"
    STATUS = 400


def install(responses: Any) -> None:
    """Add RedriveExecution and the redrive fields of DescribeExecution to moto's responses."""
    from moto.core.responses import ActionResult

    original_describe = responses.describe_execution

    def describe_execution(self: Any) -> Any:
        result = original_describe(self)
        execution = self.stepfunction_backend.describe_execution(self._get_param("executionArn"))
        result.result.update(describe_fields(execution))
        return result

    def redrive_execution(self: Any) -> Any:
        arn = self._get_param("executionArn")
        execution = self.stepfunction_backend.describe_execution(arn)
        return ActionResult({"redriveDate": redrive(execution, self._get_param("clientToken"))})

    responses.describe_execution = describe_execution
    responses.redrive_execution = redrive_execution


def redrive_status(execution: Any) -> tuple[str, str | None]:
    """(redriveStatus, redriveStatusReason) as DescribeExecution answers them."""
    status = str(getattr(execution.status, "value", execution.status))
    if status not in REDRIVABLE_STATUSES:
        return "NOT_REDRIVABLE", f"Execution is {status} and cannot be redriven"
    stop = execution.stop_date
    if stop is not None and datetime.datetime.now(tz=datetime.UTC) - stop > REDRIVE_WINDOW:
        return "NOT_REDRIVABLE", "Execution can no longer be redriven: it closed over 14 days ago"
    if _resume_point(execution) is None:
        return "NOT_REDRIVABLE", "Execution failed before entering a state and cannot be redriven"
    return "REDRIVABLE", None


def describe_fields(execution: Any) -> dict[str, Any]:
    status, reason = redrive_status(execution)
    fields: dict[str, Any] = {
        "redriveCount": getattr(execution, "sandbox_redrive_count", 0),
        "redriveStatus": status,
    }
    if reason:
        fields["redriveStatusReason"] = reason
    if getattr(execution, "sandbox_redrive_date", None) is not None:
        fields["redriveDate"] = execution.sandbox_redrive_date
    return fields


def redrive(execution: Any, client_token: str | None = None) -> datetime.datetime:
    """Re-run a redrivable execution from its failed state; answers the redriveDate (the
    first answer again for a token that already redrove it)."""
    with _lock:
        now = datetime.datetime.now(tz=datetime.UTC)
        tokens: dict[str, tuple[datetime.datetime, datetime.datetime]]
        tokens = getattr(execution, "sandbox_redrive_tokens", {})
        if client_token and client_token in tokens:
            first_used, answered = tokens[client_token]
            if now - first_used <= TOKEN_LIFETIME:
                return answered
        status, reason = redrive_status(execution)
        if status != "REDRIVABLE":
            raise ExecutionNotRedrivableError(str(reason))
        state_name, state_input = _resume_point(execution) or ("", None)
        old_env = execution.exec_worker.env
        count = getattr(execution, "sandbox_redrive_count", 0) + 1
        if client_token:
            tokens[client_token] = (now, now)
            # Dicts keep insertion order: the oldest tokens go first.
            execution.sandbox_redrive_tokens = dict(list(tokens.items())[-TOKENS_KEPT:])
        execution.sandbox_redrive_count = count
        session = execution._cloud_watch_logging_session
        if session is not None:  # the redriven run's log lines carry its count
            session.redrive_count = count
        execution.sandbox_redrive_date = now
        execution.exec_status = ExecutionStatus.RUNNING
        execution.stop_date = None
        execution.error = execution.cause = None
        worker = _RedriveWorker(
            evaluation_details=execution.exec_worker._evaluation_details,
            exec_comm=execution._get_start_execution_worker_comm(),
            cloud_watch_logging_session=execution._cloud_watch_logging_session,
            activity_store=execution._activity_store,
        )
        worker.resume = (state_name, state_input, old_env.event_manager, count)
        execution.exec_worker = worker
        worker.start()
        return now


class _RedriveWorker(ExecutionWorker):
    resume: tuple[str, Any, Any, int]

    def _get_evaluation_entrypoint(self) -> Any:
        from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

        definition = json.loads(self._evaluation_details.state_machine_details.definition)
        definition["StartAt"] = self.resume[0]
        return AmazonStateLanguageParser.parse(json.dumps(definition))[0]

    def _execution_logic(self) -> None:
        _, state_input, event_manager, count = self.resume
        program = self._get_evaluation_entrypoint()
        env: Any = self._get_evaluation_environment()
        self.env = env
        env.event_manager = event_manager
        event_manager.sandbox_closed = False  # see http_task._install_history_end
        env.states.reset(state_input)
        # Invented links (reference "Uncertain" 10): ExecutionRedriven follows the old terminal
        # event, and the re-entered state follows ExecutionRedriven.
        context: EventHistoryContext = env.event_history_context
        context.source_event_id = int(event_manager.get_event_history()[-1]["id"])
        event_manager.add_event(
            context=context,
            event_type=HistoryEventType.ExecutionRedriven,
            # cast: moto's EventDetails TypedDict lacks the redrive key its history accepts.
            event_details=cast(Any, EventDetails)(
                executionRedrivenEventDetails=ExecutionRedrivenEventDetails(redriveCount=count)
            ),
        )
        program.eval(env)
        self._execution_communication.terminated()


def _resume_point(execution: Any) -> tuple[str, Any] | None:
    """The last top-level state entered, and its input."""
    worker = getattr(execution, "exec_worker", None)
    if worker is None or worker.env is None:
        return None
    definition = json.loads(execution.state_machine.definition)
    top_level = set(definition.get("States") or {})
    for event in reversed(worker.env.event_manager.get_event_history()):
        details = event.get("stateEnteredEventDetails")
        if details and details.get("name") in top_level:
            return str(details["name"]), json.loads(details.get("input") or "{}")
    return None
