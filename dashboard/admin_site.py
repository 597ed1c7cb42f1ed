"""The project's admin site: Django's, with two of its site-wide views held to the admins' scope.

- Autocomplete takes any field name from the query string; a reverse relation (for example
  `?app_label=auth&model_name=group&field_name=aws_accounts`) passes Django's checks and then
  fails with an AttributeError, a 500 any staff user can trigger. Only forward relations have
  autocomplete widgets, so anything else is refused like any other malformed request (403).
- "View on site" (`/admin/r/<content type>/<id>/`) redirects for any row of any model, so it
  told a staff user which ids exist in other teams' accounts. It now answers only for rows the
  model's admin shows this user, and 404 otherwise, like the pages themselves.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.views.autocomplete import AutocompleteJsonView
from django.contrib.contenttypes.models import ContentType
from django.contrib.contenttypes.views import shortcut
from django.core.exceptions import ObjectDoesNotExist, PermissionDenied, ValidationError
from django.db.models import ForeignObjectRel, Model
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import URLPattern, URLResolver, path


class ForwardRelationAutocompleteView(AutocompleteJsonView):
    def process_request(self, request: HttpRequest) -> Any:
        # Not in django-stubs, but the documented extension point of the view.
        term, model_admin, source_field, to_field_name = super().process_request(request)  # type: ignore[misc]
        if isinstance(source_field, ForeignObjectRel):
            raise PermissionDenied
        return term, model_admin, source_field, to_field_name


class StepscopeAdminSite(admin.AdminSite):
    def autocomplete_view(self, request: HttpRequest) -> HttpResponse:
        response = ForwardRelationAutocompleteView.as_view(admin_site=self)(request)
        assert isinstance(response, HttpResponse)  # a JsonResponse; the stubs say less
        return response

    def get_urls(self) -> list[URLResolver | URLPattern]:
        return [
            path(
                "r/<path:content_type_id>/<path:object_id>/",
                self.admin_view(self.view_on_site),
                name="view_on_site",
            )
            if getattr(url, "name", None) == "view_on_site"
            else url
            for url in super().get_urls()
        ]

    def view_on_site(self, request: HttpRequest, content_type_id: str, object_id: str) -> Any:
        if self.viewable_object(request, content_type_id, object_id) is None:
            raise Http404("No such object.")
        return shortcut(request, content_type_id, object_id)

    def viewable_object(
        self, request: HttpRequest, content_type_id: str, object_id: str
    ) -> Model | None:
        """The row, if its model has an admin here that shows it to this user."""
        try:
            model = ContentType.objects.get(pk=content_type_id).model_class()
            model_admin = self._registry.get(model) if model is not None else None
            if model_admin is None:
                return None
            obj: Model | None = model_admin.get_queryset(request).filter(pk=object_id).first()
        except (ObjectDoesNotExist, ValueError, ValidationError):
            return None
        return obj if obj is not None and model_admin.has_view_permission(request, obj) else None
