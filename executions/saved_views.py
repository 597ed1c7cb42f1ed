"""Saved views: named filter sets of the executions page, a user's own or shared.

A view is only a query string. It is checked with the page's own form when saved (so a saved
view opens without a 400) and stored as the form's active filters, cursor dropped. Sharing lists
it to the users who can see one of the accounts it was saved over; opening it goes through the
page, which applies the viewer's visible accounts, so a shared view never widens access.
"""

from __future__ import annotations

from typing import Any, cast
from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from executions.forms import AttemptFilterForm
from executions.models import SavedView
from executions.views import filter_choices, scoped_account_ids
from executions.web import bad_filters, render_page, visible_accounts

MAX_VIEWS_PER_USER = 100


def views_for(user: Any) -> QuerySet[SavedView]:
    """The user's own views, and the shared ones over an account the user can see."""
    own = Q(owner=user)
    shared = Q(shared=True, accounts__in=visible_accounts(user).values("pk"))
    ids = SavedView.objects.filter(own | shared).values("pk")
    return SavedView.objects.filter(pk__in=ids).select_related("owner").order_by("name", "id")


class SavedViewForm(forms.Form):
    name = forms.CharField(max_length=100, strip=True)
    querystring = forms.CharField(
        max_length=2000, required=False, widget=forms.HiddenInput, strip=True
    )
    shared = forms.BooleanField(
        required=False, help_text="Listed to everyone who can see these accounts."
    )

    def __init__(self, user: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user
        self.filters: AttemptFilterForm | None = None

    def clean_querystring(self) -> str:
        raw: str = self.cleaned_data.get("querystring", "").lstrip("?")
        filters = AttemptFilterForm(QueryDict(raw), choices=filter_choices(self.user))
        if not filters.is_valid():
            problems = "; ".join(
                f"{k}: {' '.join(str(e) for e in v)}" for k, v in filters.errors.items()
            )
            raise forms.ValidationError(f"These filters are not valid: {problems}")
        self.filters = filters
        return urlencode(filters.active_filters())


@login_required
@require_http_methods(["GET", "POST"])
def saved_view_list(request: HttpRequest) -> HttpResponse:
    form = SavedViewForm(request.user, request.POST or None)
    if request.method == "POST":
        if not form.is_valid():
            return bad_filters(request, form, title="Invalid saved view")
        return _save(request, form)
    context = {"views": list(views_for(request.user)), "form": form}
    return render_page(request, "executions/saved_views.html", context)


def _save(request: HttpRequest, form: SavedViewForm) -> HttpResponse:
    assert form.filters is not None
    if SavedView.objects.filter(owner_id=request.user.pk).count() >= MAX_VIEWS_PER_USER:
        form.add_error(None, f"At most {MAX_VIEWS_PER_USER} saved views per user.")
        return bad_filters(request, form, title="Invalid saved view")
    data = form.cleaned_data
    try:
        with transaction.atomic():
            view = SavedView.objects.create(
                owner=cast(User, request.user),  # login_required: never anonymous
                name=data["name"],
                querystring=data["querystring"],
                shared=data["shared"],
            )
            view.accounts.set(scoped_account_ids(form.filters.cleaned_data, form.filters.choices))
    except IntegrityError:  # the unique (owner, name): a second save of the same name
        form.add_error("name", "You already have a saved view with this name.")
        return bad_filters(request, form, title="Invalid saved view")
    messages.success(request, f"Saved view “{view.name}” saved.")
    return HttpResponseRedirect(reverse("executions:saved_views"))


@login_required
@require_POST
def saved_view_delete(request: HttpRequest, pk: int) -> HttpResponse:
    # Only the owner deletes; anyone else gets the 404 of a view that is not theirs.
    view = get_object_or_404(SavedView, pk=pk, owner_id=request.user.pk)
    view.delete()
    messages.success(request, f"Saved view “{view.name}” deleted.")
    return HttpResponseRedirect(reverse("executions:saved_views"))
