"""Replay one HTTP attempt through TestState: the plan, the queued request, the task's work.

Nothing unredacted is kept between the confirm page and the call. The state's input at that
attempt (its TaskStateEntered event) and the state machine's definition are read again from
AWS each time, by the confirm page to show them (redacted) and by the call to send them. What
the audit row keeps is the redacted request; the user's edits are kept in that redacted form
too, and each value the user left as shown (a `[redacted:…]` marker included) is taken from
AWS's fresh copy at call time, so a secret never has to be stored to be sent.

A replay that reveals secrets runs in the confirming request, not in a task (docs/security.md):
its answer is shown once in that response and only the redacted form is stored.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.utils import timezone

from connections.aws import AwsApi, AwsError
from connections.aws.operator import NoOperatorRoleError, OperatorApi, TestStateResult
from connections.models import AwsAccount, Connection
from executions.history import decode_assigned
from executions.models import HttpAttempt
from executions.redaction import Redactor, default_redactor
from operations.choices import ActionKind, ActionOutcome
from operations.models import OperatorAction
from operations.redrive import claimable
from operations.replay_result import as_dict

INSPECTION_LEVEL = "TRACE"
# AWS answers these when the request itself is refused (no partner was called).
REFUSAL_CODES = frozenset(
    {"AccessDeniedException", "ValidationException", "InvalidDefinition", "InvalidExecutionInput"}
)
log = logging.getLogger(__name__)


class ReplayProblemError(Exception):
    """Why this attempt cannot be replayed now, in words for the page."""


@dataclass(frozen=True)
class Plan:
    """What TestState will be sent, as AWS has it now (unredacted: never stored)."""

    definition: dict[str, Any]
    state_name: str  # "" when the state is nested: then the state alone is the definition
    state: dict[str, Any]
    state_input: Any
    role_arn: str
    redactor: Redactor = field(repr=False)
    # The workflow variables assigned before the attempt (TestState's `variables`).
    variables: dict[str, Any] = field(default_factory=dict, repr=False)
    attempt: HttpAttempt | None = field(default=None, repr=False)

    @property
    def arguments_key(self) -> str:
        """Where the call is written: JSONata `Arguments` or JSONPath `Parameters`."""
        return "Arguments" if "Arguments" in self.state else "Parameters"


@dataclass(frozen=True)
class Edits:
    """What the user changed on the confirm page, as they typed it (seen redacted)."""

    state_input: Any = None
    arguments: Any = None
    mock: bool = False


def _find_state(states: Any, name: str) -> dict[str, Any] | None:
    if not isinstance(states, dict):
        return None
    if isinstance(states.get(name), dict):
        return dict(states[name])
    for state in states.values():
        if not isinstance(state, dict):
            continue
        branches = state.get("Branches")
        nested = [
            state.get("ItemProcessor"),
            state.get("Iterator"),
            *(branches if isinstance(branches, list) else []),
        ]
        for machine in nested:
            found = _find_state(machine.get("States") if isinstance(machine, dict) else None, name)
            if found is not None:
                return found
    return None


def redactor_for(attempt: HttpAttempt, definition: Any) -> Redactor:
    """The default redactor plus the secret parameter names of the attempt's connection and
    of every connection the definition names (an edit may point at another one)."""
    text = json.dumps(definition)
    arns = {attempt.connection_arn} | {
        c.arn for c in Connection.objects.filter(account_id=attempt.account_id) if c.arn in text
    }
    names = [n for c in Connection.objects.filter(arn__in=arns) for n in c.secret_parameter_names]
    return default_redactor().with_secret_names(names)


class _HistoryScan:
    """One pass over the history up to the attempt: the input of its TaskStateEntered and the
    variables assigned before it (each *StateExited's `assignedVariables`, later ones win)."""

    def __init__(self, attempt: HttpAttempt) -> None:
        self.attempt = attempt
        self.entered: dict[str, Any] | None = None
        self.variables: dict[str, Any] = {}
        self._pending: dict[str, Any] = {}  # assigned after the latest entry seen so far

    @property
    def limit(self) -> int:
        return self.attempt.entered_event_id or self.attempt.key_event_id

    def see(self, event: dict[str, Any]) -> bool:
        """Take one event; False once past the attempt (nothing later matters)."""
        event_id = event.get("id")
        if not isinstance(event_id, int) or event_id > self.limit:
            return not isinstance(event_id, int)
        kind = str(event.get("type", ""))
        if kind.endswith("StateExited"):
            assigned = (event.get("stateExitedEventDetails") or {}).get("assignedVariables")
            if isinstance(assigned, dict):
                self.variables.update({str(k): decode_assigned(v) for k, v in assigned.items()})
        elif kind.endswith("StateEntered"):
            details = event.get("stateEnteredEventDetails") or {}
            wanted = self.attempt.entered_event_id
            if event_id == wanted or (
                wanted is None and details.get("name") == self.attempt.state_name
            ):
                self.entered = details  # by id, or the latest entry before the call
        return event_id < self.limit

    def read(self, api: AwsApi) -> tuple[Any, dict[str, Any]]:
        for page in api.history_pages(self.attempt.execution.arn):
            if not all([self.see(event) for event in page.events]):
                break
        if self.entered is None:
            raise ReplayProblemError(
                "AWS's history no longer has the event where this state was entered."
            )
        if "input" not in self.entered:
            raise ReplayProblemError(
                "AWS's history does not include this state's input (data omitted)."
            )
        try:
            return json.loads(str(self.entered["input"])), self.variables
        except ValueError as exc:
            raise ReplayProblemError("The state's input in AWS's history is not JSON.") from exc


def read_plan(attempt: HttpAttempt) -> Plan:
    """The definition and the state's input, read from AWS with the reader's role now."""
    machine = attempt.execution.state_machine
    account = AwsAccount.objects.get(pk=attempt.account_id)
    api = AwsApi(account, machine.region)
    try:
        detail = api.describe_state_machine(machine.arn)
        state_input, variables = _HistoryScan(attempt).read(api)
    except AwsError as exc:
        raise ReplayProblemError(
            f"AWS could not be asked: {default_redactor().text(str(exc))}"
        ) from exc
    if detail.definition is None:
        raise ReplayProblemError(f"The definition cannot be read: {detail.definition_error}")
    try:
        definition = json.loads(detail.definition)
    except ValueError as exc:
        raise ReplayProblemError("The state machine's definition is not JSON.") from exc
    states = definition.get("States") if isinstance(definition, dict) else None
    top = isinstance(states, dict) and isinstance(states.get(attempt.state_name), dict)
    state = _find_state(states, attempt.state_name)
    if state is None:
        raise ReplayProblemError(f"The definition has no state named {attempt.state_name!r} now.")
    return Plan(
        definition=definition,
        state_name=attempt.state_name if top else "",
        state=state,
        state_input=state_input,
        variables=variables,
        role_arn=detail.role_arn,
        redactor=redactor_for(attempt, definition),
        attempt=attempt,
    )


def restored(edited: Any, original: Any, redactor: Redactor) -> Any:
    """The user's edit with each part they left as shown taken from `original` (AWS's fresh,
    unredacted copy): a redacted value left alone is sent as it really is."""
    if redactor.value(original) == edited:
        return original
    if isinstance(edited, dict) and isinstance(original, dict):
        shown = redactor.value(original)
        return {
            key: (
                original[key]
                if key in original and shown.get(key) == value
                else restored(value, original[key], redactor)
                if key in original
                else value
            )
            for key, value in edited.items()
        }
    if isinstance(edited, list) and isinstance(original, list):
        return [
            restored(value, original[i], redactor) if i < len(original) else value
            for i, value in enumerate(edited)
        ]
    return edited


def context_of(attempt: HttpAttempt, state: dict[str, Any]) -> str:
    """TestState's `context` when the state reads `$$` (the context object), as the execution
    had it; "" otherwise (AWS then makes one up)."""
    if "$$" not in json.dumps(state):
        return ""
    execution = attempt.execution
    machine = execution.state_machine
    entered = attempt.scheduled_at or attempt.occurred_at
    return json.dumps(
        {
            "Execution": {
                "Id": execution.arn,
                "Name": execution.name,
                "StartTime": execution.start_date.isoformat(),
                "RedriveCount": execution.redrive_count,
            },
            "State": {
                "Name": attempt.state_name,
                "EnteredTime": entered.isoformat() if entered else "",
                "RetryCount": max(0, attempt.attempt_number - 1),
            },
            "StateMachine": {"Id": machine.arn, "Name": machine.name},
        }
    )


def mock_of(attempt: HttpAttempt) -> dict[str, Any] | None:
    """The attempt's stored failure as TestState's `mock`: Retry/Catch run, no partner call."""
    if not attempt.is_failure or not attempt.error:
        return None
    return {"errorOutput": {"error": attempt.error, "cause": attempt.cause}}


def _applied(plan: Plan, request: dict[str, Any]) -> tuple[str, str, Any]:
    """(definition, stateName, input) to send: the stored (redacted) request restored."""
    state_input = restored(request.get("input"), plan.state_input, plan.redactor)
    state = plan.state
    if "arguments" in request:
        key = plan.arguments_key
        state = {**state, key: restored(request["arguments"], state.get(key), plan.redactor)}
    if plan.state_name:
        definition = {**plan.definition, "States": {**plan.definition["States"]}}
        definition["States"][plan.state_name] = state
    else:
        definition = state
    return json.dumps(definition), plan.state_name, state_input


def shown_request(
    plan: Plan, edits: Edits, *, reveal: bool, mock: dict[str, Any] | None
) -> dict[str, Any]:
    """The TestState request as the page shows it and the audit keeps it: redacted."""
    redactor = plan.redactor
    context = context_of(plan.attempt, plan.state) if plan.attempt else ""
    shown: dict[str, Any] = {
        "stateName": plan.state_name or plan.state.get("Comment", "") or "(nested state)",
        "definition": redactor.value(plan.definition if plan.state_name else plan.state),
        "input": redactor.value(
            plan.state_input if edits.state_input is None else edits.state_input
        ),
        "inspectionLevel": INSPECTION_LEVEL,
        "revealSecrets": reveal,
    }
    if edits.arguments is not None:
        shown["arguments"] = redactor.value(edits.arguments)
    if plan.role_arn:
        shown["roleArn"] = plan.role_arn
    if context:
        shown["context"] = json.loads(context)
    if plan.variables:
        shown["variables"] = redactor.value(plan.variables)
    if mock is not None:
        shown["mock"] = mock
    return shown


def holds_typed_secret(plan: Plan, edits: Edits) -> bool:
    """Whether the user typed a secret of their own (not one left as shown): its redacted
    form, which is all a task could be given, would not send it."""
    redactor = plan.redactor
    pairs = (
        (edits.state_input, plan.state_input),
        (edits.arguments, plan.state.get(plan.arguments_key)),
    )
    return any(
        restored(redactor.value(typed), original, redactor) != restored(typed, original, redactor)
        for typed, original in pairs
        if typed is not None
    )


def typed_request(edits: Edits) -> dict[str, Any]:
    """The edits as typed, for a replay carried out in the request (never stored)."""
    typed: dict[str, Any] = {"input": edits.state_input}
    if edits.arguments is not None:
        typed["arguments"] = edits.arguments
    return typed


def queue_replay(
    user: Any,
    attempt: HttpAttempt,
    plan: Plan,
    edits: Edits,
    *,
    reveal: bool,
    in_request: bool = False,
) -> OperatorAction:
    """The audit row (PENDING, redacted request); a plain replay's task is queued on commit.
    A revealing one, or one `in_request` (edits holding a typed secret), is carried out by the
    caller (`carry_out_replay(..., in_request=True)`) in its own request."""
    from operations.tasks import replay_attempt

    mock = mock_of(attempt) if edits.mock else None
    token = uuid.uuid4().hex
    with transaction.atomic():
        action = OperatorAction.objects.create(
            kind=ActionKind.REVEAL if reveal and mock is None else ActionKind.REPLAY,
            user=user,
            username=user.get_username(),
            account_id=attempt.account_id,
            execution_id=attempt.execution_id,
            attempt=attempt,
            target=attempt.execution.arn,
            request=shown_request(plan, edits, reveal=reveal and mock is None, mock=mock),
            client_token=token,
        )
        if action.kind == ActionKind.REPLAY and not in_request:
            transaction.on_commit(lambda: replay_attempt.delay(action.pk))
    return action


@dataclass(frozen=True)
class Replayed:
    outcome: str
    # The answer as AWS gave it, for a revealing replay only: shown once, never stored.
    revealed: dict[str, Any] | None = None


def carry_out_replay(
    action_id: int,
    *,
    last_try: bool = True,
    in_request: bool = False,
    typed: dict[str, Any] | None = None,
) -> Replayed:
    """Claim the row, read the plan from AWS again, call TestState, store the redacted answer.
    A revealing row is carried out only `in_request` (never by a task: see the module);
    `typed` (in the request only) are the edits as the user typed them."""
    now = timezone.now()
    kinds = (ActionKind.REPLAY, ActionKind.REVEAL) if in_request else (ActionKind.REPLAY,)
    claimed = (
        OperatorAction.objects.filter(pk=action_id, kind__in=kinds)
        .filter(claimable(now))
        .update(outcome=ActionOutcome.RUNNING, claimed_at=now)
    )
    if not claimed:
        return Replayed("already finished")
    action = OperatorAction.objects.select_related(
        "attempt__execution__state_machine", "account"
    ).get(pk=action_id)
    attempt = action.attempt
    if attempt is None:
        return _finish(action, ActionOutcome.FAILED, "The attempt is no longer stored.")
    try:
        plan = read_plan(attempt)
        definition, state_name, state_input = _applied(plan, typed or action.request)
        api = OperatorApi(action.account, attempt.execution.state_machine.region)
        result = api.test_state(
            definition,
            state_name,
            json.dumps(state_input),
            role_arn=plan.role_arn,
            context=context_of(attempt, json.loads(definition)),
            variables=json.dumps(plan.variables) if plan.variables else "",
            inspection_level=INSPECTION_LEVEL,
            reveal_secrets=action.kind == ActionKind.REVEAL,
            mock=action.request.get("mock"),
        )
    except ReplayProblemError as exc:
        return _finish(action, ActionOutcome.FAILED, str(exc))
    except NoOperatorRoleError as exc:
        return _finish(action, ActionOutcome.FAILED, str(exc))
    except AwsError as exc:
        if exc.transient and not last_try:
            OperatorAction.objects.filter(pk=action_id).update(outcome=ActionOutcome.PENDING)
            raise
        outcome = ActionOutcome.REFUSED if exc.code in REFUSAL_CODES else ActionOutcome.FAILED
        return _finish(action, outcome, str(exc), request_id=exc.request_id)
    return _answered(action, plan.redactor, result)


def _answered(action: OperatorAction, redactor: Redactor, result: TestStateResult) -> Replayed:
    summary = f"TestState: {result.status or 'no status'}"
    if result.error:
        summary += f" ({result.error})"
    if result.next_state:
        summary += f" → {result.next_state}"
    # Only the summary is logged (error names and state names): never the answer itself.
    log.info("Replay %s of %s: %s", action.pk, action.target, summary)
    stored = as_dict(result, redactor)
    revealed = as_dict(result) if action.kind == ActionKind.REVEAL else None
    return _finish(
        action,
        ActionOutcome.SUCCEEDED,
        summary,
        request_id=result.request_id,
        result=stored,
        revealed=revealed,
    )


def _finish(
    action: OperatorAction,
    outcome: str,
    message: str,
    *,
    request_id: str = "",
    result: dict[str, Any] | None = None,
    revealed: dict[str, Any] | None = None,
) -> Replayed:
    OperatorAction.objects.filter(pk=action.pk, outcome=ActionOutcome.RUNNING).update(
        outcome=outcome,
        message=default_redactor().text(message)[:4000],
        aws_request_id=request_id[:128],
        result=result or {},
        finished_at=timezone.now(),
    )
    return Replayed(outcome, revealed)
