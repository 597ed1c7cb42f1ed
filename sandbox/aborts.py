"""What a failure ends, as AWS records it: siblings cut off, and nothing after the terminal event.

When a Parallel branch or an inline Map iteration fails, AWS ends every sibling whose call is
still in flight with a `TaskStateAborted` (for a Map iteration then a `MapIterationAborted`),
each linking (previousEventId) to the failure, before the Parallel/Map state's own
`…StateFailed` (reference §8, tests/fixtures/histories/siblings_cut_off.json). moto stops the
branches silently and lets Map iterations run on, so their late answers (or a `TaskFailed` of a
branch stopped before it scheduled its task) would land in the history. Here the fan-out, once
its first failure is known, stops each sibling under one lock that the HTTP Task also takes to
schedule a call and to record its answer (`call_scheduled` / `call_answered`), so a sibling is
either mid-call (it gets the aborted events) or not (it gets none), and everything the stopped
sibling would record afterwards is dropped.
"""

from __future__ import annotations

import datetime
import threading
from collections.abc import Callable, Iterator
from typing import Any, Final

_ITERATION: Final = "moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration."
# moto names this module relies on (checked with the rest in sandbox/http_task.py).
MOTO_INTERNALS: Final[dict[str, tuple[str, ...]]] = {
    "moto.stepfunctions.parser.asl.component.state.exec.state_parallel.branches_decl": (
        "BranchWorkerPool.on_terminated",
        "BranchWorkerPool.wait",
    ),
    "moto.stepfunctions.parser.asl.component.state.exec.state_parallel.branch_worker": (
        "BranchWorker.start",
    ),
    _ITERATION + "inline_iteration_component": ("InlineIterationComponent._eval_body",),
    "moto.stepfunctions.parser.asl.eval.environment": ("Environment.set_stop",),
    "moto.stepfunctions.parser.asl.eval.event.event_manager": ("EventHistoryContext",),
}

# Held while a call is scheduled or answered and while a fan-out cuts its siblings off.
_calls = threading.RLock()
_TERMINAL: Final = {
    "ExecutionSucceeded",
    "ExecutionFailed",
    "ExecutionAborted",
    "ExecutionTimedOut",
}


class CallCutOffError(Exception):
    """The branch was stopped before its task was scheduled: nothing is recorded for it."""


def call_scheduled(env: Any, schedule: Callable[[], None]) -> None:
    """Record TaskScheduled/TaskStarted (`schedule`) unless the branch was already cut off."""
    with _calls:
        if not env.is_running():
            raise CallCutOffError("cut off before the task was scheduled")
        schedule()
        env.sandbox_in_call = True


def call_answered(env: Any, record: Callable[[], None]) -> None:
    """Record the call's answer (`record`) unless a timeout or a sibling's failure ended it."""
    with _calls:
        env.sandbox_in_call = False
        if env.is_running():
            record()


def install(patch: Callable[[Any, str, Any], None]) -> None:
    _install_history_end(patch)
    _install_parallel(patch)
    _install_inline_map(patch)


def _frames(env: Any) -> Iterator[Any]:
    yield env
    for frame in list(getattr(env, "_frames", ())):
        yield from _frames(frame)


def _cut_off(sibling: Any, failure_id: int, map_iteration: dict[str, Any] | None) -> None:
    """Stop `sibling` and, if a call of it is in flight, record its abort linked to the failure."""
    from moto.stepfunctions.parser.api import HistoryEventType
    from moto.stepfunctions.parser.asl.eval.event.event_manager import EventHistoryContext

    frames = list(_frames(sibling))
    in_flight = any(getattr(frame, "sandbox_in_call", False) for frame in frames)
    sibling.set_stop(datetime.datetime.now(tz=datetime.UTC), None, None)
    for frame in frames:
        frame.event_history_context.sandbox_silenced = True
    if not in_flight:
        return
    manager = sibling.event_manager
    manager.add_event(EventHistoryContext(failure_id), HistoryEventType.TaskStateAborted)
    if map_iteration is not None:
        manager.add_event(
            EventHistoryContext(failure_id),
            HistoryEventType.MapIterationAborted,
            {"mapIterationAbortedEventDetails": map_iteration},
        )


