"""What every page shares: account scoping, the HTMX check, rendering, the 400 for bad filters.

It sits in the lowest app that has pages (executions), so the executions pages and the pages on
top (dashboard) use one copy without an arrow pointing up.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.forms import Form
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.cache import patch_vary_headers

from connections.models import ACCOUNT_SECRET_FIELDS, AwsAccount
from executions import charts


def is_htmx(request: HttpRequest) -> bool:
    return bool(getattr(request, "htmx", False))


def visible_accounts(user: Any) -> QuerySet[AwsAccount]:
    # Account secrets are decrypted on load; pages never need them, so they are never fetched.
    return AwsAccount.objects.visible_to(user).defer(*ACCOUNT_SECRET_FIELDS)


def can_triage(user: Any) -> bool:
    """Changing a failure group (status, assignee, notes) changes what everyone sees, so it
    needs a permission."""
    return bool(user.is_staff or user.has_perm("executions.change_failuregroup"))


def render_page(
    request: HttpRequest, template: str, context: dict[str, Any], status: int = 200
) -> HttpResponse:
    """render() plus what every page needs: the category patterns the SVGs and badges use."""
    context.setdefault("styles", charts.all_styles())
    response = render(request, template, context, status=status)
    # The same URL answers a full page or an HTMX fragment; caches must keep them apart.
    patch_vary_headers(response, ("HX-Request",))
    return response


def bad_filters(request: HttpRequest, form: Form, *, title: str = "Invalid filter") -> HttpResponse:
    """400 with the form's errors: a bad query string is the user's to fix, not a server error."""
    template = "partials/bad_filters.html" if is_htmx(request) else "bad_filters.html"
    return render_page(request, template, {"form": form, "title": title}, status=400)
