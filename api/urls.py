"""URLs of the API (namespace "api"): /api/v1/ resources, the schema, its docs, the catch-all 404."""

from __future__ import annotations

from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from api import alert_views, errors, views

app_name = "api"
urlpatterns = [
    path("v1/attempts/", views.attempt_list, name="attempts"),
    path("v1/attempts/<int:pk>/", views.attempt_detail, name="attempt"),
    path("v1/executions/", views.execution_list, name="executions"),
    path("v1/executions/<int:pk>/", views.execution_detail, name="execution"),
    path("v1/groups/", views.group_list, name="groups"),
    path("v1/groups/<int:pk>/", views.group_detail, name="group"),
    path("v1/groups/<int:pk>/status/", views.group_status, name="group_status"),
    path("v1/connections/", views.connection_list, name="connections"),
    path("v1/connections/<int:pk>/", views.connection_detail, name="connection"),
    path("v1/endpoints/", views.endpoint_list, name="endpoints"),
    path("v1/endpoints/<int:pk>/", views.endpoint_detail, name="endpoint"),
    path("v1/sync-runs/", views.sync_run_list, name="sync_runs"),
    path("v1/alert-rules/", alert_views.alert_rule_list, name="alert_rules"),
    path("v1/alert-rules/<int:pk>/", alert_views.alert_rule_detail, name="alert_rule"),
    path(
        "v1/alert-rules/<int:pk>/deliveries/",
        alert_views.alert_rule_deliveries,
        name="alert_rule_deliveries",
    ),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api:schema"), name="docs"),
    re_path(r"^(?P<path>.*)$", errors.not_found, name="not_found"),
]
