"""The admin as an ops console: register accounts, test credentials, sync now."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from connections.aws import check_credentials
from connections.forms import AwsAccountForm
from connections.models import AwsAccount, Connection, ConnectionStateChange, Endpoint, SyncRun


@admin.register(AwsAccount)
class AwsAccountAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    form = AwsAccountForm
    list_display = [
        "name",
        "account_id",
        "region_list",
        "auth_mode",
        "enabled",
        "sync_status",
        "last_synced_at",
        "last_error_short",
    ]
    list_filter = ["enabled", "sync_status", "auth_mode"]
    search_fields = ["name", "account_id"]
    readonly_fields = ["sync_status", "last_synced_at", "last_error", "secrets_stored"]
    filter_horizontal = ["groups"]
    actions = ["test_credentials", "sync_now"]
    fieldsets = [
        (None, {"fields": ["name", "account_id", "regions", "enabled", "sync_interval_seconds"]}),
        (
            "Credentials (write-only)",
            {
                "fields": [
                    "auth_mode",
                    "role_arn",
                    "external_id",
                    "access_key_id",
                    "secret_access_key",
                    "secrets_stored",
                    "endpoint_url",
                ]
            },
        ),
        ("Access", {"fields": ["groups"]}),
        ("Sync", {"fields": ["sync_status", "last_synced_at", "last_error"]}),
    ]

    @admin.display(description="Regions")
    def region_list(self, obj: AwsAccount) -> str:
        return ", ".join(obj.regions)

    @admin.display(description="Last error")
    def last_error_short(self, obj: AwsAccount) -> str:
        return obj.last_error[:120]

    @admin.display(description="Secrets stored")
    def secrets_stored(self, obj: AwsAccount) -> str:
        # Says which secrets exist without revealing any of them.
        names = [
            label
            for label, value in (
                ("external id", obj.external_id),
                ("access key id", obj.access_key_id),
                ("secret access key", obj.secret_access_key),
            )
            if value
        ]
        return ", ".join(names) or "none"

    @admin.action(description="Test credentials")
    def test_credentials(self, request: HttpRequest, queryset: QuerySet[AwsAccount]) -> None:
        for account in queryset:
            result = check_credentials(account)
            self.message_user(
                request, result.message, messages.SUCCESS if result.ok else messages.ERROR
            )

    @admin.action(description="Sync now")
    def sync_now(self, request: HttpRequest, queryset: QuerySet[AwsAccount]) -> None:
        from connections.tasks import sync_account

        for account in queryset:
            sync_account.delay(account.pk, trigger="admin")
        self.message_user(request, f"Queued a sync of {queryset.count()} account(s).")


class ConnectionStateChangeInline(admin.TabularInline):  # type: ignore[type-arg]
    model = ConnectionStateChange
    extra = 0
    readonly_fields = ["state", "reason", "changed_at", "observed_at"]
    can_delete = False


@admin.register(Connection)
class ConnectionAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = [
        "name",
        "account",
        "region",
        "authorization_type",
        "state",
        "last_authorized_at",
    ]
    list_filter = ["state", "authorization_type", "region"]
    list_select_related = ["account"]
    search_fields = ["name", "arn"]
    readonly_fields = [f.name for f in Connection._meta.fields]
    inlines = [ConnectionStateChangeInline]


@admin.register(Endpoint)
class EndpointAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["method", "url_template", "account", "last_seen_at"]
    list_select_related = ["account"]
    search_fields = ["url_template"]
    show_full_result_count = False


@admin.register(SyncRun)
class SyncRunAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = [
        "account",
        "started_at",
        "finished_at",
        "status",
        "executions_added",
        "attempts_added",
    ]
    list_filter = ["status"]
    list_select_related = ["account"]
    show_full_result_count = False
    readonly_fields = [f.name for f in SyncRun._meta.fields]
