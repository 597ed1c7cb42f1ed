"""Forms of the operations pages: the redrive confirmation and the audit filter."""

from __future__ import annotations

import json
from typing import Any

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


class ReplayForm(forms.Form):
    """The replay confirmation, with the edits of "edit and replay". The input and the call's
    Parameters/Arguments are shown redacted; a value left as shown is sent as AWS has it."""

    state_input = forms.CharField(
        label="State input (JSON)", widget=forms.Textarea(attrs={"rows": 8}), max_length=262_144
    )
    arguments = forms.CharField(
        label="The state's Parameters / Arguments (JSON)",
        widget=forms.Textarea(attrs={"rows": 10}),
        required=False,
        max_length=262_144,
    )
    mock = forms.BooleanField(
        required=False,
        label="Mock: replay the stored failed response against Retry/Catch (no partner call)",
    )
    reveal = forms.BooleanField(
        required=False, label="Reveal secrets (shown once on the result, never stored)"
    )
    confirm = forms.BooleanField(
        required=True,
        label="Send this TestState request to AWS",
        error_messages={"required": "Tick the confirmation to replay."},
    )

    def __init__(self, *args: Any, may_reveal: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not may_reveal:
            del self.fields["reveal"]

    def _json(self, name: str) -> Any:
        text = self.cleaned_data.get(name) or ""
        try:
            return json.loads(text)
        except ValueError as exc:
            raise forms.ValidationError(f"Not valid JSON: {exc}") from exc

    def clean_state_input(self) -> Any:
        return self._json("state_input")

    def clean_arguments(self) -> Any:
        if not (self.cleaned_data.get("arguments") or "").strip():
            return None
        value = self._json("arguments")
        if not isinstance(value, dict):
            raise forms.ValidationError("The Parameters/Arguments must be a JSON object.")
        return value
