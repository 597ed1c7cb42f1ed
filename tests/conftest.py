"""Shared fixtures: users with and without account grants, logged-in clients, a real browser.

Access model the fixtures mirror: a user sees an account when one of their groups is granted
it (`AwsAccount.groups`); superusers see everything. `viewer` sees `account` only; `outsider`
sees nothing; `triager` may also resolve/ignore failure groups; `operator` may start syncs.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from django.conf import settings as django_settings
from django.contrib.auth.models import Group, User
from django.test import Client

from connections.models import AwsAccount
from tests.factories import AwsAccountFactory, GroupFactory, UserFactory

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def pytest_configure(config: pytest.Config) -> None:
    # WhiteNoise warns that STATIC_ROOT (collectstatic's output) is missing; tests do not need it.
    config.addinivalue_line("filterwarnings", "ignore:No directory at:UserWarning")


@pytest.fixture(autouse=True)
def _plain_static_storage(settings: Any) -> None:
    """Serve static files without collectstatic's manifest (DEBUG is off in tests)."""
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture(autouse=True)
def _full_aws_quota_buckets() -> None:
    """Every test starts with the shared rate limiter's buckets full, as a new AWS account
    would. Buckets are per AWS account + endpoint (connections/ratelimit.py), so the session's
    sandbox is one AWS to them: without this, the syncs of every test before would have
    drained them and a later test would wait on their refill."""
    client = redis.Redis.from_url(
        django_settings.REDIS_URL, socket_timeout=5, socket_connect_timeout=5
    )
    try:
        keys = list(client.scan_iter("stepscope:quota:*", count=1000))
        if keys:
            client.delete(*keys)
    except redis.RedisError:
        pass  # no Redis: the limiter falls back to unpaced calls anyway
    finally:
        client.close()


# --- Accounts, groups, users ------------------------------------------------------------------


@pytest.fixture
def viewers(db: None) -> Group:
    return GroupFactory.create(name="viewers")


@pytest.fixture
def account(viewers: Group) -> AwsAccount:
    """The account the `viewer` may see."""
    return AwsAccountFactory.create(name="visible-account", groups=[viewers])


@pytest.fixture
def other_account(db: None) -> AwsAccount:
    """An account no fixture user (except superusers) is granted."""
    return AwsAccountFactory.create(
        name="hidden-account", groups=[GroupFactory.create(name="other-team")]
    )


@pytest.fixture
def viewer(viewers: Group, account: AwsAccount) -> User:
    return UserFactory.create(username="viewer", groups=[viewers])


@pytest.fixture
def outsider(db: None) -> User:
    """Logged in, but in no group that has an account."""
    return UserFactory.create(username="outsider")


@pytest.fixture
def triager(viewers: Group, account: AwsAccount) -> User:
    return UserFactory.create(
        username="triager", groups=[viewers], perms=["executions.change_failuregroup"]
    )


@pytest.fixture
def operator(viewers: Group, account: AwsAccount) -> User:
    return UserFactory.create(
        username="operator", groups=[viewers], perms=["connections.change_awsaccount"]
    )


@pytest.fixture
def staff(viewers: Group, account: AwsAccount) -> User:
    return UserFactory.create(username="staff", is_staff=True, groups=[viewers])


def _client_for(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def viewer_client(viewer: User) -> Client:
    return _client_for(viewer)


@pytest.fixture
def outsider_client(outsider: User) -> Client:
    return _client_for(outsider)


@pytest.fixture
def triager_client(triager: User) -> Client:
    return _client_for(triager)


@pytest.fixture
def operator_client(operator: User) -> Client:
    return _client_for(operator)


# --- Browser ----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Debian's Chromium through Playwright (never `playwright install`)."""
    if not Path(CHROMIUM).exists():
        # No PyPI package ships a browser and `playwright install` downloads one: on a machine
        # without Debian's Chromium the browser tests are skipped, with this reason in the
        # summary; CI installs Chromium and fails here rather than skip.
        message = f"{CHROMIUM} is missing: apt-get install -y chromium"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    # Playwright's sync API runs an event loop in this thread; Django refuses ORM calls from a
    # thread with a running loop unless told the code is not actually async.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class PageErrors(list[str]):
    """Console errors, page errors and dialogs seen by a page (CSP violations land here)."""


@pytest.fixture
def page(browser: Any, live_server: Any) -> Iterator[Any]:
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors = PageErrors()
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    def _dialog(dialog: Any) -> None:
        errors.append(f"dialog: {dialog.message}")
        dialog.dismiss()

    page.on("dialog", _dialog)
    page.errors = errors
    page.set_default_timeout(10_000)
    yield page
    context.close()


def log_in(page: Any, live_server: Any, user: User) -> None:
    """Give the browser a session for `user` without going through the form."""
    client = Client()
    client.force_login(user)
    cookie = client.cookies["sessionid"]
    page.context.add_cookies([{"name": "sessionid", "value": cookie.value, "url": live_server.url}])


@pytest.fixture
def viewer_page(page: Any, live_server: Any, viewer: User) -> Any:
    log_in(page, live_server, viewer)
    return page
