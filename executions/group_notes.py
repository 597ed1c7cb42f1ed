"""Who is on a failure group and what they know: the assignee and free-text notes.

A module of its own beside views.py: the triage status actions live there; this is the one
form that edits the two fields people own (not the ones sync derives).
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.views.decorators.http import require_POST

from executions.models import FailureGroup
from executions.web import bad_filters, can_triage

MAX_NOTES = 10_000


def assignable_users(group: FailureGroup) -> QuerySet[Any]:
    """Active users who can see the group's account: nobody is assigned what they cannot open."""
    users = get_user_model().objects.filter(is_active=True)
    granted = Q(is_superuser=True) | Q(groups__aws_accounts=group.account_id)
    return users.filter(granted).distinct().order_by("username")


class UserChoiceField(forms.ModelChoiceField):  # type: ignore[type-arg]
    def label_from_instance(self, obj: Any) -> str:
        return str(obj.get_username())


class GroupNotesForm(forms.Form):
    assignee = UserChoiceField(
        queryset=get_user_model().objects.none(), required=False, empty_label="Nobody"
    )
    notes = forms.CharField(
        required=False,
        max_length=MAX_NOTES,
        strip=True,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="Findings, runbook links (http/https links become clickable).",
    )

    def __init__(self, group: FailureGroup, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["assignee"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = assignable_users(group)


def notes_form(group: FailureGroup) -> GroupNotesForm:
    return GroupNotesForm(group, initial={"assignee": group.assignee_id, "notes": group.notes})


@login_required
@require_POST
def group_notes(request: HttpRequest, pk: int) -> HttpResponse:
    group = get_object_or_404(FailureGroup.objects.visible_to(request.user), pk=pk)
    if not can_triage(request.user):
        raise PermissionDenied("You may not change failure groups.")
    form = GroupNotesForm(group, request.POST)
    if not form.is_valid():
        return bad_filters(request, form, title="Invalid notes")
    # Only these two columns: a concurrent sync updating counts loses nothing.
    FailureGroup.objects.filter(pk=group.pk).update(
        assignee=form.cleaned_data["assignee"], notes=form.cleaned_data["notes"]
    )
    messages.success(request, "Assignee and notes saved.")
    return HttpResponseRedirect(group.get_absolute_url())
