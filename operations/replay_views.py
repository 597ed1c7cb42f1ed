"""The replay pages: the confirm page of one attempt (with "edit and replay") and the result.

Like the redrive pages: an attempt outside the user's accounts is a 404 before any permission
is asked; replaying needs operations.replay_attempt, revealing also operations.reveal_secrets.
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.views.decorators.http import require_http_methods

from connections.aws.operator import NoOperatorRoleError
from connections.models import with_account_but_no_secrets
from executions.models import HttpAttempt
from executions.web import render_page
from operations.choices import REPLAY_PERMISSION, REVEAL_PERMISSION, ActionKind
from operations.forms import ReplayForm
from operations.models import OperatorAction
from operations.replay import (
    Edits,
    Plan,
    ReplayProblemError,
    carry_out_replay,
    holds_typed_secret,
    mock_of,
    queue_replay,
    read_plan,
    redactor_for,
    shown_request,
    typed_request,
)
from operations.replay_result import replay_diffs


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


def _initial(request: HttpRequest, plan: Plan, attempt: HttpAttempt) -> dict[str, Any]:
    """The redacted input and arguments, or those of an earlier replay (`?from=<action>`)."""
    shown = shown_request(plan, Edits(), reveal=False, mock=None)
    initial = {
        "state_input": _pretty(shown["input"]),
        "arguments": _pretty(plan.redactor.value(plan.state.get(plan.arguments_key) or {})),
    }
    earlier = request.GET.get("from", "")
    if earlier.isdigit() and len(earlier) < 12:
        row = (
            OperatorAction.objects.readable_by(request.user)
            .filter(pk=int(earlier), attempt=attempt)
            .first()
        )
        if row is not None and isinstance(row.request, dict):
            initial["state_input"] = _pretty(row.request.get("input"))
            if "arguments" in row.request:
                initial["arguments"] = _pretty(row.request["arguments"])
    return initial


@login_required
@require_http_methods(["GET", "POST"])
def replay(request: HttpRequest, pk: int) -> HttpResponse:
    attempt = get_object_or_404(
        with_account_but_no_secrets(
            HttpAttempt.objects.visible_to(request.user).select_related(
                "execution__state_machine", "connection"
            )
        ),
        pk=pk,
    )
    if not request.user.has_perm(REPLAY_PERMISSION):
        raise PermissionDenied("Replaying needs the replay permission.")
    may_reveal = request.user.has_perm(REVEAL_PERMISSION)
    configure = ""
    if not attempt.account.has_operator_role:
        configure = str(NoOperatorRoleError(attempt.account.name))
    plan, problem = None, ""
    if not configure:
        try:
            plan = read_plan(attempt)
        except ReplayProblemError as exc:
            problem = str(exc)
    initial = _initial(request, plan, attempt) if plan else {}
    data = request.POST if request.method == "POST" else None
    form = ReplayForm(data, initial=initial, may_reveal=may_reveal)
    if request.method == "POST" and plan is not None and form.is_valid():
        mock = form.cleaned_data["mock"]
        if mock and mock_of(attempt) is None:
            form.add_error("mock", "Only a failed attempt has a stored failure to mock.")
        else:
            return _replay_now(request, attempt, plan, form, may_reveal)
    context = {
        "attempt": attempt,
        "execution": attempt.execution,
        "form": form,
        "plan": plan,
        "problem": problem,
        "configure": configure,
        "shown": _pretty(shown_request(plan, Edits(), reveal=False, mock=None)) if plan else "",
        "can_mock": mock_of(attempt) is not None,
    }
    status = 400 if request.method == "POST" else 200
    return render_page(request, "operations/replay.html", context, status=status)


def _replay_now(
    request: HttpRequest, attempt: HttpAttempt, plan: Plan, form: ReplayForm, may_reveal: bool
) -> HttpResponse:
    shown_arguments = plan.redactor.value(plan.state.get(plan.arguments_key) or {})
    arguments = form.cleaned_data["arguments"]
    edits = Edits(
        state_input=form.cleaned_data["state_input"],
        arguments=None if arguments in (None, shown_arguments) else arguments,
        mock=form.cleaned_data["mock"],
    )
    reveal = may_reveal and bool(form.cleaned_data.get("reveal"))
    # A secret the user typed can reach the call only through this request's memory.
    typed = typed_request(edits) if holds_typed_secret(plan, edits) else None
    action = queue_replay(
        request.user, attempt, plan, edits, reveal=reveal, in_request=typed is not None
    )
    if action.kind != ActionKind.REVEAL and typed is None:
        return HttpResponseRedirect(action.get_absolute_url())
    # Revealing (or sending a typed secret): the call is made here, and a revealed answer is
    # shown in this one response only.
    replayed = carry_out_replay(action.pk, in_request=True, typed=typed)
    row = OperatorAction.objects.select_related("account", "execution", "attempt").get(pk=action.pk)
    response = render_page(
        request, "operations/action.html", action_context(row, replayed.revealed)
    )
    response["Cache-Control"] = "no-store, private"
    return response


def action_context(row: OperatorAction, revealed: dict[str, Any] | None = None) -> dict[str, Any]:
    """The audit row's page; for a replay also its result (revealed once, else as stored) and
    the diffs against the original attempt and the endpoint's last success."""
    context: dict[str, Any] = {"action": row}
    if row.is_replay and row.result:
        attempt = row.attempt
        redactor = redactor_for(attempt, row.request) if attempt else None
        context["replay"] = {
            "result": revealed or row.result,
            "revealed": revealed is not None,
            "diffs": replay_diffs(row.result, attempt, redactor) if redactor else None,
        }
    return context
