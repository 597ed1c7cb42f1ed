"""The moto plug-in: `arn:aws:states:::http:invoke` for moto 5.2.1's Step Functions interpreter.

Everything the sandbox changes inside moto is installed by `install()` and every moto name it
relies on is listed in `check_moto_internals()`, which runs first and fails loudly (naming what
moved) when moto is upgraded under us. The HTTP semantics follow
../shared/docs/aws-http-task-reference.md; docs/sandbox.md lists the deliberate differences.
"""

from __future__ import annotations

import importlib
import inspect
import json
import logging
import threading
from typing import Any, Final, cast

import moto

from sandbox import (
    aborts,
    clock,
    connectivity,
    eventbridge,
    executions,
    http_call,
    map_runs,
    redrive,
    test_state,
)
from sandbox.connectivity import invalid_connection_state, usable_connection
from sandbox.http_call import HttpCall, HttpTaskError

MOTO_VERSION: Final = "5.2.1"
DENY_TAG_KEY: Final = "stepscope:sandbox:deny"

# Name of every moto object the sandbox patches or calls into, by module.
_MOTO_INTERNALS: Final[dict[str, tuple[str, ...]]] = {
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.state_task_factory": (
        "state_task_service_for",
    ),
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service": (
        "StateTaskService",
        "StateTaskService._eval_execution",
        "StateTaskService._before_eval_execution",
        "StateTaskService._after_eval_execution",
        "StateTaskService._verify_size_quota",
        "StateTaskService._get_sfn_resource",
        "StateTaskService._get_sfn_resource_type",
    ),
    "moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name": (
        "CustomErrorName.__init__",
    ),
    "moto.stepfunctions.parser.asl.component.common.error_name.error_equals_decl": (
        "ErrorEqualsDecl._eval_body",
    ),
    "moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type": (
        "StatesErrorNameType.StatesRuntime",
        "StatesErrorNameType.StatesStatesDataLimitExceeded",
        "StatesErrorNameType.StatesALL",
    ),
    "moto.stepfunctions.parser.asl.eval.environment": ("Environment.is_running",),
    "moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.itemprocessor."
    "distributed_item_processor_worker": ("DistributedItemProcessorWorker._eval_job",),
    "moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration."
    "distributed_iteration_component": ("DistributedIterationComponent._map_run",),
    "moto.stepfunctions.parser.asl.eval.event.event_manager": (
        "EventManager.add_event",
        "EventManager.get_event_history",
    ),
    "moto.stepfunctions.parser.asl.component.eval_component": ("LOG",),
    "moto.stepfunctions.parser.asl.utils.encoding": ("to_json_str.__defaults__",),
    "moto.stepfunctions.parser.asl.eval.event.logging": ("is_logging_enabled_for",),
    "moto.stepfunctions.parser.models": (
        "StepFunctionsParserBackend.start_execution",
        "StepFunctionsParserBackend.describe_execution",
        "StepFunctionsParserBackend.list_executions",
        "stepfunctions_parser_backends",
    ),
    "moto.stepfunctions.parser.backend.execution": (
        "Execution.start",
        "Execution.stop",
        "Execution.status",
        "Execution._get_start_execution_worker_comm",
    ),
    "moto.stepfunctions.parser.backend.execution_worker": (
        "ExecutionWorker._execution_logic",
        "ExecutionWorker._get_evaluation_environment",
        "ExecutionWorker._get_evaluation_entrypoint",
    ),
    "moto.stepfunctions.parser.asl.eval.states": ("States.reset",),
    "moto.stepfunctions.parser.asl.utils.json_path": ("extract_json", "NoSuchJsonPathError"),
    "moto.iam.models": ("iam_backends",),
    "moto.stepfunctions.responses": (
        "StepFunctionResponse.create_state_machine",
        "StepFunctionResponse.list_state_machines",
        "StepFunctionResponse.describe_state_machine",
        "StepFunctionResponse.get_execution_history",
        "StepFunctionResponse.stop_execution",
        "StepFunctionResponse.describe_execution",
        "StepFunctionResponse.list_executions",
        "get_backend",
    ),
    "moto.events.models": ("Connection.describe", "Connection.describe_short", "events_backends"),
    "moto.events.responses": ("EventsHandler.list_connections", "EventsHandler.update_connection"),
    "moto.logs.models": ("logs_backends",),
    "moto.moto_server.threaded_moto_server": (
        "ThreadedMotoServer.stop",
        "ThreadedMotoServer.get_host_and_port",
    ),
    "moto.moto_server.werkzeug_app": ("DomainDispatcherApplication", "create_backend_app"),
    "moto.core.config": ("default_user_config",),
    "moto.core.responses": ("ActionResult",),
    "moto.stepfunctions.parser.api": ("InvalidToken",),
    **aborts.MOTO_INTERNALS,
}
# Keyword arguments sandbox.executions passes to moto's parser Execution.
_EXECUTION_ARGUMENTS: Final = frozenset(
    [
        "name",
        "sm_type",
        "role_arn",
        "exec_arn",
        "account_id",
        "region_name",
        "state_machine",
        "start_date",
        "cloud_watch_logging_session",
        "input_data",
        "trace_header",
        "activity_store",
    ]
)

