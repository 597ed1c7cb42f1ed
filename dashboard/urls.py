"""Root URLconf: the dashboard pages, the apps, the admin and authentication."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

urlpatterns = [
    path("", include("dashboard.pages")),
    path("executions/", include("executions.urls")),
    path("connections/", include("dashboard.connection_urls")),
    path("alerts/", include("alerts.urls")),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
]
