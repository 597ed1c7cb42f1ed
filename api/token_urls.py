"""URLs of the API-token page (namespace "tokens")."""

from __future__ import annotations

from django.urls import path

from api import tokens

app_name = "tokens"
urlpatterns = [
    path("", tokens.token_list, name="list"),
    path("<int:pk>/revoke/", tokens.token_revoke, name="revoke"),
]
