from __future__ import annotations

app_name = "connections"
urlpatterns: list[object] = []