def _install_parallel(patch: Callable[[Any, str, Any], None]) -> None:
    from moto.stepfunctions.parser.asl.component.state.exec.state_parallel.branch_worker import (
        BranchWorker,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_parallel.branches_decl import (
        BranchWorkerPool,
    )
    from moto.stepfunctions.parser.asl.eval.program_state import ProgramError

    original_start = BranchWorker.start
    original_on_terminated = BranchWorkerPool.on_terminated
    original_wait = BranchWorkerPool.wait

    def start(self: Any) -> None:
        # The pool learns its branches, to cut them off when one fails.
        comm = self._branch_worker_comm
        comm.sandbox_branches = [*getattr(comm, "sandbox_branches", ()), self.env]
        original_start(self)

    def on_terminated(self: Any, env: Any) -> None:
        if not self._termination_event.is_set() and isinstance(env.program_state(), ProgramError):
            self.sandbox_failed = getattr(self, "sandbox_failed", None) or env
        original_on_terminated(self, env)

    def wait(self: Any) -> None:
        original_wait(self)
        failed = getattr(self, "sandbox_failed", None)
        if self.get_exit_event_details() is None or failed is None:
            return
        failure_id = int(failed.event_history_context.source_event_id)
        with _calls:
            for branch in getattr(self, "sandbox_branches", ()):
                if branch is not failed:
                    _cut_off(branch, failure_id, None)

    patch(BranchWorker, "start", start)
    patch(BranchWorkerPool, "on_terminated", on_terminated)
    patch(BranchWorkerPool, "wait", wait)


def _install_inline_map(patch: Callable[[Any, str, Any], None]) -> None:
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
        FailureEventException,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.inline_iteration_component import (
        InlineIterationComponent,
    )

    original = InlineIterationComponent._eval_body

    def eval_body(self: Any, env: Any) -> None:
        name = getattr(env.stack[-1], "state_name", "") if env.stack else ""
        try:
            original(self, env)
        except FailureEventException:
            # The failed iteration's frame is closed by now, its events integrated into the
            # Map's (the source the MapStateFailed links to); every frame left is a sibling's.
            failure_id = int(env.event_history_context.source_event_id)
            with _calls:
                for worker in list(env._frames):
                    for job in list(worker._frames):
                        item = job.states.context_object.context_object_data.get("Map", {})
                        index = item.get("Item", {}).get("Index")
                        _cut_off(job, failure_id, {"name": name, "index": index})
            raise

    patch(InlineIterationComponent, "_eval_body", eval_body)


def _install_history_end(patch: Callable[[Any, str, Any], None]) -> None:
    """Nothing follows an execution's terminal event, as on AWS, nor a cut-off sibling's abort.

    When a Map iteration or Parallel branch fails uncaught, moto ends the execution while
    siblings are still running; their late (and malformed) events would land after
    ExecutionFailed.
    """
    from moto.stepfunctions.parser.asl.eval.event.event_manager import EventManager

    lock = threading.Lock()
    original_add = EventManager.add_event

    def add_event(self: Any, context: Any, event_type: Any, *args: Any, **kwargs: Any) -> int:
        with lock:
            if getattr(self, "sandbox_closed", False) or getattr(
                context, "sandbox_silenced", False
            ):
                return int(context.last_published_event_id)
            if str(getattr(event_type, "value", event_type)) == "ExecutionAborted":
                _without_empty_abort_details(kwargs)
            event_id = int(original_add(self, context, event_type, *args, **kwargs))
            if str(getattr(event_type, "value", event_type)) in _TERMINAL:
                self.sandbox_closed = True
            return event_id

    patch(EventManager, "add_event", add_event)


def _without_empty_abort_details(kwargs: dict[str, Any]) -> None:
    # StopExecution without error/cause: AWS records `executionAbortedEventDetails: {}`
    # (reference §8), moto empty strings.
    details = (kwargs.get("event_details") or {}).get("executionAbortedEventDetails")
    if isinstance(details, dict):
        for key in ("error", "cause"):
            if details.get(key) == "":
                del details[key]
