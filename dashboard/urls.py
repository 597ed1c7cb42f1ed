"""Root URLconf: the dashboard pages, the apps, the API, the admin and authentication.

The API (the layer above this one) is included by dotted name, so no import points up."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from dashboard import sso

urlpatterns = [
    path("", include("dashboard.pages")),
    path("executions/", include("executions.urls")),
    path("connections/", include("dashboard.connection_urls")),
    path("alerts/", include("alerts.urls")),
    path("operations/", include("operations.urls")),
    path("api/", include("api.urls")),
    path("tokens/", include("api.token_urls")),
    path("login/", sso.LoginView.as_view(), name="login"),
    path("sso/login/", sso.sso_login, name="sso_login"),
    path("sso/callback/", sso.sso_callback, name="sso_callback"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
]
