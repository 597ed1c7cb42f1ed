"""The failing-attempts list's filters: query-string parameters, validated like any form.

Every filter is a GET parameter so a filtered list is a URL people can share. Invalid input is
a form error (the view answers 400 with it), never an exception deeper down.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django import forms
from django.utils import timezone
from django.utils.functional import cached_property

from connections.arn import is_connection_arn
from executions.choices import Category, GroupStatus

# Primary keys are PostgreSQL bigints (DEFAULT_AUTO_FIELD): a larger number names no row.
from executions.history.events import BIGINT_MAX
from executions.search import MIN_SEARCH_LENGTH

STATUS = re.compile(r"^(?:[1-5]\d\d|[1-5]xx|none)$")
CURSOR = re.compile(r"^(-?\d{1,19})_(\d{1,19})$")
REGION = re.compile(r"^[a-z]{2}(?:-[a-z]+)+-\d{1,2}$")

SORTS = {
    "-occurred_at": "Newest first",
    "occurred_at": "Oldest first",
    "-duration": "Slowest first",
    "duration": "Fastest first",
}
DEFAULT_SORT = "-occurred_at"
LIST_VIEWS = {"executions": "Executions", "attempts": "Attempts"}

# No Step Functions history predates 2016. The bounds also keep date arithmetic (time-zone
# shifts, bucket edges, cursors) far from datetime's limits at years 1 and 9999.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST_AHEAD = timedelta(days=366)
BAD_CURSOR = "Malformed page cursor; start again from the first page."


def latest_date() -> datetime:
    return timezone.now() + LATEST_AHEAD


class RowIdField(forms.IntegerField):
    """The id of a row: a positive bigint."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(min_value=1, max_value=BIGINT_MAX, **kwargs)


class UtcDateTimeField(forms.DateTimeField):
    """A date and time from 2000 to a year ahead, normalised to UTC."""

    def to_python(self, value: Any) -> datetime | None:
        moment = super().to_python(value)
        if moment is None:
            return None
        try:
            moment = moment.astimezone(UTC)
        except (OverflowError, ValueError):  # e.g. 0001-01-01T00:00+14:00
            moment = None
        latest = latest_date()
        if moment is None or not EARLIEST <= moment <= latest:
            raise forms.ValidationError(
                f"Give a date between {EARLIEST:%Y-%m-%d} and {latest:%Y-%m-%d}.",
                code="out_of_range",
            )
        return moment


@dataclass(frozen=True)
class FilterChoices:
    """What the pickers offer: only objects in accounts visible to the user.

    Pickers are a convenience, not the access check: the list query itself is scoped to the
    visible accounts, so an id typed by hand that is not visible simply matches nothing.
    The *_account maps let the view narrow the scan to the one account a filter implies.
    """

    account_ids: list[int] = field(default_factory=list)
    accounts: list[tuple[int, str]] = field(default_factory=list)
    regions: list[str] = field(default_factory=list)
    state_machines: list[tuple[int, str]] = field(default_factory=list)
    endpoints: list[tuple[int, str]] = field(default_factory=list)
    connections: list[tuple[str, str]] = field(default_factory=list)  # (arn, name)
    machine_account: dict[int, int] = field(default_factory=dict)
    endpoint_account: dict[int, int] = field(default_factory=dict)
    connection_account: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Cursor:
    """Keyset position: the sort value and id of the last row of the previous page."""

    value: int
    id: int

    def encode(self) -> str:
        return f"{self.value}_{self.id}"

    @classmethod
    def decode(cls, raw: str, *, by_time: bool = True) -> Cursor | None:
        """The cursor in `raw`, or None when it is malformed or out of range.

        A time cursor's value is a moment in microseconds (see to_micros), so it must fall
        within the dates any filter accepts; either number must fit a bigint.
        """
        match = CURSOR.match(raw)
        if not match:
            return None
        cursor = cls(int(match[1]), int(match[2]))
        low, high = (
            (to_micros(EARLIEST), to_micros(latest_date()))
            if by_time
            else (-BIGINT_MAX, BIGINT_MAX)
        )
        return cursor if low <= cursor.value <= high and 1 <= cursor.id <= BIGINT_MAX else None


