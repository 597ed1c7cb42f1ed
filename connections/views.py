"""Views of the connections app."""

from __future__ import annotations
