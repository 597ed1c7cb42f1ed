"""Overview and sync-status pages."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from connections.models import AwsAccount


@login_required
def overview(request: HttpRequest) -> HttpResponse:
    accounts = AwsAccount.objects.visible_to(request.user)
    return render(request, "dashboard/overview.html", {"accounts": accounts})


@login_required
def sync_status(request: HttpRequest) -> HttpResponse:
    accounts = AwsAccount.objects.visible_to(request.user)
    return render(request, "dashboard/sync_status.html", {"accounts": accounts})