def clean_cursor(raw: str, *, by_time: bool) -> Cursor | None:
    if not raw:
        return None
    cursor = Cursor.decode(raw, by_time=by_time)
    if cursor is None:
        raise forms.ValidationError(BAD_CURSOR)
    return cursor


def to_micros(moment: datetime) -> int:
    """Cursor value of a timestamp (integers keep cursors short and exact)."""
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(value: int) -> datetime:
    return datetime.fromtimestamp(value // 1_000_000, tz=UTC).replace(microsecond=value % 1_000_000)


def _picker(choices: list[tuple[Any, str]], selected: Any) -> list[tuple[Any, str]]:
    """Options for a select; a selected value the list does not hold is kept, not dropped."""
    options: list[tuple[Any, str]] = [("", "Any"), *choices]
    if selected not in (None, "") and str(selected) not in {str(v) for v, _ in options}:
        options.append((selected, f"#{selected}"))
    return options


class AttemptFilterForm(forms.Form):
    """Filters of /executions/; field names are the query-string parameter names."""

    connection = forms.CharField(
        required=False,
        max_length=1600,
        label="Connection ARN",
        widget=forms.TextInput(
            attrs={"list": "connection-arns", "placeholder": "arn:aws:events:…"}
        ),
    )
    endpoint = RowIdField(required=False, widget=forms.Select)
    category = forms.ChoiceField(choices=[("", "Any"), *Category.choices], required=False)
    status = forms.CharField(
        required=False,
        max_length=4,
        label="HTTP status",
        widget=forms.TextInput(attrs={"placeholder": "503, 5xx or none", "size": 8}),
    )
    state_machine = RowIdField(required=False, widget=forms.Select)
    account = RowIdField(required=False, widget=forms.Select)
    region = forms.RegexField(
        regex=REGION,
        required=False,
        max_length=32,
        widget=forms.Select,
        error_messages={"invalid": "Not an AWS region name (e.g. eu-west-1)."},
    )
    since = UtcDateTimeField(
        required=False,
        label="From (UTC)",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )
    until = UtcDateTimeField(
        required=False,
        label="To (UTC)",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )
    q = forms.CharField(
        required=False,
        min_length=MIN_SEARCH_LENGTH,
        max_length=200,
        label="Search",
        help_text="Execution name or ARN; attempt error, cause, URL or response.",
        widget=forms.TextInput(
            attrs={"type": "search", "placeholder": "name, ARN, error, URL, response…"}
        ),
    )
    sort = forms.ChoiceField(choices=list(SORTS.items()), required=False)
    # Executions (one row each, attempts collapsed) by default; "attempts" lists every one.
    view = forms.ChoiceField(choices=list(LIST_VIEWS.items()), required=False)
    after = forms.CharField(required=False, max_length=50, widget=forms.HiddenInput)

    def __init__(self, data: Any = None, *, choices: FilterChoices | None = None) -> None:
        super().__init__(data)
        self.choices = choices or FilterChoices()
        self._set_choices("endpoint", self.choices.endpoints)
        self._set_choices("state_machine", self.choices.state_machines)
        self._set_choices("account", self.choices.accounts)
        self._set_choices("region", [(r, r) for r in self.choices.regions])

    def _set_choices(self, name: str, choices: list[tuple[Any, str]]) -> None:
        widget = self.fields[name].widget
        assert isinstance(widget, forms.Select)
        widget.choices = _picker(choices, self.data.get(name) if self.is_bound else None)

    @cached_property
    def options(self) -> dict[str, list[tuple[str, str, bool]]]:
        """(value, label, selected) per select, for templates to loop over.

        Django's own widget rendering runs a template per <option>; with hundreds of endpoints
        that was most of the page's time, so the list page draws its selects itself.
        """
        result = {}
        for name in ("endpoint", "state_machine", "account", "region", "category", "sort"):
            widget = self.fields[name].widget
            assert isinstance(widget, forms.Select)
            current = str(self.data.get(name, "")) if self.is_bound else ""
            result[name] = [(str(v), str(label), str(v) == current) for v, label in widget.choices]
        return result

    def clean_connection(self) -> str:
        value: str = self.cleaned_data.get("connection", "").strip()
        if value and not is_connection_arn(value):
            raise forms.ValidationError(
                "Not an EventBridge connection ARN "
                "(arn:aws:events:<region>:<account>:connection/<name>/<id>)."
            )
        return value

    def clean_status(self) -> str:
        value: str = self.cleaned_data.get("status", "").strip().lower()
        if value and not STATUS.match(value):
            raise forms.ValidationError(
                "Use a status code (e.g. 503), a class (e.g. 5xx) or 'none' (no response)."
            )
        return value

    def clean_view(self) -> str:
        return self.cleaned_data.get("view") or "executions"

    def clean_after(self) -> Cursor | None:
        # `sort` and `view` are declared before `after`, so they are already cleaned (or
        # absent if invalid). The executions view always pages on the start time.
        sort = self.cleaned_data.get("sort") or DEFAULT_SORT
        executions = self.cleaned_data.get("view", "executions") == "executions"
        by_time = executions or sort.lstrip("-") != "duration"
        return clean_cursor(self.cleaned_data.get("after", ""), by_time=by_time)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        since, until = data.get("since"), data.get("until")
        if since and until and until <= since:
            self.add_error("until", "'To' must be after 'From'.")
        return data

    @property
    def ordering(self) -> str:
        sort = str(self.cleaned_data.get("sort") or DEFAULT_SORT)
        if self.cleaned_data.get("view") == "executions" and sort.lstrip("-") == "duration":
            return DEFAULT_SORT  # executions sort by start time only (see the sort label)
        return sort

    def active_filters(self) -> dict[str, str]:
        """Non-empty filters as raw strings (for links that keep the filters, minus the cursor)."""
        return {
            name: str(self.data[name])
            for name in self.fields
            if name != "after" and self.data.get(name) not in (None, "")
        }


ANY_GROUP_STATUS = "all"
GROUP_STATUSES = [*GroupStatus.choices, (ANY_GROUP_STATUS, "All")]


GROUP_SORTS = {
    "last_seen": "Last seen",
    "count": "Most failures",
    "trend": "Rising (last 24 h vs the 24 h before)",
}


class GroupFilterForm(forms.Form):
    """Filters of the failure-groups list (open groups first, like an issue tracker)."""

    status = forms.ChoiceField(choices=GROUP_STATUSES, required=False)
    category = forms.ChoiceField(choices=[("", "Any"), *Category.choices], required=False)
    q = forms.CharField(required=False, max_length=200, label="Title contains")
    sort = forms.ChoiceField(choices=list(GROUP_SORTS.items()), required=False, label="Sort")
    after = forms.CharField(required=False, max_length=50, widget=forms.HiddenInput)

    def clean_sort(self) -> str:
        return self.cleaned_data.get("sort") or "last_seen"

    def clean_after(self) -> Cursor | None:
        # Declared after `sort`, so the sort is known: only last-seen cursors hold a time.
        by_time = self.cleaned_data.get("sort", "last_seen") == "last_seen"
        return clean_cursor(self.cleaned_data.get("after", ""), by_time=by_time)

    def active_filters(self) -> dict[str, str]:
        return {
            name: str(self.data[name])
            for name in ("status", "category", "q", "sort")
            if self.data.get(name) not in (None, "")
        }


class SnoozeForm(forms.Form):
    """How long a group stays silent (alerts): 1 hour to 30 days, 24 hours when not given."""

    hours = forms.IntegerField(required=False, min_value=1, max_value=720)
    # Instead of a time: silent until its failures of the last hour exceed WORSE_FACTOR × now's.
    until_worse = forms.BooleanField(required=False)
