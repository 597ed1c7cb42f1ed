"""URLs of the connections app: EventBridge connections and the endpoints they call."""

from __future__ import annotations

from django.urls import path

from connections import views

app_name = "connections"
urlpatterns = [
    path("", views.connection_list, name="list"),
    path("<int:pk>/", views.connection_detail, name="detail"),
    path("endpoints/<int:pk>/", views.endpoint_detail, name="endpoint"),
]
