"""Alert rules in the REST API: the list, one rule, and its delivery log (keyset-paginated).

Scoped by `AlertRule.objects.visible_to` exactly like the alert pages (a rule is visible when
every account it watches is), so another user's rule is a 404. The rule's secret fields (the
Slack and webhook URLs embed tokens; the signing secret signs deliveries) are deferred, never
decrypted here: the API says only whether each is set, from SQL, so a rule encrypted under a
retired key still lists instead of failing.
"""

from __future__ import annotations

from typing import Any

from django.db.models import BooleanField, Count, ExpressionWrapper, Q, QuerySet
from django.db.models.fields.json import KeyTextTransform
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from alerts.choices import DeliveryStatus
from alerts.models import SECRET_RULE_FIELDS, AlertRule, Delivery, DeliveryAttempt
from api import serializers as s
from api.forms import AlertRuleFilterForm, DeliveryLogForm
from api.views import ERRORS, NOT_FOUND, keyset, params, valid
from executions.redaction import default_redactor


def _is_set(field: str) -> ExpressionWrapper[Q]:
    # Encrypted fields store "" for no value (connections.crypto): no decryption needed.
    return ExpressionWrapper(~Q(**{field: ""}), output_field=BooleanField())


def visible_rules(user: Any) -> QuerySet[AlertRule]:
    return (
        AlertRule.objects.visible_to(user)
        .defer(*SECRET_RULE_FIELDS)
        .annotate(
            slack_webhook_set=_is_set("slack_webhook_url"),
            webhook_set=_is_set("webhook_url"),
            signing_secret_set=_is_set("signing_secret"),
            apprise_set=_is_set("apprise_url"),
        )
    )


def _counted(rules: list[AlertRule]) -> list[AlertRule]:
    """Sent and failed deliveries per rule, in one query for the page."""
    counts = {
        row["alert__rule"]: row
        for row in Delivery.objects.filter(alert__rule__in=[r.pk for r in rules])
        .values("alert__rule")
        .annotate(
            sent=Count("id", filter=Q(status=DeliveryStatus.SENT)),
            failed=Count("id", filter=Q(status=DeliveryStatus.FAILED)),
        )
        .order_by()
    }
    for rule in rules:
        row = counts.get(rule.pk, {})
        rule.sent = row.get("sent", 0)  # type: ignore[attr-defined]
        rule.failed = row.get("failed", 0)  # type: ignore[attr-defined]
    return rules


@extend_schema(
    operation_id="alert_rule_list",
    parameters=params(AlertRuleFilterForm),
    responses={200: s.AlertRulePage, **ERRORS},
)
@api_view(["GET"])
def alert_rule_list(request: Request) -> Response:
    form = valid(AlertRuleFilterForm(request.GET))
    data = form.cleaned_data
    qs = visible_rules(request.user)
    if data.get("account"):
        qs = qs.filter(accounts=data["account"])
    if data.get("q"):
        qs = qs.filter(name__icontains=data["q"])
    rows, nxt = keyset(request, form, qs, "id", by_time=False)
    rows = _counted(rows)
    return Response({"results": s.AlertRuleSerializer(rows, many=True).data, "next": nxt})


@extend_schema(
    operation_id="alert_rule_detail", responses={200: s.AlertRuleSerializer, **NOT_FOUND}
)
@api_view(["GET"])
def alert_rule_detail(request: Request, pk: int) -> Response:
    rule = get_object_or_404(visible_rules(request.user), pk=pk)
    return Response(s.AlertRuleSerializer(_counted([rule])[0]).data)


@extend_schema(
    operation_id="alert_rule_deliveries",
    parameters=params(DeliveryLogForm),
    responses={200: s.DeliveryLogPage, **NOT_FOUND},
    description="The rule's delivery log: every try on every channel, newest first.",
)
@api_view(["GET"])
def alert_rule_deliveries(request: Request, pk: int) -> Response:
    rule = get_object_or_404(AlertRule.objects.visible_to(request.user).only("pk"), pk=pk)
    form = valid(DeliveryLogForm(request.GET))
    qs = (
        DeliveryAttempt.objects.filter(delivery__alert__rule=rule)
        .select_related("delivery__alert")
        .defer("delivery__alert__payload")
        .annotate(alert_title=KeyTextTransform("title", "delivery__alert__payload"))
    )
    if form.cleaned_data.get("outcome"):
        qs = qs.filter(ok=form.cleaned_data["outcome"] == "sent")
    rows, nxt = keyset(request, form, qs, "at", by_time=True)
    redactor = default_redactor()
    for row in rows:
        # Stored answers never hold the URL (alerts.delivery); patterns added since still apply.
        row.answer = redactor.text(row.answer)
        row.alert_title = redactor.text(row.alert_title or "")  # type: ignore[attr-defined]
    return Response({"results": s.DeliveryLogSerializer(rows, many=True).data, "next": nxt})
