"""The audit in the admin: read-only, scoped to the accounts the staff user sees."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Model
from django.http import HttpRequest

from connections.admin import AccountScopedAdmin
from operations.models import OperatorAction


@admin.register(OperatorAction)
class OperatorActionAdmin(AccountScopedAdmin):
    list_display = ["created_at", "kind", "username", "account", "target", "outcome"]
    list_filter = ["kind", "outcome", "account"]
    list_select_related = ["account"]
    search_fields = ["target", "username", "aws_request_id"]
    readonly_fields = [f.name for f in OperatorAction._meta.fields]
    show_full_result_count = False

    # Written by the operator pages and tasks only: an audit nobody can edit.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False
