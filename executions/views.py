"""Views of the executions app."""

from __future__ import annotations