_installed = False
_install_lock = threading.Lock()


class MotoInternalsMovedError(RuntimeError):
    """moto no longer has the shape this plug-in was written against."""


def check_moto_internals() -> None:
    """Raise MotoInternalsMovedError unless every moto name the sandbox uses is where we expect."""
    problems = [] if moto.__version__ == MOTO_VERSION else [f"moto=={moto.__version__}"]
    for module_name, names in _MOTO_INTERNALS.items():
        try:
            module: Any = importlib.import_module(module_name)
        except ImportError as exc:
            problems.append(f"{module_name} ({exc})")
            continue
        problems.extend(f"{module_name}.{n}" for n in names if _resolve(module, n) is None)
    problems.extend(_execution_signature_problems())
    if problems:
        raise MotoInternalsMovedError(
            f"sandbox/http_task.py is written against moto=={MOTO_VERSION}; "
            f"missing or changed: {', '.join(problems)}. Pin moto back or port the plug-in."
        )


def _execution_signature_problems() -> list[str]:
    from moto.stepfunctions.parser.backend.execution import Execution

    missing = _EXECUTION_ARGUMENTS - set(inspect.signature(Execution.__init__).parameters)
    return [f"Execution.__init__({name}=...)" for name in sorted(missing)]


def install(http_timeout_seconds: float | None = None) -> None:
    """Enable moto's interpreter and add HTTP Tasks, connections, logging and Express to it.

    Idempotent. The HTTP time cap is process-wide; it is changed only when given.
    """
    global _installed
    if http_timeout_seconds is not None:
        http_call.configure(http_timeout_seconds)
    with _install_lock:
        if _installed:
            return
        check_moto_internals()
        from moto.core.config import default_user_config
        from moto.stepfunctions.parser.asl.component import eval_component
        from moto.stepfunctions.parser.asl.utils import encoding

        default_user_config["stepfunctions"]["execute_state_machine"] = True
        # History strings (parameters, input, output) are compact JSON on AWS.
        encoding.to_json_str.__defaults__ = ((",", ":"),)
        # The interpreter logs every task failure at ERROR with a page-long repr; failures are
        # the sandbox's business, so keep them out of the console.
        logging.getLogger(eval_component.__name__).setLevel(logging.CRITICAL)
        _install_task_service()
        aborts.install(_patch)
        _install_error_names()
        _install_executions()
        _install_connections()
        eventbridge.install_stable_connection_ids()
        _installed = True


def _patch(owner: Any, name: str, replacement: Any) -> None:
    """Replace `owner.name` inside moto (every such name is listed in _MOTO_INTERNALS)."""
    setattr(owner, name, replacement)


def _resolve(module: Any, dotted: str) -> Any:
    target = module
    for part in dotted.split("."):
        target = getattr(target, part, None)
        if target is None:
            return None
    return target


# --- the task service and the patches ------------------------------------------------------


