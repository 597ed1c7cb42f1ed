"""Filters of the API lists that have no page of their own; the others reuse the pages' forms
(AttemptFilterForm, GroupFilterForm, WindowForm, SyncFilterForm) so a filter means one thing.

Fields are built from the pages' field types (RowIdField, UtcDateTimeField, REGION, the keyset
Cursor), so bounds and error messages match the pages'.
"""

from __future__ import annotations

from typing import Any

from django import forms

from connections.choices import ConnectionState
from dashboard.forms import SyncFilterForm, WindowForm
from executions.choices import Category, ExecutionStatus, GroupStatus
from executions.forms import (
    REGION,
    AttemptFilterForm,
    Cursor,
    RowIdField,
    UtcDateTimeField,
    clean_cursor,
)


def _region() -> forms.RegexField:
    return forms.RegexField(
        regex=REGION,
        required=False,
        max_length=32,
        error_messages={"invalid": "Not an AWS region name (e.g. eu-west-1)."},
    )


class _After(forms.Form):
    """The keyset cursor of lists ordered by a time (or, with by_time False, an id)."""

    by_time = True
    after = forms.CharField(required=False, max_length=50)

    def clean_after(self) -> Cursor | None:
        return clean_cursor(self.cleaned_data.get("after", ""), by_time=self.by_time)


class ExecutionFilterForm(_After):
    """Executions by where they ran and, like the attempts list, by what failed in them
    (`connection`, `endpoint`, `category`: executions with a failing attempt that matches)."""

    connection = AttemptFilterForm.base_fields["connection"]
    endpoint = RowIdField(required=False)
    category = forms.ChoiceField(choices=[("", "Any"), *Category.choices], required=False)
    account = RowIdField(required=False)
    state_machine = RowIdField(required=False)
    region = _region()
    status = forms.ChoiceField(choices=[("", "Any"), *ExecutionStatus.choices], required=False)
    since = UtcDateTimeField(required=False, label="Started from (UTC)")
    until = UtcDateTimeField(required=False, label="Started before (UTC)")
    q = AttemptFilterForm.base_fields["q"]  # the same search, the same bounds
    # The attempts list's own check, so an ARN is valid in the same cases on both.
    clean_connection = AttemptFilterForm.clean_connection

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        since, until = data.get("since"), data.get("until")
        if since and until and until <= since:
            self.add_error("until", "'until' must be after 'since'.")
        return data


class ConnectionFilterForm(WindowForm, _After):
    """The connections list's window (failures counted in it) plus where and which state."""

    by_time = False
    account = RowIdField(required=False)
    region = _region()
    state = forms.ChoiceField(choices=[("", "Any"), *ConnectionState.choices], required=False)


class EndpointFilterForm(_After):
    by_time = False
    account = RowIdField(required=False)
    q = forms.CharField(required=False, max_length=200, label="URL template contains")


class SyncRunFilterForm(SyncFilterForm, _After):
    pass


class AlertRuleFilterForm(_After):
    by_time = False
    account = RowIdField(required=False, label="Watches this account")
    q = forms.CharField(required=False, max_length=100, label="Name contains")


class DeliveryLogForm(_After):
    outcome = forms.ChoiceField(
        required=False,
        choices=[("", "any"), ("sent", "sent"), ("failed", "failed")],
        label="Tries that sent, or that failed",
    )


class GroupStatusForm(forms.Form):
    """The body of a failure group's status change."""

    status = forms.ChoiceField(choices=GroupStatus.choices)
