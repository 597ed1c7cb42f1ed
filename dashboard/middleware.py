"""Bad input is the user's to fix: a 400 that says what is wrong, never a 500.

Forms validate what each page reads; this middleware handles what no form sees:

- NUL characters and lone surrogates in any query-string or form value, key or URL part.
  PostgreSQL text cannot hold NUL and a lone surrogate cannot be encoded as UTF-8, so such a
  value can never match anything; it is refused before any view runs, the admin included.
- Cookies holding them are dropped, so a forged session cookie is simply no session.
- Admin changelist lookups that Django passes to the database unchecked (`__regex`,
  `__range`, `__year`, JSON key tests…): the admin's own filters never produce them.
- A `DataError` from the database while answering (a value PostgreSQL refuses, SQLSTATE
  class 22) is the request's fault, not the server's: it becomes a 400 too, and is logged.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from django.contrib.admin.options import IS_FACETS_VAR, IS_POPUP_VAR, TO_FIELD_VAR
from django.contrib.admin.views.main import ALL_VAR, ERROR_FLAG, ORDER_VAR, PAGE_VAR, SEARCH_VAR
from django.db import DataError, models
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from executions import logs

logger = logging.getLogger("stepscope.bad_input")

# A NUL, or a UTF-16 surrogate that is not half of a pair (Python strings can hold them).
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")

# Lookups the admin's list filters generate (exact values, date ranges, emptiness), plus the
# text and JSON containment searches whose values Django prepares itself. Any other lookup in
# a changelist URL (regex, range, year, has_key…) reaches the database unprepared.
ADMIN_LOOKUPS = frozenset(
    {"exact", "iexact", "isnull", "isempty", "gt", "gte", "lt", "lte", "in", "contains"}
    | {"icontains", "startswith", "istartswith", "endswith", "iendswith"}
)
KNOWN_LOOKUPS = frozenset(
    name
    for field in (models.CharField, models.IntegerField, models.DateTimeField, models.JSONField)
    for name in field.get_lookups()
) | {"isempty"}
CHANGELIST_VARS = frozenset(
    {ALL_VAR, ERROR_FLAG, IS_FACETS_VAR, IS_POPUP_VAR, ORDER_VAR, PAGE_VAR, SEARCH_VAR}
    | {TO_FIELD_VAR, "_changelist_filters"}
)


def unstorable(values: Iterable[Any]) -> bool:
    return any(isinstance(v, str) and UNSTORABLE.search(v) for v in values)


def bad_request(request: HttpRequest, message: str) -> HttpResponse:
    match = request.resolver_match
    if match is not None and match.app_name == "api":
        # The API's errors are JSON with a message, like its own (api/errors.py).
        return JsonResponse({"message": message}, status=400)
    template = "partials/bad_request.html" if request.headers.get("HX-Request") else "400.html"
    return render(request, template, {"message": message}, status=400)


def unstorable_input(request: HttpRequest, view_kwargs: dict[str, Any]) -> str | None:
    """What in the request holds a NUL or a lone surrogate, if anything does."""
    for source, data in (("query parameter", request.GET), ("form field", request.POST)):
        for key, values in data.lists():
            if unstorable([key, *values]):
                shown = UNSTORABLE.sub("�", key)[:80]
                return f"The {source} “{shown}” contains a NUL character or a broken character."
    if unstorable(view_kwargs.values()):
        return "The address contains a NUL character or a broken character."
    return None


def unchecked_admin_lookup(request: HttpRequest, view_func: Callable[..., Any]) -> str | None:
    """A changelist filter parameter whose lookup the admin would pass on unprepared."""
    match = request.resolver_match
    if not getattr(view_func, "model_admin", None) or not match:
        return None
    # Django looks up an empty `_to_field` as a field named "" on the object pages.
    if request.GET.get(TO_FIELD_VAR, None) == "" or request.POST.get(TO_FIELD_VAR, None) == "":
        return f"“{TO_FIELD_VAR}” needs a field name."
    if not (match.url_name or "").endswith("_changelist"):
        return None
    for key in request.GET:
        lookup = key.rsplit("__", 1)[-1]
        if key not in CHANGELIST_VARS and lookup in KNOWN_LOOKUPS - ADMIN_LOOKUPS:
            return (
                f"The admin cannot filter with “{key[:80]}”: its lists accept exact values, "
                "comparisons (gt, gte, lt, lte), in, isnull and text containment only."
            )
    return None


class BadInputMiddleware:
    """Place it before SessionMiddleware: it cleans the cookies the session is read from."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        cookies = request.COOKIES
        if unstorable([*cookies, *cookies.values()]):
            request.COOKIES = {k: v for k, v in cookies.items() if not unstorable([k, v])}
        return self.get_response(request)

    def process_view(
        self,
        request: HttpRequest,
        view_func: Callable[..., Any],
        view_args: tuple[Any, ...],
        view_kwargs: dict[str, Any],
    ) -> HttpResponse | None:
        # process_view runs after every middleware's request phase, so the 400 page has the
        # user, the CSP nonce and the messages like any other page.
        problem = unstorable_input(request, view_kwargs) or unchecked_admin_lookup(
            request, view_func
        )
        return bad_request(request, problem) if problem else None

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, DataError):
            return None
        # Logged with the traceback: a DataError from our own writes would be a bug to fix.
        logger.warning(
            "database refused a value from %s %s",
            request.method,
            request.path,
            exc_info=exception,
        )
        return bad_request(
            request, "The database refused a value in this request (out of range or malformed)."
        )


# A caller's (proxy's) id is kept if it is a plain token; anything else is replaced, so a log
# line never carries text a client made up beyond these characters.
REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


class RequestIdMiddleware:
    """Binds the request id (X-Request-Id from the proxy, else a new one) to every log line of
    the request and to the tasks it queues, and returns it in the X-Request-Id header."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        given = request.headers.get("X-Request-Id", "")
        rid = given if REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        request.request_id = rid  # type: ignore[attr-defined]  # for Django's own request logs
        with logs.bound(request_id=rid):
            response = self.get_response(request)
        response["X-Request-Id"] = rid
        return response
