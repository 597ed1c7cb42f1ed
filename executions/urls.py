"""URLs of the executions app: failing attempts, executions, failure groups."""

from __future__ import annotations

from django.urls import path

from executions import group_notes, saved_views, views

app_name = "executions"
urlpatterns = [
    path("", views.attempt_list, name="list"),
    path("export.csv", views.export_csv, name="export"),
    path("<int:pk>/", views.execution_detail, name="detail"),
    path("views/", saved_views.saved_view_list, name="saved_views"),
    path("views/<int:pk>/delete/", saved_views.saved_view_delete, name="saved_view_delete"),
    path("groups/", views.group_list, name="groups"),
    path("groups/<int:pk>/", views.group_detail, name="group"),
    path(
        "groups/<int:pk>/resolve/",
        views.group_action,
        {"action": "resolve"},
        name="group_resolve",
    ),
    path("groups/<int:pk>/ignore/", views.group_action, {"action": "ignore"}, name="group_ignore"),
    path("groups/<int:pk>/notes/", group_notes.group_notes, name="group_notes"),
    path("groups/<int:pk>/reopen/", views.group_action, {"action": "reopen"}, name="group_reopen"),
    path(
        "groups/<int:pk>/acknowledge/",
        views.group_alerting,
        {"action": "acknowledge"},
        name="group_acknowledge",
    ),
    path(
        "groups/<int:pk>/snooze/", views.group_alerting, {"action": "snooze"}, name="group_snooze"
    ),
    path("groups/<int:pk>/mute/", views.group_alerting, {"action": "mute"}, name="group_mute"),
    path(
        "groups/<int:pk>/unmute/", views.group_alerting, {"action": "unmute"}, name="group_unmute"
    ),
]
