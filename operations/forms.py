"""Forms of the operations pages: the redrive confirmation and the audit filter."""

from __future__ import annotations

from django import forms

from operations.choices import ActionKind, ActionOutcome


class RedriveConfirmForm(forms.Form):
    """The POST after the dry run: the user ticked that they mean it."""

    confirm = forms.BooleanField(
        required=True,
        label="I have read the dry run and want AWS to redrive this execution",
        error_messages={"required": "Tick the confirmation to redrive."},
    )


class AuditFilterForm(forms.Form):
    kind = forms.ChoiceField(choices=[("", "All"), *ActionKind.choices], required=False)
    outcome = forms.ChoiceField(choices=[("", "All"), *ActionOutcome.choices], required=False)
