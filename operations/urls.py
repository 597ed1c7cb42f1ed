"""URLs of the operations app: redrive, the audit of operator actions."""

from __future__ import annotations

from django.urls import path

from operations import replay_views, views

app_name = "operations"
urlpatterns = [
    path("executions/<int:pk>/redrive/", views.redrive, name="redrive"),
    path("groups/<int:pk>/redrive/", views.group_redrive, name="group_redrive"),
    path("groups/<int:pk>/redrive/progress/", views.group_progress_view, name="group_progress"),
    path("executions/redrive/", views.filter_redrive, name="filter_redrive"),
    path("batches/<int:pk>/", views.batch, name="batch"),
    path("batches/<int:pk>/cancel/", views.batch_cancel, name="batch_cancel"),
    path("attempts/<int:pk>/replay/", replay_views.replay, name="replay"),
    path("audit/", views.audit, name="audit"),
    path("audit/<int:pk>/", views.action, name="action"),
]
