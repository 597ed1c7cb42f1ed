"""Alert rule pages: the list, one rule with its delivery log, the form, "Send test alert".

A user sees a rule when they see every account it watches (AlertRule.visible_to); changing one
needs the alerts.change_alertrule permission (adding: add_alertrule), like group triage."""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from alerts.choices import AlertKind, DeliveryStatus
from alerts.delivery import deliver
from alerts.forms import ActionLinkForm, AlertRuleForm
from alerts.messages import link
from alerts.models import Alert, AlertRule, Delivery, DeliveryAttempt
from executions.models import FailureGroup
from executions.web import bad_filters, can_triage, render_page

LOG_ROWS = 50


@login_required
def rule_list(request: HttpRequest) -> HttpResponse:
    rules = (
        AlertRule.objects.visible_to(request.user)
        .prefetch_related("accounts")
        .annotate(
            sent=Count("alerts__deliveries", filter=Q(alerts__deliveries__status="sent")),
            failed=Count("alerts__deliveries", filter=Q(alerts__deliveries__status="failed")),
        )
    )
    can_add = request.user.has_perm("alerts.add_alertrule")
    return render_page(request, "alerts/rules.html", {"rules": rules, "can_add": can_add})


@login_required
def rule_detail(request: HttpRequest, pk: int) -> HttpResponse:
    rule = get_object_or_404(AlertRule.objects.visible_to(request.user), pk=pk)
    log = (
        DeliveryAttempt.objects.filter(delivery__alert__rule=rule)
        .select_related("delivery__alert")
        .order_by("-at", "-id")[:LOG_ROWS]
    )
    context = {
        "rule": rule,
        "log": log,
        "accounts": list(rule.accounts.all()),
        "can_change": request.user.has_perm("alerts.change_alertrule"),
    }
    return render_page(request, "alerts/rule.html", context)


@login_required
def rule_edit(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    rule = (
        get_object_or_404(AlertRule.objects.visible_to(request.user), pk=pk)
        if pk is not None
        else AlertRule(created_by=request.user if request.user.is_authenticated else None)
    )
    if not request.user.has_perm("alerts.change_alertrule" if pk else "alerts.add_alertrule"):
        raise PermissionDenied("You may not change alert rules.")
    form = AlertRuleForm(request.POST or None, instance=rule, user=request.user)
    if request.method == "POST":
        if form.is_valid():
            saved = form.save()
            messages.success(request, "Alert rule saved.")
            return HttpResponseRedirect(saved.get_absolute_url())
        return render_page(request, "alerts/edit.html", {"form": form, "rule": rule}, status=400)
    return render_page(request, "alerts/edit.html", {"form": form, "rule": rule})


@login_required
@require_POST
def send_test(request: HttpRequest, pk: int) -> HttpResponse:
    """Send a test alert on every channel of the rule now, and say what each receiver said."""
    rule = get_object_or_404(AlertRule.objects.visible_to(request.user), pk=pk)
    if not request.user.has_perm("alerts.change_alertrule"):
        raise PermissionDenied("You may not change alert rules.")
    if not rule.channels:
        messages.error(request, "This rule has no channel to test.")
        return HttpResponseRedirect(rule.get_absolute_url())
    now = timezone.now()
    with transaction.atomic():
        alert = Alert.objects.create(
            rule=rule,
            key=f"test:{rule.pk}:{uuid.uuid4().hex}",
            kind=AlertKind.TEST,
            digest_done=True,
            payload={
                "event": "test",
                "title": f"Test alert from Stepscope rule {rule.name}",
                "hint": "If you can read this, the channel works.",
                "link": link(rule.get_absolute_url()),
            },
        )
        Delivery.objects.bulk_create(
            Delivery(alert=alert, channel=c, next_attempt_at=now) for c in rule.channels
        )
    for delivery in alert.deliveries.all():
        status = deliver(delivery.pk)
        delivery.refresh_from_db()
        level = messages.success if status == DeliveryStatus.SENT else messages.error
        level(request, f"{delivery.get_channel_display()}: {status} — {delivery.last_answer}")
    return HttpResponseRedirect(rule.get_absolute_url())


@login_required
@require_GET
def act(request: HttpRequest) -> HttpResponse:
    """An alert's signed action link: a confirm page whose POST makes the change. The token
    names the group and the action only; access is the user's own, checked like the group
    page (404 outside their accounts) and its buttons (403 without triage rights)."""
    form = ActionLinkForm(request.GET)
    if not form.is_valid():
        return bad_filters(request, form, title="Invalid alert link")
    group_id, action = form.cleaned_data["t"]
    group = get_object_or_404(
        FailureGroup.objects.visible_to(request.user).select_related("account"), pk=group_id
    )
    if not can_triage(request.user):
        raise PermissionDenied("You may not change failure groups.")
    context = {
        "group": group,
        "action": action,
        "target": reverse(action.url_name, args=[group.pk]),
    }
    return render_page(request, "alerts/act.html", context)
