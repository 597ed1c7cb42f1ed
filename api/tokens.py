"""The user's own API tokens page: create (shown once), list with last use, revoke."""

from __future__ import annotations

from typing import cast

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.views.decorators.http import require_POST

from api.models import ApiToken
from executions.web import render_page


class TokenForm(forms.Form):
    name = forms.CharField(max_length=100, strip=True, help_text="What the token is for.")


@login_required
def token_list(request: HttpRequest) -> HttpResponse:
    form = TokenForm(request.POST if request.method == "POST" else None)
    created = ""
    status = 200
    if request.method == "POST":
        if form.is_valid():
            _, created = ApiToken.issue(cast(User, request.user), form.cleaned_data["name"])
            form = TokenForm()
        else:
            status = 400
    context = {
        "form": form,
        "created": created,
        "tokens": ApiToken.objects.filter(user=cast(User, request.user)),
    }
    response = render_page(request, "api/tokens.html", context, status=status)
    # The new token is on this page only: no cache may keep it.
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_POST
def token_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    # Only the user's own tokens: another user's is a 404, as if it did not exist.
    token = get_object_or_404(ApiToken.objects.filter(user=cast(User, request.user)), pk=pk)
    token.revoke()
    messages.success(request, f"Token “{token.name}” revoked.")
    return HttpResponseRedirect(reverse("tokens:list"))
