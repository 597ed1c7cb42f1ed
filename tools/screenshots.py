"""Render every dashboard page into docs/screenshots/ with Debian's Chromium (`make screenshots`).

By default the pages show the demo's day, as `make demo` makes it: a sandbox started in this
process runs sandbox.day's plan, the sandbox is registered as an account and synced, all in a
throwaway database (`<db>_screenshots`) dropped afterwards, so the pictures are the same kind of
day on every machine (timestamps are relative to now). `--existing --username NAME`
photographs the configured database instead (e.g. while `make demo` runs) as that user.

    .venv/bin/python tools/screenshots.py [--out docs/screenshots] [--existing --username NAME]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
MAX_HEIGHT = 1800
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def setup_django() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")
    # Static files straight from static/ (no collectstatic manifest needed for a local server).
    os.environ.setdefault("STATIC_MANIFEST", "0")
    # Playwright's sync API keeps an event loop in this thread; the ORM calls here are sync.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    import django

    django.setup()


@contextmanager
def throwaway_database() -> Iterator[None]:
    from django.conf import settings
    from django.test.utils import setup_databases, teardown_databases

    default = settings.DATABASES["default"]
    default.setdefault("TEST", {})
    default["TEST"]["NAME"] = f"{Path(str(default['NAME'])).name}_screenshots"
    old = setup_databases(verbosity=0, interactive=False)
    try:
        yield
    finally:
        teardown_databases(old, verbosity=0)


@contextmanager
def live_server() -> Iterator[str]:
    from django.contrib.staticfiles.handlers import StaticFilesHandler
    from django.test.testcases import LiveServerThread

    # The staticfiles handler finds files in static/ itself, as runserver does.
    server = LiveServerThread("127.0.0.1", StaticFilesHandler, port=0)
    server.daemon = True
    server.start()
    server.is_ready.wait()
    if server.error:
        raise server.error
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.terminate()


def session_cookie(username: str) -> str:
    from django.contrib.auth import get_user_model
    from django.test import Client

    client = Client()
    client.force_login(get_user_model().objects.get(username=username))
    return str(client.cookies["sessionid"].value)


def demo_pages(per_hour: int) -> tuple[str, list[tuple[str, str]]]:
    """Run the demo's day on a sandbox, sync it and list (name, path) of the pages to photograph."""
    from django.contrib.auth.models import Group, Permission, User
    from django.core.management import call_command
    from django.urls import reverse

    from connections.models import AwsAccount, Connection, Endpoint
    from executions.models import Execution, FailureGroup
    from executions.sync import sync_account_by_id
    from sandbox import day
    from sandbox.server import start_sandbox

    sandbox = start_sandbox(host="127.0.0.1", port=0)
    try:
        print(f"running the demo's day on {sandbox.endpoint_url} ({per_hour} an hour)…")
        day.run(sandbox.endpoint_url, region=sandbox.region, per_hour=per_hour)
        with tempfile.NamedTemporaryFile("w", suffix=".txt") as secret:
            secret.write("sandbox-secret-access-key-0000000000\n")
            secret.flush()
            call_command(
                "register_account",
                name="sandbox",
                account_id="123456789012",
                region=sandbox.region,
                access_key_id="AKIAIOSFODNN7EXAMPLE",
                secret_access_key_file=secret.name,
                endpoint_url=sandbox.endpoint_url,
            )
        account = AwsAccount.objects.get(name="sandbox")
        summary = sync_account_by_id(account.pk)
        print(f"synced: {summary['status']}, {summary['attempts_added']} attempts")
    finally:
        sandbox.stop()
    on_call = Group.objects.create(name="on-call")
    account.groups.add(on_call)
    user = User.objects.create_user("demo", is_staff=True)
    user.groups.add(on_call)
    for perm in ("executions.change_failuregroup", "connections.change_awsaccount"):
        app, codename = perm.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app, codename=codename)
        )
    webhook = Connection.objects.get(name="sandbox-partner-apikey")
    crm = Connection.objects.get(name="sandbox-crm-rotated")
    slow = Endpoint.objects.get(url_template__endswith="/slow")
    execution = Execution.objects.filter(name__startswith="day-hook-503-").first()
    group = FailureGroup.objects.order_by("-count").first()
    assert execution is not None and group is not None, "the day has failures"
    return "demo", [
        ("overview", reverse("dashboard:overview")),
        ("executions", reverse("executions:list")),
        ("executions-by-connection", reverse("executions:list") + f"?connection={webhook.arn}"),
        ("executions-bad-filter", reverse("executions:list") + "?status=6xx&since=yesterday"),
        ("execution", reverse("executions:detail", args=[execution.pk])),
        ("groups", reverse("executions:groups")),
        ("group", reverse("executions:group", args=[group.pk])),
        ("connections", reverse("connections:list")),
        ("connection-deauthorized", reverse("connections:detail", args=[crm.pk])),
        ("connection", reverse("connections:detail", args=[webhook.pk])),
        ("endpoint", reverse("connections:endpoint", args=[slow.pk])),
        ("sync", reverse("dashboard:sync_status")),
    ]


