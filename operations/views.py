"""Operator pages: redrive one execution (dry run, then a confirmed POST) and the audit.

Permissions come through groups (operations.redrive_execution…) and apply only within the
accounts the user sees: an execution outside them is a 404 before any permission is asked.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.views.decorators.http import require_http_methods, require_POST

from connections.models import AwsAccount, with_account_but_no_secrets
from executions.execution_list import failing_executions
from executions.forms import AttemptFilterForm
from executions.models import Execution, FailureGroup
from executions.views import filter_choices, filtered_attempts, scoped_account_ids
from executions.web import bad_filters, is_htmx, render_page, visible_accounts
from operations.batch import (
    cancel_batch,
    filter_dry_run,
    group_dry_run,
    group_progress,
    progress,
    start_batch,
    start_filter_batch,
)
from operations.choices import AUDIT_PERMISSION, REDRIVE_PERMISSION
from operations.forms import AuditFilterForm, RedriveConfirmForm
from operations.models import OperatorAction, RedriveBatch
from operations.redrive import dry_run, queue_redrive
from operations.replay_views import action_context

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
        OperatorAction.objects.readable_by(request.user).select_related(
            "account", "execution", "attempt"
        ),
        pk=pk,
    )
    template = "operations/partials/action.html" if is_htmx(request) else "operations/action.html"
    return render_page(request, template, action_context(row))


@login_required
@require_http_methods(["GET", "POST"])
def group_redrive(request: HttpRequest, pk: int) -> HttpResponse:
    group = get_object_or_404(
        with_account_but_no_secrets(FailureGroup.objects.visible_to(request.user)), pk=pk
    )
    if not request.user.has_perm(REDRIVE_PERMISSION):
        raise PermissionDenied("Redriving needs the redrive permission.")
    form = RedriveConfirmForm(request.POST if request.method == "POST" else None)
    dry = group_dry_run(group)
    ready = group.account.has_operator_role and dry.eligible
    if request.method == "POST" and ready and form.is_valid():
        batch = start_batch(request.user, group)
        return HttpResponseRedirect(batch.get_absolute_url())
    context = {"group": group, "form": form, "dry": dry, "account": group.account}
    status = 400 if request.method == "POST" else 200
    return render_page(request, "operations/group_redrive.html", context, status=status)


@login_required
def group_progress_view(request: HttpRequest, pk: int) -> HttpResponse:
    """The group page's redrive figures (HTMX): whoever sees the group sees them."""
    group = get_object_or_404(FailureGroup.objects.visible_to(request.user), pk=pk)
    context = {"group": group, "progress": group_progress(group)}
    return render_page(request, "operations/partials/group_progress.html", context)


def _readable_batch(request: HttpRequest, pk: int) -> RedriveBatch:
    """A batch is readable like its rows: by the one who started it, and by auditors."""
    batches = RedriveBatch.objects.filter(
        account__in=AwsAccount.objects.visible_to(request.user).values("pk")
    )
    if not (request.user.is_superuser or request.user.has_perm(AUDIT_PERMISSION)):
        batches = batches.filter(user_id=request.user.pk or 0)
    return get_object_or_404(batches.select_related("account", "group"), pk=pk)


@login_required
def batch(request: HttpRequest, pk: int) -> HttpResponse:
    row = _readable_batch(request, pk)
    actions = row.actions.select_related("execution").order_by("id")[:AUDIT_ROWS]
    context = {"batch": row, "progress": progress(row), "actions": actions}
    template = "operations/partials/batch.html" if is_htmx(request) else "operations/batch.html"
    return render_page(request, template, context)


@login_required
@require_POST
def batch_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    row = _readable_batch(request, pk)
    if not request.user.has_perm(REDRIVE_PERMISSION):
        raise PermissionDenied("Cancelling needs the redrive permission.")
    cancel_batch(row)
    return HttpResponseRedirect(row.get_absolute_url())


@login_required
@require_http_methods(["GET", "POST"])
def filter_redrive(request: HttpRequest) -> HttpResponse:
    """Redrive the executions the failing-executions page's filter (its query string) matches:
    the dry run, then the confirmed batch, which records the filter. One account a batch: each
    has its own operator role and RedriveExecution quota."""
    if not request.user.has_perm(REDRIVE_PERMISSION):
        raise PermissionDenied("Redriving needs the redrive permission.")
    choices = filter_choices(request.user)
    filter_form = AttemptFilterForm(request.GET, choices=choices)
    if not filter_form.is_valid():
        return bad_filters(request, filter_form)
    data = filter_form.cleaned_data
    matching = failing_executions(
        data, scoped_account_ids(data, choices), filtered_attempts(data, choices)
    )
    dry = filter_dry_run(matching)
    accounts = dry.account_ids
    account = None
    if len(accounts) == 1:
        account = visible_accounts(request.user).get(pk=accounts.pop())
    filters = {k: v for k, v in filter_form.active_filters().items() if k not in ("view", "sort")}
    form = RedriveConfirmForm(request.POST if request.method == "POST" else None)
    ready = account is not None and account.has_operator_role
    if request.method == "POST" and ready and form.is_valid():
        assert account is not None
        batch = start_filter_batch(request.user, account.pk, filters, matching)
        return HttpResponseRedirect(batch.get_absolute_url())
    context = {
        "dry": dry,
        "form": form,
        "account": account,
        "several_accounts": len(dry.account_ids) > 1,
        "filters": filters,
        "filter_query": urlencode(filters),
    }
    status = 400 if request.method == "POST" else 200
    return render_page(request, "operations/filter_redrive.html", context, status=status)
