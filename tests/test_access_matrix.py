"""Access matrix over every URL pattern the project serves (issue 8, promise 5).

Every route from `get_resolver()` must be classified below; a new URL that is not fails
`test_every_url_is_in_the_matrix`, so nobody adds a page without deciding who may see it.

- anonymous → redirect to the login page;
- logged in without a grant for the object's account → 404 (never a 403 that confirms it exists);
- POST actions → CSRF enforced, permission checked (403 when the user may see but not act);
- the admin → staff only.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from alerts.models import AlertRule
from connections.models import AwsAccount
from operations.models import OperatorAction, RedriveBatch
from tests.factories import (
    ConnectionFactory,
    EndpointFactory,
    ExecutionFactory,
    FailureGroupFactory,
    HttpAttemptFactory,
    StateMachineFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


@dataclass(frozen=True)
class Route:
    name: str  # "namespace:name", or "" for unnamed patterns
    pattern: str


def _walk(
    patterns: list[Any], prefix: str = "", namespaces: tuple[str, ...] = ()
) -> Iterator[Route]:
    for entry in patterns:
        if isinstance(entry, URLResolver):
            spaces = (*namespaces, entry.namespace) if entry.namespace else namespaces
            yield from _walk(entry.url_patterns, prefix + str(entry.pattern), spaces)
        elif isinstance(entry, URLPattern):
            name = ":".join((*namespaces, entry.name)) if entry.name else ""
            yield Route(name, prefix + str(entry.pattern))


def all_routes() -> list[Route]:
    return list(_walk(get_resolver().url_patterns))


# --- The matrix -------------------------------------------------------------------------------

PUBLIC = {"login", "logout", "sso_login", "sso_callback", "admin:login", "admin:logout"}
# Pages that list what the user may see: 200 for anyone logged in, scoped content.
LIST_PAGES = {
    "dashboard:overview",
    "dashboard:sync_status",
    "executions:list",
    "executions:export",
    "executions:groups",
    "connections:list",
    "alerts:rules",
    "executions:saved_views",
    "operations:audit",
}
# Pages of one object: the value names the object (see `objects` below).
OBJECT_PAGES = {
    "executions:detail": "execution",
    "executions:group": "group",
    "connections:detail": "connection",
    "connections:endpoint": "endpoint",
    "alerts:rule": "rule",
    # The group page's redrive figures (HTMX): whoever sees the group.
    "operations:group_progress": "group",
}
# POST actions: (object, permission that allows it).
ACTIONS = {
    "dashboard:sync_now": ("account", "connections.change_awsaccount"),
    "executions:group_resolve": ("group", "executions.change_failuregroup"),
    "executions:group_ignore": ("group", "executions.change_failuregroup"),
    "executions:group_reopen": ("group", "executions.change_failuregroup"),
    "executions:group_notes": ("group", "executions.change_failuregroup"),
    "alerts:test": ("rule", "alerts.change_alertrule"),
    "executions:group_acknowledge": ("group", "executions.change_failuregroup"),
    "executions:group_snooze": ("group", "executions.change_failuregroup"),
    "executions:group_mute": ("group", "executions.change_failuregroup"),
    "executions:group_unmute": ("group", "executions.change_failuregroup"),
}
# Form pages (GET shows the form, POST saves): (object or None, permission to open them).
FORM_PAGES = {
    "alerts:new": (None, "alerts.add_alertrule"),
    "alerts:edit": ("rule", "alerts.change_alertrule"),
    # The dry run; without an operator role it says what to configure (tested below).
    "operations:redrive": ("execution", "operations.redrive_execution"),
    "operations:group_redrive": ("group", "operations.redrive_execution"),
    # The executions page's filter in the query string; scoped to the visible accounts (below).
    "operations:filter_redrive": (None, "operations.redrive_execution"),
    # The replay confirm page of one attempt; without an operator role it says what to
    # configure (below) and asks AWS nothing.
    "operations:replay": ("attempt", "operations.replay_attempt"),
}
# Rows of one user: the actor and admins (the audit permission) read them, within the grant.
OWN_OBJECT_PAGES = {"operations:action": "action", "operations:batch": "batch"}
# POSTs on such rows: the actor (or an auditor) with the permission; others get the 404.
OWN_ACTIONS = {"operations:batch_cancel": ("batch", "operations.redrive_execution")}
# The REST API (issue 19): tokens or the session; no credentials → 401 JSON, never a redirect.
API_PUBLIC = {"api:schema", "api:docs", "api:not_found"}
API_LISTS = {
    "api:attempts",
    "api:executions",
    "api:groups",
    "api:connections",
    "api:endpoints",
    "api:sync_runs",
    "api:alert_rules",
}
API_OBJECTS = {
    "api:attempt": "attempt",
    "api:execution": "execution",
    "api:group": "group",
    "api:connection": "connection",
    "api:endpoint": "endpoint",
    "api:alert_rule": "rule",
    "api:alert_rule_deliveries": "rule",
}
API_ACTIONS = {"api:group_status": ("group", "executions.change_failuregroup")}
# The user's own API tokens: only ever their own (tests/api/test_tokens.py).
TOKEN_PAGES = {"tokens:list", "tokens:revoke"}
# Signed links in alert messages: a confirm page for the group the token names, scoped like
# the group page, needing the group permission (below; tests/alerts/test_action_links.py).
SIGNED_LINK_PAGES = {"alerts:act": ("group", "executions.change_failuregroup")}
# POST actions on the user's own rows: someone else's row is a 404 (tests/executions/
# test_saved_views.py for the saving and sharing).
OWN_VIEW_ACTIONS = {"executions:saved_view_delete"}
ROUTES = all_routes()
ADMIN = [r for r in ROUTES if r.name.startswith("admin:") and r.name not in PUBLIC]


def test_every_url_is_in_the_matrix() -> None:
    known = PUBLIC | LIST_PAGES | set(OBJECT_PAGES) | set(ACTIONS) | set(FORM_PAGES)
    known |= API_PUBLIC | API_LISTS | set(API_OBJECTS) | set(API_ACTIONS) | TOKEN_PAGES
    known |= set(SIGNED_LINK_PAGES)
    known |= OWN_VIEW_ACTIONS
    known |= set(OWN_OBJECT_PAGES) | set(OWN_ACTIONS)
    unclassified = [r for r in ROUTES if r.name not in known and not r.pattern.startswith("admin/")]
    assert not unclassified, (
        "Add these URLs to tests/test_access_matrix.py (who may see them?): "
        + ", ".join(f"{r.name or '(unnamed)'} {r.pattern}" for r in unclassified)
    )


def _objects_in(account: AwsAccount) -> dict[str, Any]:
    machine = StateMachineFactory.create(account=account)
    group = FailureGroupFactory.create(account=account)
    attempt = HttpAttemptFactory.create(
        execution=ExecutionFactory.create(state_machine=machine),
        connection=ConnectionFactory.create(account=account),
        endpoint=EndpointFactory.create(account=account),
        failure_group=group,
    )
    # A rule without a channel: "Send test alert" answers without sending anything.
    # One per account (names are unique): callers that make several object sets share it.
    rule, _ = AlertRule.objects.get_or_create(name=f"rule-{account.name}", events=["new_group"])
    rule.accounts.set([account])
    action = OperatorAction.objects.create(
        kind="redrive",
        username="someone",
        account=account,
        execution=attempt.execution,
        target=attempt.execution.arn,
        client_token=f"token-{attempt.pk}",
    )
    batch = RedriveBatch.objects.create(account=account, group=group, username="someone")
    return {
        "batch": batch,
        "action": action,
        "rule": rule,
        "account": account,
        "attempt": attempt,
        "execution": attempt.execution,
        "group": group,
        "connection": attempt.connection,
        "endpoint": attempt.endpoint,
    }


@pytest.fixture
def visible(account: AwsAccount) -> dict[str, Any]:
    return _objects_in(account)


@pytest.fixture
def hidden(other_account: AwsAccount) -> dict[str, Any]:
    return _objects_in(other_account)


def url_for(name: str, obj: Any = None) -> str:
    return reverse(name, args=[obj.pk]) if obj is not None else reverse(name)


def client_for(user: User, *, csrf: bool = False) -> Client:
    client = Client(enforce_csrf_checks=csrf)
    client.force_login(user)
    return client


def assert_login_redirect(response: Any) -> None:
    assert response.status_code == 302, response.status_code
    assert response["Location"].startswith(reverse("login") + "?next=")


# --- Pages ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(LIST_PAGES | set(OBJECT_PAGES)))
def test_anonymous_is_sent_to_login(client: Client, visible: dict[str, Any], name: str) -> None:
    obj = visible[OBJECT_PAGES[name]] if name in OBJECT_PAGES else None
    assert_login_redirect(client.get(url_for(name, obj)))


@pytest.mark.parametrize("name", sorted(OBJECT_PAGES))
def test_object_pages_follow_the_account_grant(
    viewer_client: Client, visible: dict[str, Any], hidden: dict[str, Any], name: str
) -> None:
    kind = OBJECT_PAGES[name]
    assert viewer_client.get(url_for(name, visible[kind])).status_code == 200
    assert viewer_client.get(url_for(name, hidden[kind])).status_code == 404


@pytest.mark.parametrize("name", sorted(OBJECT_PAGES))
def test_a_user_without_any_grant_gets_404(
    outsider_client: Client, visible: dict[str, Any], name: str
) -> None:
    assert outsider_client.get(url_for(name, visible[OBJECT_PAGES[name]])).status_code == 404


@pytest.mark.parametrize("name", sorted(OBJECT_PAGES))
def test_a_missing_object_is_the_same_404(viewer_client: Client, name: str) -> None:
    assert viewer_client.get(reverse(name, args=[987654321])).status_code == 404


@pytest.mark.parametrize("name", sorted(LIST_PAGES))
def test_list_pages_never_show_hidden_accounts(
    viewer_client: Client, visible: dict[str, Any], hidden: dict[str, Any], name: str
) -> None:
    response = viewer_client.get(url_for(name))
    assert response.status_code == 200
    streaming = getattr(response, "streaming_content", None)
    body = b"".join(streaming) if response.streaming and streaming else response.content
    html = body.decode()
    for marker in (hidden["account"].name, hidden["connection"].arn, hidden["execution"].name):
        assert marker not in html, f"{marker} leaked into {name}"


def test_a_shared_saved_view_over_a_hidden_account_is_not_listed(
    viewer_client: Client, hidden: dict[str, Any]
) -> None:
    from executions.models import SavedView

    owner = UserFactory.create(is_superuser=True)
    view = SavedView.objects.create(owner=owner, name=hidden["account"].name, shared=True)
    view.accounts.set([hidden["account"]])
    html = viewer_client.get(url_for("executions:saved_views")).content.decode()
    assert hidden["account"].name not in html


@pytest.mark.parametrize("name", sorted(OWN_VIEW_ACTIONS))
def test_own_actions_are_the_owners_only(
    viewer: User, account: AwsAccount, client: Client, name: str
) -> None:
    from executions.models import SavedView

    view = SavedView.objects.create(owner=viewer, name="mine")
    path = url_for(name, view)
    assert_login_redirect(client.post(path))
    other = client_for(UserFactory.create(username="someone-else"))
    assert other.post(path).status_code == 404
    assert client_for(viewer, csrf=True).post(path).status_code == 403  # no CSRF token
    assert client_for(viewer).post(path).status_code == 302
    assert not SavedView.objects.filter(pk=view.pk).exists()


def test_superuser_sees_every_account(hidden: dict[str, Any]) -> None:
    admin = client_for(UserFactory.create(is_superuser=True, is_staff=True))
    assert admin.get(url_for("executions:detail", hidden["execution"])).status_code == 200


def test_inactive_user_sees_nothing(viewer: User, visible: dict[str, Any]) -> None:
    client = client_for(viewer)
    viewer.is_active = False
    viewer.save()
    response = client.get(url_for("executions:detail", visible["execution"]))
    assert response.status_code in (302, 404)


# --- POST actions -----------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _no_broker(monkeypatch: pytest.MonkeyPatch) -> None:
    """ "Sync now" enqueues a Celery task; record it instead of needing Redis."""
    import sys
    import types

    class Recorder:
        def delay(self, *args: Any, **kwargs: Any) -> None:
            return None

    module = types.ModuleType("executions.tasks")
    module.sync_account = Recorder()  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "executions.tasks", module)


@pytest.mark.parametrize("name", sorted(ACTIONS))
def test_actions_send_anonymous_users_to_login(
    client: Client, visible: dict[str, Any], name: str
) -> None:
    assert_login_redirect(client.post(url_for(name, visible[ACTIONS[name][0]])))


@pytest.mark.parametrize("name", sorted(ACTIONS))
def test_actions_need_the_permission(
    viewer_client: Client, visible: dict[str, Any], name: str
) -> None:
    assert viewer_client.post(url_for(name, visible[ACTIONS[name][0]])).status_code == 403


@pytest.mark.parametrize("name", sorted(ACTIONS))
def test_actions_need_a_csrf_token(viewers: Any, visible: dict[str, Any], name: str) -> None:
    user = UserFactory.create(groups=[viewers], perms=[ACTIONS[name][1]])
    response = client_for(user, csrf=True).post(url_for(name, visible[ACTIONS[name][0]]))
    assert response.status_code == 403
    assert b"CSRF" in response.content


@pytest.mark.parametrize("name", sorted(ACTIONS))
def test_actions_work_with_permission_and_grant(
    viewers: Any, visible: dict[str, Any], name: str
) -> None:
    user = UserFactory.create(groups=[viewers], perms=[ACTIONS[name][1]])
    assert client_for(user).post(url_for(name, visible[ACTIONS[name][0]])).status_code == 302


@pytest.mark.parametrize("name", sorted(ACTIONS))
def test_actions_on_hidden_objects_are_404_even_with_permission(
    viewers: Any, hidden: dict[str, Any], name: str
) -> None:
    user = UserFactory.create(groups=[viewers], perms=[ACTIONS[name][1]])
    assert client_for(user).post(url_for(name, hidden[ACTIONS[name][0]])).status_code == 404


@pytest.mark.parametrize("name", sorted(ACTIONS))
def test_actions_refuse_get(viewers: Any, visible: dict[str, Any], name: str) -> None:
    user = UserFactory.create(groups=[viewers], perms=[ACTIONS[name][1]], is_staff=True)
    assert client_for(user).get(url_for(name, visible[ACTIONS[name][0]])).status_code == 405


@pytest.mark.parametrize("name", sorted(FORM_PAGES))
def test_form_pages_need_login_permission_and_grant(
    client: Client, viewers: Any, visible: dict[str, Any], hidden: dict[str, Any], name: str
) -> None:
    kind, perm = FORM_PAGES[name]
    shown, other = (visible[kind], hidden[kind]) if kind else (None, None)
    assert_login_redirect(client.get(url_for(name, shown)))
    viewer = client_for(UserFactory.create(groups=[viewers]))
    assert viewer.get(url_for(name, shown)).status_code == 403
    allowed = client_for(UserFactory.create(groups=[viewers], perms=[perm]))
    assert allowed.get(url_for(name, shown)).status_code == 200
    if other is not None:
        assert allowed.get(url_for(name, other)).status_code == 404
        assert allowed.post(url_for(name, other), {"name": "x"}).status_code == 404


def test_a_rule_form_offers_and_accepts_only_visible_accounts(
    viewers: Any, visible: dict[str, Any], hidden: dict[str, Any]
) -> None:
    user = UserFactory.create(groups=[viewers], perms=["alerts.add_alertrule"])
    client = client_for(user)
    page = client.get(url_for("alerts:new")).content.decode()
    assert visible["account"].name in page and hidden["account"].name not in page
    data = {
        "name": "mine",
        "events": ["new_group"],
        "email_to": "team@example.com",
        "quiet_period_seconds": "60",
        "final_attempts_only": "on",
    }
    refused = client.post(url_for("alerts:new"), {**data, "accounts": [hidden["account"].pk]})
    assert refused.status_code == 400 and not AlertRule.objects.filter(name="mine").exists()
    saved = client.post(url_for("alerts:new"), {**data, "accounts": [visible["account"].pk]})
    assert saved.status_code == 302
    assert list(AlertRule.objects.get(name="mine").accounts.all()) == [visible["account"]]


def test_redrive_without_an_operator_role_says_what_to_configure_and_never_queues(
    viewers: Any, visible: dict[str, Any]
) -> None:
    user = UserFactory.create(groups=[viewers], perms=["operations.redrive_execution"])
    client = client_for(user)
    url = url_for("operations:redrive", visible["execution"])
    page = client.get(url)
    assert page.status_code == 200
    assert "has no operator role" in page.content.decode()
    assert client.post(url, {"confirm": "on"}).status_code == 400
    assert not OperatorAction.objects.filter(user=user).exists()


def test_replay_without_an_operator_role_says_what_to_configure_and_never_queues(
    viewers: Any, visible: dict[str, Any]
) -> None:
    user = UserFactory.create(groups=[viewers], perms=["operations.replay_attempt"])
    client = client_for(user)
    url = url_for("operations:replay", visible["attempt"])
    page = client.get(url)
    assert page.status_code == 200
    assert "has no operator role" in page.content.decode()
    assert client.post(url, {"confirm": "on", "state_input": "{}"}).status_code == 400
    assert not OperatorAction.objects.filter(user=user).exists()


def test_filter_redrive_stays_within_the_grant_and_says_what_to_configure(
    viewers: Any, visible: dict[str, Any], hidden: dict[str, Any]
) -> None:
    user = UserFactory.create(groups=[viewers], perms=["operations.redrive_execution"])
    client = client_for(user)
    url = reverse("operations:filter_redrive")
    page = client.get(url)
    assert page.status_code == 200
    assert "<strong data-eligible>1</strong> of 1" in page.content.decode()
    assert "has no operator role" in page.content.decode()
    assert client.post(url, {"confirm": "on"}).status_code == 400
    # A hidden account matches nothing (as on the executions page); nothing to confirm.
    hidden_query = f"{url}?account={hidden['account'].pk}"
    assert "<strong data-eligible>0</strong> of 0" in client.get(hidden_query).content.decode()
    assert client.post(hidden_query, {"confirm": "on"}).status_code == 400
    # A filter that is not one is the filter's 400: never a 500.
    for query in ("status=abc", "since=yesterday", "endpoint=x"):
        assert client.get(f"{url}?{query}").status_code == 400, query
        assert client.post(f"{url}?{query}", {"confirm": "on"}).status_code == 400, query
    assert not RedriveBatch.objects.filter(user=user).exists()
    assert not OperatorAction.objects.filter(user=user).exists()


@pytest.mark.parametrize("name", sorted(OWN_OBJECT_PAGES))
def test_own_rows_are_for_the_actor_and_admins_within_the_grant(
    client: Client, viewers: Any, visible: dict[str, Any], hidden: dict[str, Any], name: str
) -> None:
    actor = UserFactory.create(groups=[viewers])
    mine = visible[OWN_OBJECT_PAGES[name]]
    type(mine).objects.filter(pk=mine.pk).update(user=actor)
    assert_login_redirect(client.get(url_for(name, mine)))
    assert client_for(actor).get(url_for(name, mine)).status_code == 200
    teammate = client_for(UserFactory.create(groups=[viewers]))
    assert teammate.get(url_for(name, mine)).status_code == 404
    auditor = client_for(
        UserFactory.create(groups=[viewers], perms=["operations.view_operatoraction"])
    )
    assert auditor.get(url_for(name, mine)).status_code == 200
    assert auditor.get(url_for(name, hidden[OWN_OBJECT_PAGES[name]])).status_code == 404
    assert auditor.get(reverse(name, args=[987654321])).status_code == 404


@pytest.mark.parametrize("name", sorted(OWN_ACTIONS))
def test_own_row_actions_need_the_row_and_the_permission(
    client: Client, viewers: Any, visible: dict[str, Any], hidden: dict[str, Any], name: str
) -> None:
    kind, perm = OWN_ACTIONS[name]
    mine = visible[kind]
    actor = UserFactory.create(groups=[viewers], perms=[perm])
    type(mine).objects.filter(pk=mine.pk).update(user=actor)
    assert_login_redirect(client.post(url_for(name, mine)))
    assert client_for(actor, csrf=True).post(url_for(name, mine)).status_code == 403  # CSRF
    assert client_for(actor).get(url_for(name, mine)).status_code == 405
    teammate = client_for(UserFactory.create(groups=[viewers], perms=[perm]))
    assert teammate.post(url_for(name, mine)).status_code == 404
    unpermitted = UserFactory.create(groups=[viewers], perms=["operations.view_operatoraction"])
    assert client_for(unpermitted).post(url_for(name, mine)).status_code == 403
    auditor = client_for(
        UserFactory.create(groups=[viewers], perms=[perm, "operations.view_operatoraction"])
    )
    assert auditor.post(url_for(name, hidden[kind])).status_code == 404
    assert client_for(actor).post(url_for(name, mine)).status_code == 302


# --- Admin ------------------------------------------------------------------------------------


# The argument shapes admin URLs take; the first that reverses is used.
ADMIN_KWARGS: list[dict[str, str]] = [
    {},
    {"object_id": "1"},
    {"app_label": "connections"},
    {"content_type_id": "1", "object_id": "1"},
    {"id": "1"},
]


def _admin_url(route: Route) -> str | None:
    for kwargs in ADMIN_KWARGS:
        try:
            return reverse(route.name, kwargs=kwargs)
        except Exception:  # noqa: S112 - try the next argument shape
            continue
    return None


@pytest.mark.parametrize("route", ADMIN, ids=lambda r: r.name)
def test_admin_is_for_staff_only(viewer_client: Client, client: Client, route: Route) -> None:
    url = _admin_url(route)
    if url is None:
        pytest.skip(f"cannot build a URL for {route.name}")
    for who in (client, viewer_client):
        response = who.get(url)
        assert response.status_code == 302, (route.name, response.status_code)
        assert response["Location"].startswith(reverse("admin:login"))


def test_staff_reaches_the_admin(account: AwsAccount) -> None:
    staff = client_for(UserFactory.create(is_staff=True))
    assert staff.get(reverse("admin:index")).status_code == 200


# --- Login throttling -------------------------------------------------------------------------


def test_login_is_throttled_after_repeated_failures(settings: Any, viewer: User) -> None:
    settings.AXES_FAILURE_LIMIT = 3
    client = Client()
    for _ in range(3):
        client.post(reverse("login"), {"username": "viewer", "password": "wrong"})
    response = client.post(
        reverse("login"), {"username": "viewer", "password": "correct-horse-battery-staple"}
    )
    assert response.status_code in (403, 429)
    assert "_auth_user_id" not in client.session


def test_login_form_logs_in(viewer: User) -> None:
    client = Client()
    response = client.post(
        reverse("login"), {"username": "viewer", "password": "correct-horse-battery-staple"}
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("dashboard:overview")


# --- The REST API -----------------------------------------------------------------------------


def api_client(user: User, *, revoked: bool = False) -> Client:
    from api.models import ApiToken

    token, plain = ApiToken.issue(user, "test")
    if revoked:
        token.revoke()
    return Client(headers={"Authorization": f"Bearer {plain}"})


def api_url(name: str, objects: dict[str, Any]) -> str:
    kind = API_OBJECTS.get(name) or API_ACTIONS.get(name, ("",))[0]
    return url_for(name, objects[kind] if kind else None)


API_GETS = sorted(API_LISTS | set(API_OBJECTS))


@pytest.mark.parametrize("name", API_GETS + sorted(API_ACTIONS))
def test_api_without_credentials_is_a_401_json(
    client: Client, visible: dict[str, Any], name: str
) -> None:
    method = client.post if name in API_ACTIONS else client.get
    response = method(api_url(name, visible))
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert response.json()["message"]


@pytest.mark.parametrize("name", API_GETS)
def test_api_follows_the_account_grant(
    viewer: User, outsider: User, visible: dict[str, Any], hidden: dict[str, Any], name: str
) -> None:
    api = api_client(viewer)
    assert api.get(api_url(name, visible)).status_code == 200
    if name in API_OBJECTS:
        response = api.get(api_url(name, hidden))
        assert response.status_code == 404
        assert response.json() == {"message": "Not found."}
        assert api_client(outsider).get(api_url(name, visible)).status_code == 404
    else:
        body = api.get(api_url(name, visible)).content.decode()
        for marker in (hidden["account"].name, hidden["connection"].arn, hidden["execution"].name):
            assert marker not in body, f"{marker} leaked into {name}"


@pytest.mark.parametrize("name", API_GETS)
def test_a_revoked_or_unknown_token_is_a_401(
    viewer: User, visible: dict[str, Any], name: str
) -> None:
    assert api_client(viewer, revoked=True).get(api_url(name, visible)).status_code == 401
    forged = Client(headers={"Authorization": "Bearer sts_not-a-token"})
    assert forged.get(api_url(name, visible)).status_code == 401


def test_an_inactive_users_token_is_a_401(viewer: User, visible: dict[str, Any]) -> None:
    api = api_client(viewer)
    viewer.is_active = False
    viewer.save()
    assert api.get(api_url("api:execution", visible)).status_code == 401


@pytest.mark.parametrize("name", sorted(API_ACTIONS))
def test_api_actions_need_the_permission_and_grant(
    viewers: Any, viewer: User, visible: dict[str, Any], hidden: dict[str, Any], name: str
) -> None:
    _kind, perm = API_ACTIONS[name]
    body, json = {"status": "resolved"}, "application/json"
    assert api_client(viewer).post(api_url(name, visible), body, json).status_code == 403
    triager = api_client(UserFactory.create(groups=[viewers], perms=[perm]))
    assert triager.post(api_url(name, hidden), body, json).status_code == 404
    response = triager.post(api_url(name, visible), body, json)
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "resolved"
    assert triager.get(api_url(name, visible)).status_code == 405


@pytest.mark.parametrize("name", sorted(API_ACTIONS))
def test_api_actions_by_session_need_a_csrf_token(
    viewers: Any, visible: dict[str, Any], name: str
) -> None:
    _kind, perm = API_ACTIONS[name]
    session = client_for(UserFactory.create(groups=[viewers], perms=[perm]), csrf=True)
    response = session.post(
        api_url(name, visible), {"status": "ignored"}, content_type="application/json"
    )
    assert response.status_code == 403
    assert "CSRF" in response.json()["message"]
    # The session (without a token) reads the API as it reads the pages.
    assert session.get(api_url("api:group", visible)).status_code == 200


# --- Signed links in alert messages -------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SIGNED_LINK_PAGES))
def test_signed_links_follow_the_account_grant_and_the_permission(
    client: Client,
    viewer: User,
    outsider: User,
    visible: dict[str, Any],
    hidden: dict[str, Any],
    name: str,
) -> None:
    from alerts.links import token

    kind, perm = SIGNED_LINK_PAGES[name]

    def link(obj: Any) -> str:
        return reverse(name) + f"?t={token(obj.pk, 'acknowledge')}"

    assert_login_redirect(client.get(link(visible[kind])))
    assert client_for(viewer).get(link(visible[kind])).status_code == 403  # sees, may not change
    allowed = client_for(UserFactory.create(groups=list(viewer.groups.all()), perms=[perm]))
    assert allowed.get(link(visible[kind])).status_code == 200
    assert allowed.get(link(hidden[kind])).status_code == 404
    assert client_for(outsider).get(link(visible[kind])).status_code == 404
