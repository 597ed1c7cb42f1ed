from __future__ import annotations

from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class StepscopeAdminConfig(admin_apps.AdminConfig):
    """django.contrib.admin with the project's site (dashboard/admin_site.py)."""

    default = False  # named in INSTALLED_APPS; `dashboard` itself stays DashboardConfig
    default_site = "dashboard.admin_site.StepscopeAdminSite"


class DashboardConfig(AppConfig):
    name = "dashboard"

    def ready(self) -> None:
        from dashboard import checks  # noqa: F401  (registers the deploy checks)
