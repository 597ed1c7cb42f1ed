"""The admin as an ops console: register accounts, test credentials, sync now.

Every admin here is an `AccountScopedAdmin`: a staff user who is not a superuser sees, picks
and changes only rows of the accounts granted to their groups, whatever model permissions they
hold. Registering accounts and granting them to groups is superuser work (docs/security.md).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.utils import get_fields_from_path
from django.db.models import Field, Model, QuerySet
from django.http import HttpRequest

from connections.aws.checks import check_credentials
from connections.forms import AwsAccountForm
from connections.models import AwsAccount, Connection, ConnectionStateChange, Endpoint, SyncRun


class AccountScopedAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """An admin of rows that belong to AWS accounts, scoped like every page of the site.

    For a non-superuser every door the admin has goes through `get_queryset`, filtered by
    `AwsAccount.objects.visible_to`: the changelist and its search and filters, the change,
    history and delete views (a row outside answers like a missing one), admin actions (Django
    runs them on `get_queryset()`), autocomplete (it asks the related model's admin), and the
    choices of every relation in a form (the related model's admin decides those too).
    """

    # The lookup from the model to its AwsAccount; "" when the model is AwsAccount itself.
    account_path = "account"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        visible = AwsAccount.objects.visible_to(request.user)
        if not self.account_path:
            return queryset.filter(pk__in=visible.values("pk"))
        return queryset.filter(**{f"{self.account_path}__in": visible.values("pk")})

    def in_scope(self, request: HttpRequest, obj: Model | None) -> bool:
        if obj is None or request.user.is_superuser:
            return True
        return self.get_queryset(request).filter(pk=obj.pk).exists()

    def has_view_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return super().has_view_permission(request, obj) and self.in_scope(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return super().has_change_permission(request, obj) and self.in_scope(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return super().has_delete_permission(request, obj) and self.in_scope(request, obj)

    def related_choices(self, db_field: Field[Any, Any], request: HttpRequest) -> QuerySet[Any]:
        """What a relation may point at: what the related model's admin shows this user.

        A related model without an admin has no scope to ask, so it offers nothing."""
        related: type[Model] = db_field.remote_field.model  # type: ignore[union-attr]
        if not self.admin_site.is_registered(related):
            return related._default_manager.none()
        return self.admin_site.get_model_admin(related).get_queryset(request)

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if not request.user.is_superuser:
            kwargs.setdefault("queryset", self.related_choices(db_field, request))
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if not request.user.is_superuser:
            kwargs.setdefault("queryset", self.related_choices(db_field, request))
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def get_list_filter(self, request: HttpRequest) -> Any:
        # Django's filter on a relation offers every related row (every account's name);
        # the related-only filter offers those the scoped rows point at.
        return [
            (entry, admin.RelatedOnlyFieldListFilter)
            if isinstance(entry, str) and get_fields_from_path(self.model, entry)[-1].is_relation
            else entry
            for entry in super().get_list_filter(request)
        ]


class SyncWrittenAdmin(AccountScopedAdmin):
    """Rows the sync writes from what AWS says: readable, deletable, never made by hand (a
    hand-made row would have no account and lie about AWS)."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(AwsAccount)
class AwsAccountAdmin(AccountScopedAdmin):
    account_path = ""
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
    # "Sync now" is added by executions/admin.py: queueing a sync needs the layer above.
    actions = ["test_credentials"]
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
        (
            "Operator role (optional, write-only): replay and redrive only, never the sync",
            {
                "fields": [
                    "operator_auth_mode",
                    "operator_role_arn",
                    "operator_external_id",
                    "operator_access_key_id",
                    "operator_secret_access_key",
                ]
            },
        ),
        ("Access", {"fields": ["groups"]}),
        ("Sync", {"fields": ["sync_status", "last_synced_at", "last_error"]}),
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Registering an account decides which teams read it: the same decision as a grant.
        return request.user.is_superuser and super().has_add_permission(request)

    def get_readonly_fields(self, request: HttpRequest, obj: Model | None = None) -> Any:
        fields = list(super().get_readonly_fields(request, obj))
        # Grants are superuser work: a staff user who could edit them could hand their own
        # account to any team, or (with any other account) their team to any account. So is
        # which AWS account and regions a registration reads: moving it onto another team's
        # would be refused with a message naming that team's registration.
        if request.user.is_superuser:
            return fields
        return [*fields, "groups", "account_id", "regions"]

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
                ("operator external id", obj.operator_external_id),
                ("operator access key id", obj.operator_access_key_id),
                ("operator secret access key", obj.operator_secret_access_key),
            )
            if value
        ]
        return ", ".join(names) or "none"

    # Like "Sync now" on the dashboard, both act on the account: change permission needed.
    @admin.action(description="Test credentials", permissions=["change"])
    def test_credentials(self, request: HttpRequest, queryset: QuerySet[AwsAccount]) -> None:
        for account in queryset:
            result = check_credentials(account)
            self.message_user(
                request, result.message, messages.SUCCESS if result.ok else messages.ERROR
            )


class ConnectionStateChangeInline(admin.TabularInline):  # type: ignore[type-arg]
    model = ConnectionStateChange
    extra = 0
    readonly_fields = ["state", "reason", "changed_at", "observed_at"]
    can_delete = False

    # Reached only through its connection, which ConnectionAdmin scopes; written by the sync.
    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


@admin.register(Connection)
class ConnectionAdmin(SyncWrittenAdmin):
    list_display = [
        "name",
        "account",
        "region",
        "authorization_type",
        "state",
        "last_authorized_at",
    ]
    list_filter = ["account", "state", "authorization_type", "region"]
    list_select_related = ["account"]
    search_fields = ["name", "arn"]
    readonly_fields = [f.name for f in Connection._meta.fields]
    inlines = [ConnectionStateChangeInline]


@admin.register(Endpoint)
class EndpointAdmin(AccountScopedAdmin):
    list_display = ["method", "url_template", "account", "last_seen_at"]
    list_filter = ["account", "method"]
    list_select_related = ["account"]
    search_fields = ["url_template"]
    show_full_result_count = False


@admin.register(SyncRun)
class SyncRunAdmin(SyncWrittenAdmin):
    list_display = [
        "account",
        "started_at",
        "finished_at",
        "status",
        "executions_added",
        "attempts_added",
    ]
    list_filter = ["account", "status"]
    list_select_related = ["account"]
    show_full_result_count = False
    readonly_fields = [f.name for f in SyncRun._meta.fields]
