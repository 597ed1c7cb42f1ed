"""Every API error is JSON with a message: DRF's own, bad filters, and URLs that match nothing."""

from __future__ import annotations

from typing import Any

from django import forms
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler


class BadFilters(exceptions.APIException):
    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = "Invalid filter."

    def __init__(self, form: forms.Form, message: str = "Invalid filter.") -> None:
        super().__init__(message)
        self.errors = {name: [str(e) for e in errs] for name, errs in form.errors.items()}


def _message(detail: Any) -> str:
    if isinstance(detail, list) and detail:
        return _message(detail[0])
    if isinstance(detail, dict):
        return "Invalid input."
    return str(detail)


def handle(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, with its answer reshaped to {"message", "errors"?}."""
    response = exception_handler(exc, context)
    if response is None:
        return None  # not an API error: Django's handlers (and the 400 middleware) take it
    body: dict[str, Any] = {"message": _message(getattr(exc, "detail", response.data))}
    if response.status_code == status.HTTP_404_NOT_FOUND:
        # One wording for a missing object and another account's: neither confirms the other.
        body["message"] = "Not found."
    if isinstance(exc, BadFilters):
        body["errors"] = exc.errors
    elif isinstance(exc, exceptions.ValidationError) and isinstance(exc.detail, dict):
        body["errors"] = {k: [str(e) for e in v] for k, v in exc.detail.items()}
    response.data = body
    return response


@csrf_exempt  # it changes nothing; without this a POST to a wrong URL got Django's HTML 403
def not_found(request: HttpRequest, path: str = "") -> JsonResponse:
    """Any /api/ URL that names no resource."""
    return JsonResponse({"message": "No such API resource."}, status=404)