def _install_task_service() -> None:
    from moto.stepfunctions.parser.api import HistoryEventType, TaskFailedEventDetails
    from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import (
        CustomErrorName,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.error_name import ErrorName
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
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service import (
        StateTaskService,
    )
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

    factory: Any = importlib.import_module(
        "moto.stepfunctions.parser.asl.component.state.exec.state_task.state_task_factory"
    )

    class HttpErrorName(ErrorName):
        """States.Http.* — reserved-prefix names that States.TaskFailed still matches."""

    def error_name_of(error: str) -> ErrorName:
        if error == "States.Runtime":
            return StatesErrorName(typ=StatesErrorNameType.StatesRuntime)
        if error.startswith("States."):
            return HttpErrorName(error_name=error)
        return CustomErrorName(error_name=error)

    class StateTaskServiceHttp(StateTaskService):
        """`arn:aws:states:::http:invoke` (request-response only, as on AWS)."""

        _PARAMETERS: Final = {
            "invoke": {
                "ApiEndpoint",
                "Method",
                "Authentication",
                "InvocationConfig",
                "Headers",
                "QueryParameters",
                "RequestBody",
                "Transform",
            }
        }

        def _get_supported_parameters(self) -> set[str] | None:
            return self._PARAMETERS.get(self.resource.api_action.lower())

        def _from_error(self, env: Any, ex: Exception) -> Any:
            if isinstance(ex, FailureEventException | TimeoutError):
                return super()._from_error(env, ex)
            if not isinstance(ex, HttpTaskError) and _call_succeeded(env):
                # The call answered 2xx, then ResultSelector/ResultPath failed. On AWS that is
                # the state failing (States.Runtime, no TaskFailed, no Retry or Catch): raising
                # here leaves moto's retry loop the way an uncaught failure does.
                raise FailureEventException(
                    failure_event=FailureEvent(
                        env=env,
                        error_name=StatesErrorName(typ=StatesErrorNameType.StatesRuntime),
                        event_type=HistoryEventType.ExecutionFailed,
                        event_details=cast(Any, EventDetails)(
                            taskFailedEventDetails=TaskFailedEventDetails(
                                error="States.Runtime", cause=str(ex)
                            )
                        ),
                    )
                ) from ex
            if not isinstance(ex, HttpTaskError):
                # e.g. a Parameters path that is not in the input; moto would report it
                # without the resource fields AWS always sets on TaskFailed.
                ex = HttpTaskError("States.Runtime", str(ex))
            details = TaskFailedEventDetails(
                error=ex.error,
                cause=ex.cause,
                resource=self._get_sfn_resource(),
                resourceType=self._get_sfn_resource_type(),
            )
            return FailureEvent(
                env=env,
                error_name=error_name_of(ex.error),
                event_type=HistoryEventType.TaskFailed,
                event_details=cast(Any, EventDetails)(taskFailedEventDetails=details),
            )

        def _eval_service_task(
            self, env, resource_runtime_part, normalised_parameters, state_credentials
        ):
            region = resource_runtime_part.region
            call = HttpCall.from_parameters(normalised_parameters)
            connection_arn = connection_arn_of(normalised_parameters)
            connection = None
            execution_arn = clock.execution_arn_of(env)
            if connection_arn:
                connection = _usable_connection(env, connection_arn)
                try:
                    with clock.backdating(connection, execution_arn):
                        auth = eventbridge.auth_headers(connection, region)
                except eventbridge.ConnectionNotAuthorizedError as exc:
                    raise invalid_connection_state() from exc
                call = call.with_connection(eventbridge.invocation_parameters(connection), auth)
            response, body = http_call.send(call, region)
            if connection is not None:
                with clock.backdating(connection, execution_arn):
                    eventbridge.observe_response(connection, response.status_code)
            if not 200 <= response.status_code < 300:
                raise HttpTaskError(
                    f"States.Http.StatusCode.{response.status_code}",
                    http_call.status_text(response),
                )
            env.stack.append(http_call.task_output(response, body))

        def _before_eval_execution(self, env, *args: Any, **kwargs: Any) -> None:
            # A sibling's failure may have cut this branch off already: then nothing is recorded.
            schedule = super()._before_eval_execution
            aborts.call_scheduled(env, lambda: schedule(env, *args, **kwargs))

        def _after_eval_execution(self, env, *args: Any, **kwargs: Any) -> None:
            # TimeoutSeconds already reported TaskTimedOut, or a sibling's failure aborted the
            # call: a late answer must not add events.
            record = super()._after_eval_execution
            aborts.call_answered(env, lambda: record(env, *args, **kwargs))

    original = factory.state_task_service_for

    def state_task_service_for(service_name: str) -> Any:
        if service_name == "http":
            return StateTaskServiceHttp()
        return original(service_name=service_name)

    _patch(factory, "state_task_service_for", state_task_service_for)


def _call_succeeded(env: Any) -> bool:
    """Whether the newest event of this state's attempt is its TaskSucceeded."""
    last = env.event_history_context.last_published_event_id
    for event in reversed(env.event_manager.get_event_history()):
        if event.get("id") == last:
            kind = event.get("type")
            return str(getattr(kind, "value", kind)) == "TaskSucceeded"
    return False


def connection_arn_of(parameters: dict[str, Any]) -> str | None:
    for block in ("InvocationConfig", "Authentication"):
        arn = (parameters.get(block) or {}).get("ConnectionArn")
        if arn:
            return str(arn)
    return None


def _usable_connection(env: Any, connection_arn: str) -> Any:
    state_machine_arn = env.states.context_object.context_object_data["StateMachine"]["Id"]
    return usable_connection(
        connection_arn, denied=_tag(state_machine_arn, DENY_TAG_KEY) == "connection"
    )


def _tag(resource_arn: str, key: str) -> str | None:
    from moto.stepfunctions.responses import get_backend

    parts = resource_arn.split(":")
    backend = get_backend(parts[4], parts[3])
    for tag in backend.list_tags_for_resource(resource_arn).get("tags", []):
        if tag.get("key") == key:
            return str(tag.get("value"))
    return None


def _install_error_names() -> None:
    """States.Http.* may be named in ErrorEquals; States.ALL skips Runtime and DataLimitExceeded."""
    from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import (
        CustomErrorName,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.error_equals_decl import (
        ErrorEqualsDecl,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.error_name import ErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import (
        StatesErrorName,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
        StatesErrorNameType,
    )

    original_init = CustomErrorName.__init__

    def custom_error_name_init(self: Any, error_name: str | None) -> None:
        if error_name is not None and error_name.startswith("States.Http."):
            ErrorName.__init__(self, error_name=error_name)
        else:
            original_init(self, error_name)

    terminal = {
        StatesErrorNameType.StatesRuntime,
        StatesErrorNameType.StatesStatesDataLimitExceeded,
    }
    states_all = StatesErrorName(typ=StatesErrorNameType.StatesALL)
    original_eval = ErrorEqualsDecl._eval_body

    def eval_body(self: Any, env: Any) -> None:
        error_name = env.stack[-1]
        if (
            states_all in self.error_names
            and isinstance(error_name, StatesErrorName)
            and error_name.typ in terminal
        ):
            env.stack.pop()
            env.stack.append(False)
            return
        original_eval(self, env)

    _patch(CustomErrorName, "__init__", custom_error_name_init)
    _patch(ErrorEqualsDecl, "_eval_body", eval_body)


def _install_executions() -> None:
    from moto.core.responses import ActionResult
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend
    from moto.stepfunctions.responses import StepFunctionResponse

    def start_execution(
        self: Any,
        state_machine_arn: str,
        name: Any = None,
        execution_input: Any = None,
        trace_header: Any = None,
    ) -> Any:
        return executions.start_execution(
            self, state_machine_arn, name, execution_input, trace_header
        )

    original_list = StepFunctionsParserBackend.list_executions

    def list_executions(self: Any, state_machine_arn: str, *args: Any, **kwargs: Any) -> Any:
        if executions.is_express(self.describe_state_machine(state_machine_arn)):
            raise executions.StateMachineTypeNotSupportedError()
        return original_list(self, state_machine_arn, *args, **kwargs)

    original_create = StepFunctionResponse.create_state_machine

    def create_state_machine(self: Any) -> Any:
        result = original_create(self)
        if self._get_param("type") == executions.EXPRESS:
            arn = cast(dict[str, str], result.result)["stateMachineArn"]
            executions.mark_express(self.stepfunction_backend.describe_state_machine(arn))
        return result

    original_list_machines = StepFunctionResponse.list_state_machines

    def list_state_machines(self: Any) -> Any:
        # AWS lists the type of each state machine (STANDARD or EXPRESS); moto leaves it out.
        result = original_list_machines(self)
        listing = cast(dict[str, Any], result.result)
        for item in listing["stateMachines"]:
            machine = self.stepfunction_backend.describe_state_machine(item["stateMachineArn"])
            item["type"] = machine.type
        return result

    original_describe_machine = StepFunctionResponse.describe_state_machine

    def describe_state_machine(self: Any) -> Any:
        # METADATA_ONLY: everything but the definition, which AWS answers as "{}" (moto ignores it).
        result = original_describe_machine(self)
        if self._get_param("includedData") == "METADATA_ONLY":
            cast(dict[str, Any], result.result)["definition"] = "{}"
        return result

    def get_execution_history(self: Any) -> Any:
        arn = self._get_param("executionArn")
        history = self.stepfunction_backend.get_execution_history(arn)
        return ActionResult(
            executions.history_page(
                clock.shifted_events(arn, history["events"]),
                self._get_int_param("maxResults"),
                bool(self._get_param("reverseOrder", False)),
                self._get_param("nextToken"),
                self._get_param("includeExecutionData", True) is not False,
            )
        )

    _patch(StepFunctionsParserBackend, "start_execution", start_execution)
    _patch(StepFunctionsParserBackend, "list_executions", list_executions)
    _patch(StepFunctionResponse, "create_state_machine", create_state_machine)
    _patch(StepFunctionResponse, "list_state_machines", list_state_machines)
    _patch(StepFunctionResponse, "describe_state_machine", describe_state_machine)
    _patch(StepFunctionResponse, "get_execution_history", get_execution_history)
    executions.install_stop(StepFunctionResponse)  # StopExecution keeps its error and cause
    # moto routes neither TestState nor RedriveExecution (nor DescribeExecution's redrive fields).
    test_state.install(StepFunctionResponse)
    redrive.install(StepFunctionResponse)
    map_runs.install(StepFunctionResponse)  # Distributed Map children (after redrive: it wraps)
    clock.install(StepFunctionResponse)  # planned pasts (the demo's day): stop dates


def _install_connections() -> None:
    from moto.events.models import Connection
    from moto.events.responses import EventsHandler

    def list_connections(self: Any) -> tuple[str, dict[str, Any]]:
        prefix = self._get_param("NamePrefix") or ""
        state = self._get_param("ConnectionState")
        items = [
            eventbridge.list_item(c)
            for c in self.events_backend.list_connections()
            if c.name.startswith(prefix) and (state is None or c.state == state)
        ]
        return json.dumps({"Connections": items}), self.response_headers

    def update_connection(self: Any) -> tuple[str, dict[str, Any]]:
        connection = _named_connection(self)
        auth = self._get_param("AuthParameters")
        connection.auth_parameters = eventbridge.merge_auth_parameters(
            connection.auth_parameters, auth
        )
        if self._get_param("Description") is not None:
            connection.description = self._get_param("Description")
        if self._get_param("AuthorizationType"):
            connection.authorization_type = self._get_param("AuthorizationType")
        eventbridge.authorize(connection)
        return json.dumps(eventbridge.describe_short(connection)), self.response_headers

    def deauthorize_connection(self: Any) -> tuple[str, dict[str, Any]]:
        connection = _named_connection(self)
        eventbridge.deauthorize(
            connection, "The connection was deauthorized by DeauthorizeConnection."
        )
        return json.dumps(eventbridge.describe_short(connection)), self.response_headers

    _patch(Connection, "describe", eventbridge.describe)
    _patch(Connection, "describe_short", eventbridge.describe_short)
    _patch(EventsHandler, "list_connections", list_connections)
    _patch(EventsHandler, "update_connection", update_connection)
    _patch(EventsHandler, "deauthorize_connection", deauthorize_connection)
    connectivity.install()  # private (VPC Lattice) and KMS-keyed connections, on top of these


def _named_connection(handler: Any) -> Any:
    from moto.events.exceptions import ResourceNotFoundException

    name = handler._get_param("Name")
    connection = handler.events_backend.connections.get(name)
    if connection is None:
        raise ResourceNotFoundException(f"Connection '{name}' does not exist.")
    return connection
