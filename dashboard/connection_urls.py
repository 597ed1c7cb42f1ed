"""URLs of the connection pages (namespace "connections"): connections and their endpoints."""

from __future__ import annotations

from django.urls import path

from dashboard import connection_views as views

app_name = "connections"
urlpatterns = [
    path("", views.connection_list, name="list"),
    path("<int:pk>/", views.connection_detail, name="detail"),
    path("endpoints/<int:pk>/", views.endpoint_detail, name="endpoint"),
]
