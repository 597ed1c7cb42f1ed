"""The account admin's "Sync now" action, added one layer above the account admin.

The account admin lives in connections, the lowest layer; queueing a sync needs the Celery tasks
of executions. So the action is added here, where both are importable, by re-registering the
account admin with it (connections' admin module runs first: INSTALLED_APPS order).
"""

from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from connections.admin import AwsAccountAdmin
from connections.models import AwsAccount


class SyncingAwsAccountAdmin(AwsAccountAdmin):
    actions = [*AwsAccountAdmin.actions, "sync_now"]

    # Like "Sync now" on the dashboard, it acts on the account: change permission needed.
    @admin.action(description="Sync now", permissions=["change"])
    def sync_now(self, request: HttpRequest, queryset: QuerySet[AwsAccount]) -> None:
        # Looked up when used, so a test can swap the task module for a recorder.
        from executions.tasks import sync_account

        for account in queryset:
            sync_account.delay(account.pk, trigger="admin")
        self.message_user(request, f"Queued a sync of {queryset.count()} account(s).")


admin.site.unregister(AwsAccount)
admin.site.register(AwsAccount, SyncingAwsAccountAdmin)
