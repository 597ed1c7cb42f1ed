"""GET-parameter forms shared by the dashboard pages (time window, sync filter)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django import forms
from django.utils import timezone

from connections.windows import WINDOWS
from executions.forms import RowIdField, UtcDateTimeField

DEFAULT_WINDOW = "24h"
# Timelines aggregate every failure in the window; a year of minutes would be a huge chart and
# a slow query, so custom ranges are capped.
MAX_CUSTOM_SPAN = timedelta(days=90)


class WindowForm(forms.Form):
    """The time window of a timeline page: a preset, or a custom start/end (UTC)."""

    window = forms.ChoiceField(
        choices=[(key, label) for key, (label, _) in WINDOWS.items()], required=False
    )
    start = UtcDateTimeField(required=False, help_text="UTC, e.g. 2025-01-31T09:00")
    end = UtcDateTimeField(required=False, help_text="UTC; empty means now")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start, end = data.get("start"), data.get("end")
        # A window starting later than now has nothing to show, and with no end (= now) it
        # would end before it starts.
        if start and start >= timezone.now():
            self.add_error("start", "The start must be in the past.")
        elif end and not start:
            self.add_error("start", "Give a start when you give an end.")
        if start and end and end <= start:
            self.add_error("end", "The end must be after the start.")
        if start and (end or timezone.now()) - start > MAX_CUSTOM_SPAN:
            self.add_error("start", "A custom window can span at most 90 days.")
        return data

    def bounds(self, now: datetime | None = None) -> tuple[datetime, datetime]:
        """(start, end) of the chosen window; only call after is_valid()."""
        now = now or timezone.now()
        data = self.cleaned_data
        if data.get("start"):
            return data["start"], data.get("end") or now
        _, span = WINDOWS[data.get("window") or DEFAULT_WINDOW]
        return now - span, now

    @property
    def selected(self) -> str:
        if self.is_bound and self.is_valid() and self.cleaned_data.get("start"):
            return ""
        value = self.data.get("window") if self.is_bound else None
        return value if value in WINDOWS else DEFAULT_WINDOW


class SyncFilterForm(forms.Form):
    """Narrows the sync page to one account (AwsAccount.get_absolute_url links here)."""

    account = RowIdField(required=False)
