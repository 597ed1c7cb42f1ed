from __future__ import annotations

app_name = "executions"
urlpatterns: list[object] = []
