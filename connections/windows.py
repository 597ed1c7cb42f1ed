"""The preset time windows of the pages, shortest first.

A plain constant in the lowest layer: the pure cascade rules in `connections.health` pick a
window for their links, and the window form on top offers the same choices.
"""

from __future__ import annotations

from datetime import timedelta

WINDOWS: dict[str, tuple[str, timedelta]] = {
    "1h": ("Last hour", timedelta(hours=1)),
    "6h": ("Last 6 hours", timedelta(hours=6)),
    "24h": ("Last 24 hours", timedelta(hours=24)),
    "7d": ("Last 7 days", timedelta(days=7)),
    "30d": ("Last 30 days", timedelta(days=30)),
}