def existing_pages() -> list[tuple[str, str]]:
    """The same pages for whatever the configured database holds (first object of each kind)."""
    from django.urls import reverse

    from connections.models import Connection, Endpoint
    from executions.models import Execution, FailureGroup

    pages = [
        ("overview", reverse("dashboard:overview")),
        ("executions", reverse("executions:list")),
        ("groups", reverse("executions:groups")),
        ("connections", reverse("connections:list")),
        ("sync", reverse("dashboard:sync_status")),
    ]
    firsts: list[tuple[str, Any, str]] = [
        ("execution", Execution.objects.failing().first(), "executions:detail"),
        ("group", FailureGroup.objects.first(), "executions:group"),
        ("connection", Connection.objects.first(), "connections:detail"),
        ("endpoint", Endpoint.objects.first(), "connections:endpoint"),
    ]
    pages += [(name, reverse(view, args=[obj.pk])) for name, obj, view in firsts if obj]
    return pages


def photograph(base_url: str, cookie: str, pages: list[tuple[str, str]], out: Path) -> None:
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(
            base_url=base_url, viewport={"width": 1280, "height": 900}, device_scale_factor=1
        )
        page = context.new_page()
        page.goto("/login/")
        page.screenshot(path=str(out / "login.png"))
        print(f"  {out / 'login.png'}")
        context.add_cookies([{"name": "sessionid", "value": cookie, "url": base_url}])
        for name, path in pages:
            page.goto(path)
            if name == "execution":
                page.locator("details.timeline summary").click()
            target = out / f"{name}.png"
            # Long lists are cut at MAX_HEIGHT: the top of a page shows what it is about, and
            # the committed images stay small.
            height = min(int(page.evaluate("document.documentElement.scrollHeight")), MAX_HEIGHT)
            page.screenshot(
                path=str(target),
                full_page=True,
                clip={"x": 0, "y": 0, "width": 1280, "height": height},
            )
            print(f"  {target}")
        browser.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--existing", action="store_true", help="use the configured database")
    parser.add_argument("--username", default="", help="who to log in as with --existing")
    parser.add_argument("--per-hour", type=int, default=8, help="the day's everyday executions")
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        print(f"{CHROMIUM} is missing: apt-get install -y chromium", file=sys.stderr)
        return 2
    if args.existing and not args.username:
        parser.error("--existing needs --username")
    setup_django()
    if args.existing:
        with live_server() as url:
            photograph(url, session_cookie(args.username), existing_pages(), args.out)
        return 0
    with throwaway_database():
        username, pages = demo_pages(args.per_hour)
        with live_server() as url:
            photograph(url, session_cookie(username), pages, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
