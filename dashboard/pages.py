"""URL patterns of the dashboard's own pages (overview, sync status)."""

from __future__ import annotations

from django.urls import path

from dashboard import views

app_name = "dashboard"
urlpatterns = [
    path("", views.overview, name="overview"),
    path("sync/", views.sync_status, name="sync_status"),
    path("sync/<int:pk>/run/", views.sync_now, name="sync_now"),
]
