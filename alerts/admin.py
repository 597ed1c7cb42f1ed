"""Alert rules in the admin, scoped like their pages: a non-superuser sees, changes and deletes
only the rules whose every account they see (AlertRule.visible_to), is offered only their own
accounts, connections and endpoints, and must name at least one account (a rule watching none
watches all of them). The channel secrets stay write-only on the rule pages and the command:
the admin neither shows nor edits them (tests/test_admin_access.py)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from alerts.models import SECRET_RULE_FIELDS, AlertRule
from connections.admin import AccountScopedAdmin


@admin.register(AlertRule)
class AlertRuleAdmin(AccountScopedAdmin):
    list_display = ["name", "enabled", "channel_list", "quiet_period_seconds", "created_at"]
    list_filter = ["enabled"]
    search_fields = ["name"]
    exclude = [*SECRET_RULE_FIELDS, "created_by"]
    readonly_fields = ["channel_list", "created_at"]
    filter_horizontal = ["accounts", "connections", "endpoints"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        rules: QuerySet[Any] = AlertRule.objects.visible_to(request.user)
        return rules

    @admin.display(description="Channels")
    def channel_list(self, rule: AlertRule) -> str:
        return ", ".join(rule.channels) or "none"

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        form = super().get_form(request, obj, change, **kwargs)
        if not request.user.is_superuser and "accounts" in form.base_fields:
            form.base_fields["accounts"].required = True
        return form

    def save_model(self, request: HttpRequest, obj: AlertRule, form: Any, change: bool) -> None:
        if not change:
            obj.created_by = request.user  # type: ignore[assignment]
        super().save_model(request, obj, form, change)
