"""Admins of users, groups and login records: superusers only.

None of these rows belongs to an AWS account, yet each opens every account: a staff user who
can edit users can put themselves in another team's group (or make themselves superuser), one
who can edit groups can hand out permissions, and the login records name every user and undo
their lockouts. So for a staff user who is not a superuser these admins do not exist: not on
the index, not by URL (403), not as autocomplete or form choices.

This module runs after django.contrib.auth and axes registered their admins (INSTALLED_APPS
order) and re-registers each with the rule in front.
"""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.contrib import admin
from django.db.models import Model, QuerySet
from django.http import HttpRequest

# Admins another app registers that must be superuser-only here (app_label.ModelName).
SUPERUSER_ONLY_MODELS = (
    "auth.User",
    "auth.Group",
    "axes.AccessAttempt",
    "axes.AccessLog",
    "axes.AccessFailureLog",
)


class SuperuserOnlyAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Put in front of an admin class: for anyone but an active superuser it grants nothing."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return is_superuser(request) and super().has_module_permission(request)

    def has_view_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return is_superuser(request) and super().has_view_permission(request, obj)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return is_superuser(request) and super().has_add_permission(request)

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return is_superuser(request) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return is_superuser(request) and super().has_delete_permission(request, obj)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        # Other admins take their relation choices from here (connections.admin).
        queryset = super().get_queryset(request)
        return queryset if is_superuser(request) else queryset.none()


def is_superuser(request: HttpRequest) -> bool:
    return bool(request.user.is_active and request.user.is_superuser)


def restrict_to_superusers(label: str) -> None:
    model = apps.get_model(label)
    if not admin.site.is_registered(model):  # e.g. AXES_ENABLE_ADMIN = False
        return
    original = type(admin.site.get_model_admin(model))
    admin.site.unregister(model)
    admin.site.register(model, type(original.__name__, (SuperuserOnlyAdmin, original), {}))


for _label in SUPERUSER_ONLY_MODELS:
    restrict_to_superusers(_label)
