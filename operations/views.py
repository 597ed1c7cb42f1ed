"""Operator pages: redrive one execution (dry run, then a confirmed POST) and the audit.

Permissions come through groups (operations.redrive_execution…) and apply only within the
accounts the user sees: an execution outside them is a 404 before any permission is asked.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.views.decorators.http import require_http_methods

from connections.models import with_account_but_no_secrets
from executions.models import Execution
from executions.web import bad_filters, is_htmx, render_page
from operations.choices import AUDIT_PERMISSION, REDRIVE_PERMISSION
from operations.forms import AuditFilterForm, RedriveConfirmForm
from operations.models import OperatorAction
from operations.redrive import dry_run, queue_redrive

AUDIT_ROWS = 200


@login_required
@require_http_methods(["GET", "POST"])
def redrive(request: HttpRequest, pk: int) -> HttpResponse:
    execution = get_object_or_404(
        with_account_but_no_secrets(
            Execution.objects.visible_to(request.user).select_related("state_machine")
        ),
        pk=pk,
    )
    if not request.user.has_perm(REDRIVE_PERMISSION):
        raise PermissionDenied("Redriving needs the redrive permission.")
    form = RedriveConfirmForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and execution.account.has_operator_role and form.is_valid():
        action = queue_redrive(request.user, execution)
        return HttpResponseRedirect(action.get_absolute_url())
    context = {
        "execution": execution,
        "machine": execution.state_machine,
        "form": form,
        "dry": dry_run(execution),
    }
    status = 400 if request.method == "POST" else 200
    return render_page(request, "operations/redrive.html", context, status=status)


@login_required
def audit(request: HttpRequest) -> HttpResponse:
    form = AuditFilterForm(request.GET)
    if not form.is_valid():
        return bad_filters(request, form)
    actions = OperatorAction.objects.readable_by(request.user).select_related("account")
    for name in ("kind", "outcome"):
        if form.cleaned_data[name]:
            actions = actions.filter(**{name: form.cleaned_data[name]})
    context = {
        "form": form,
        "actions": actions[:AUDIT_ROWS],
        "everyone": request.user.is_superuser or request.user.has_perm(AUDIT_PERMISSION),
    }
    return render_page(request, "operations/audit.html", context)


@login_required
def action(request: HttpRequest, pk: int) -> HttpResponse:
    row = get_object_or_404(
        OperatorAction.objects.readable_by(request.user).select_related("account", "execution"),
        pk=pk,
    )
    template = "operations/partials/action.html" if is_htmx(request) else "operations/action.html"
    return render_page(request, template, {"action": row})
