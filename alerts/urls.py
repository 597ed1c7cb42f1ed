"""URLs of the alerts app: rules, their delivery log, the test alert, action links."""

from __future__ import annotations

from django.urls import path

from alerts import views

app_name = "alerts"
urlpatterns = [
    path("", views.rule_list, name="rules"),
    path("new/", views.rule_edit, name="new"),
    path("act/", views.act, name="act"),
    path("<int:pk>/", views.rule_detail, name="rule"),
    path("<int:pk>/edit/", views.rule_edit, name="edit"),
    path("<int:pk>/test/", views.send_test, name="test"),
]
