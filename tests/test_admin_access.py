"""The admin's access matrix (issue 13, item 3): staff see and change only their own accounts.

The user under test is the strongest non-superuser there is: staff, holding every model
permission, granted `account` only. Every URL the admin serves (each model's changelist with
search, filter and popup parameters, add, change, history, delete, the bare object URL,
view-on-site, each app index, autocomplete for every relation of every model, the password
views, the catch-all) must show none of the other team's identifying text, and no URL naming
an object of the other team may answer 200. POSTs that would change another team's rows, grant
an account to another group or join another team's group are refused with nothing changed.
`test_every_admin_url_is_exercised` fails when a new admin URL appears that the matrix misses.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import pytest
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib import admin
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth.models import Group, Permission, User
from django.contrib.contenttypes.models import ContentType
from django.db.models import Model
from django.test import Client
from django.urls import NoReverseMatch, resolve, reverse

from alerts.models import AlertRule
from connections.choices import AuthMode
from connections.models import AwsAccount, Connection, ConnectionStateChange, Endpoint, SyncRun
from operations.models import OperatorAction
from tests.factories import (
    ConnectionFactory,
    ConnectionStateChangeFactory,
    EndpointFactory,
    SyncRunFactory,
    UserFactory,
)
from tests.test_access_matrix import all_routes

pytestmark = pytest.mark.django_db


@dataclass(frozen=True)
class Team:
    """One team's account with a row of every admin-registered model that belongs to it."""

    account: AwsAccount
    group: Group
    member: User
    rows: dict[type[Model], Model]

    def markers(self) -> list[str]:
        """Text that identifies this team's rows; none of it may reach the other team."""
        connection = self.rows[Connection]
        assert isinstance(connection, Connection)
        return [
            self.account.name,
            self.account.account_id,
            self.account.role_arn,
            self.group.name,
            self.member.username,
            connection.name,
            connection.arn,
            self.rows[Endpoint].url_template,  # type: ignore[attr-defined]
            self.rows[ConnectionStateChange].reason,  # type: ignore[attr-defined]
            self.rows[SyncRun].progress,  # type: ignore[attr-defined]
            self.rows[AlertRule].name,  # type: ignore[attr-defined]
            self.rows[OperatorAction].target,  # type: ignore[attr-defined]
        ]


def make_team(account: AwsAccount, tag: str) -> Team:
    account.auth_mode = AuthMode.ASSUME_ROLE
    account.role_arn = f"arn:aws:iam::{account.account_id}:role/{tag}-reader"
    account.save()
    group = account.groups.get()
    member = UserFactory.create(username=f"{tag}-member", groups=[group])
    connection = ConnectionFactory.create(account=account, name=f"{tag}-connection")
    rule = AlertRule.objects.create(
        name=f"{tag}-alert-rule", events=["new_group"], email_to=[f"{tag}@example.com"]
    )
    rule.accounts.set([account])
    rows: dict[type[Model], Model] = {
        AlertRule: rule,
        AwsAccount: account,
        Connection: connection,
        ConnectionStateChange: ConnectionStateChangeFactory.create(
            connection=connection, reason=f"{tag}-state-reason"
        ),
        Endpoint: EndpointFactory.create(
            account=account, url_template=f"https://{tag}-partner.example/v1/{{id}}"
        ),
        SyncRun: SyncRunFactory.create(account=account, progress=f"{tag}-sync-progress"),
        User: member,
        Group: group,
        OperatorAction: OperatorAction.objects.create(
            kind="redrive",
            user=member,
            username=member.username,
            account=account,
            target=f"arn:aws:states:eu-west-1:{account.account_id}:execution:{tag}-machine:run",
            client_token=f"{tag}-token",
        ),
    }
    login = {"username": member.username, "ip_address": "203.0.113.9", "user_agent": f"{tag}-ua"}
    rows[AccessAttempt] = AccessAttempt.objects.create(
        **login, failures_since_start=1, get_data="", post_data=""
    )
    rows[AccessLog] = AccessLog.objects.create(**login)
    rows[AccessFailureLog] = AccessFailureLog.objects.create(**login)
    # An admin action of this team's member, so "Recent actions" and history have entries.
    LogEntry.objects.create(
        user=member,
        content_type=ContentType.objects.get_for_model(AwsAccount),
        object_id=str(account.pk),
        object_repr=str(account),
        action_flag=CHANGE,
        change_message="[]",
    )
    return Team(account, group, member, rows)


@pytest.fixture
def mine(account: AwsAccount) -> Team:
    return make_team(account, "visibleteam")


@pytest.fixture
def theirs(other_account: AwsAccount) -> Team:
    return make_team(other_account, "hiddenteam")


@pytest.fixture
def staff_user(mine: Team) -> User:
    """Staff with every permission there is, but no superuser: granted `account` only."""
    user = UserFactory.create(username="all-perms-staff", is_staff=True, groups=[mine.group])
    user.user_permissions.set(Permission.objects.all())
    return user


@pytest.fixture
def staff_client(staff_user: User) -> Client:
    client = Client()
    client.force_login(staff_user)
    return client


@pytest.fixture(autouse=True)
def queued_syncs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record "Sync now" instead of enqueueing: no worker runs here to consume the queue."""
    from executions import tasks

    queued: list[int] = []
    monkeypatch.setattr(tasks.sync_account, "delay", lambda pk, **kw: queued.append(pk))
    return queued


@pytest.fixture(autouse=True)
def tested_credentials(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record "Test credentials": the accounts here point at no AWS at all."""
    from connections.aws.checks import check_credentials

    tested: list[int] = []

    def record(account: AwsAccount) -> Any:
        tested.append(account.pk)
        return check_credentials(account)

    monkeypatch.setattr("connections.admin.check_credentials", record)
    return tested


# --- Every admin URL --------------------------------------------------------------------------


@dataclass(frozen=True)
class AdminGet:
    url: str
    names_hidden_object: bool  # the URL names a row of the other team


def _admin_url(name: str, *args: Any) -> str | None:
    try:
        return reverse(f"admin:{name}", args=args)
    except NoReverseMatch:
        return None


def _object_gets(model: type[Model], obj: Model, hidden: bool) -> Iterator[AdminGet]:
    info = f"{model._meta.app_label}_{model._meta.model_name}"
    for view in ("change", "history", "delete", "password_change"):
        url = _admin_url(f"{info}_{view}", obj.pk)
        if url is not None:
            yield AdminGet(url, hidden)
    yield AdminGet(reverse(f"admin:{info}_changelist") + f"{obj.pk}/", hidden)
    content_type = ContentType.objects.get_for_model(model)
    yield AdminGet(reverse("admin:view_on_site", args=[content_type.pk, obj.pk]), hidden)


def model_gets(model: type[Model], mine: Team, theirs: Team) -> list[AdminGet]:
    """Every page of one model's admin, with the query strings that change what they list."""
    info = f"{model._meta.app_label}_{model._meta.model_name}"
    changelist, add = reverse(f"admin:{info}_changelist"), reverse(f"admin:{info}_add")
    hidden = theirs.rows[model]
    queries: list[dict[str, Any]] = [
        {},
        {"q": "hiddenteam"},  # a fragment: the search box echoes it, the markers are longer
        {"q": str(theirs.account.account_id)[:6]},
        {"o": "-1"},
        {"e": "1"},
        {"p": "2"},
        {"all": ""},
        {"_popup": "1", "_to_field": "id"},
        {"id__exact": hidden.pk},
        {"pk": hidden.pk},
        {"account__id__exact": theirs.account.pk},
        {"account": theirs.account.pk},
        {"account__name__startswith": "hidden"},
    ]
    gets = [AdminGet(f"{changelist}?{urlencode(q)}", False) for q in queries]
    gets += [AdminGet(add, False), AdminGet(f"{add}?account={theirs.account.pk}&_popup=1", False)]
    gets += _object_gets(model, hidden, hidden=True)
    gets += _object_gets(model, mine.rows[model], hidden=False)
    return gets


def site_gets() -> list[AdminGet]:
    """The admin's own pages: index, app indexes, password views, autocomplete, catch-all."""
    gets = [
        AdminGet(reverse(f"admin:{name}"), False)
        for name in ("index", "password_change", "password_change_done", "jsi18n")
    ]
    labels = sorted({model._meta.app_label for model in admin.site._registry})
    gets += [AdminGet(reverse("admin:app_list", args=[label]), False) for label in labels]
    gets += [AdminGet(url, False) for url in autocomplete_urls()]
    gets.append(AdminGet("/admin/no-such-page/", False))
    return gets


def autocomplete_urls() -> Iterator[str]:
    """Autocomplete answers for any relation of any model, not only `autocomplete_fields`."""
    from django.apps import apps

    for model in apps.get_models():
        for field in model._meta.get_fields():
            remote = getattr(field.remote_field, "model", None) if field.is_relation else None
            if remote is None or not admin.site.is_registered(remote):
                continue
            for term in ("", "hidden"):
                query = {
                    "app_label": model._meta.app_label,
                    "model_name": model._meta.model_name,
                    "field_name": field.name,
                    "term": term,
                }
                yield reverse("admin:autocomplete") + "?" + urlencode(query)


def registered_models() -> list[type[Model]]:
    return sorted(admin.site._registry, key=lambda m: m._meta.label)


def every_get(mine: Team, theirs: Team) -> list[AdminGet]:
    gets = site_gets()
    for model in registered_models():
        gets += model_gets(model, mine, theirs)
    return gets


def test_every_model_in_the_admin_has_rows_in_the_matrix(mine: Team) -> None:
    missing = [m._meta.label for m in registered_models() if m not in mine.rows]
    assert not missing, f"make_team() must create a row of: {', '.join(missing)}"


def test_every_admin_url_is_exercised(mine: Team, theirs: Team) -> None:
    # A regex route's "^" is dropped when resolved routes are joined; compare without it.
    exercised = {
        resolve(get.url.split("?")[0]).route.replace("^", "") for get in every_get(mine, theirs)
    }
    admin_routes = {
        r.pattern.replace("^", "") for r in all_routes() if r.pattern.startswith("admin/")
    }
    unexercised = admin_routes - exercised - {"admin/login/", "admin/logout/"}
    assert not unexercised, f"the admin matrix requests none of: {sorted(unexercised)}"


def leaks(client: Client, get: AdminGet, markers: list[str]) -> list[str]:
    first = client.get(get.url)
    problems = []
    if first.status_code >= 500:
        problems.append(f"{get.url}: {first.status_code}")
    if get.names_hidden_object and first.status_code not in (302, 403, 404):
        problems.append(f"{get.url}: {first.status_code} for another team's row")
    final = client.get(get.url, follow=True) if first.status_code in (301, 302) else first
    body = final.content.decode(errors="replace")
    problems += [f"{get.url}: shows {marker!r}" for marker in markers if marker in body]
    return problems


@pytest.mark.parametrize("label", ["(site)", *(m._meta.label for m in registered_models())])
def test_staff_sees_nothing_of_another_team(
    staff_client: Client, mine: Team, theirs: Team, label: str
) -> None:
    if label == "(site)":
        gets = site_gets()
    else:
        model = next(m for m in registered_models() if m._meta.label == label)
        gets = model_gets(model, mine, theirs)
    problems = [problem for get in gets for problem in leaks(staff_client, get, theirs.markers())]
    assert not problems, "\n".join(problems)


def test_view_on_site_is_404_for_another_teams_rows(staff_client: Client, theirs: Team) -> None:
    for model in (AwsAccount, Connection, Endpoint):
        content_type = ContentType.objects.get_for_model(model)
        url = reverse("admin:view_on_site", args=[content_type.pk, theirs.rows[model].pk])
        assert staff_client.get(url).status_code == 404, model


def test_view_on_site_still_leads_to_their_own_rows(staff_client: Client, mine: Team) -> None:
    connection = mine.rows[Connection]
    content_type = ContentType.objects.get_for_model(Connection)
    response = staff_client.get(
        reverse("admin:view_on_site", args=[content_type.pk, connection.pk])
    )
    assert response.status_code == 302
    assert response["Location"].endswith(connection.get_absolute_url())  # type: ignore[attr-defined]


@pytest.mark.parametrize("field", ["aws_accounts", "user"])
def test_autocomplete_refuses_reverse_relations_instead_of_failing(
    admin_client: Client, field: str
) -> None:
    query = {"app_label": "auth", "model_name": "group", "field_name": field, "term": ""}
    response = admin_client.get(reverse("admin:autocomplete") + "?" + urlencode(query))
    assert response.status_code == 403


@pytest.mark.parametrize("model", [AwsAccount, Connection, Endpoint, SyncRun, AlertRule])
def test_staff_still_works_with_their_own_account(
    staff_client: Client, mine: Team, model: type[Model]
) -> None:
    info = f"admin:{model._meta.app_label}_{model._meta.model_name}"
    row = mine.rows[model]
    assert str(row) in staff_client.get(reverse(f"{info}_changelist")).content.decode()
    assert staff_client.get(reverse(f"{info}_change", args=[row.pk])).status_code == 200


# --- POSTs that must change nothing -----------------------------------------------------------


def account_form(account: AwsAccount, **changes: Any) -> dict[str, Any]:
    data = {
        "name": account.name,
        "account_id": account.account_id,
        "regions": ",".join(account.regions),
        "auth_mode": account.auth_mode,
        "role_arn": account.role_arn,
        "enabled": "on",
        "sync_interval_seconds": account.sync_interval_seconds,
        "groups": [g.pk for g in account.groups.all()],
    }
    return {**data, **changes}


def grants(account: AwsAccount) -> set[str]:
    return set(account.groups.values_list("name", flat=True))


def test_staff_cannot_grant_their_account_to_another_group(
    staff_client: Client, mine: Team, theirs: Team
) -> None:
    url = reverse("admin:connections_awsaccount_change", args=[mine.account.pk])
    form = account_form(
        mine.account, sync_interval_seconds=300, groups=[mine.group.pk, theirs.group.pk]
    )
    response = staff_client.post(url, form)
    assert response.status_code == 302, response.content.decode()[-2000:]
    mine.account.refresh_from_db()
    assert mine.account.sync_interval_seconds == 300  # the rest of the change went through
    assert grants(mine.account) == {mine.group.name}


def test_staff_cannot_point_their_account_at_another_teams_aws_account(
    staff_client: Client, mine: Team, theirs: Team
) -> None:
    """Which AWS account and regions a registration reads is superuser work; else the overlap
    refusal would name the other team's registration to them."""
    theirs.account.account_id = "999988887777"
    theirs.account.save()
    url = reverse("admin:connections_awsaccount_change", args=[mine.account.pk])
    form = account_form(
        mine.account,
        account_id=theirs.account.account_id,
        regions=",".join(theirs.account.regions),
        sync_interval_seconds=300,
    )
    response = staff_client.post(url, form)
    assert theirs.account.name not in response.content.decode()
    mine.account.refresh_from_db()
    assert mine.account.account_id != theirs.account.account_id
    assert mine.account.sync_interval_seconds == 300  # the rest of the change went through


def test_staff_cannot_add_their_group_to_another_account(
    staff_client: Client, mine: Team, theirs: Team
) -> None:
    url = reverse("admin:connections_awsaccount_change", args=[theirs.account.pk])
    staff_client.post(url, account_form(theirs.account, groups=[mine.group.pk, theirs.group.pk]))
    assert grants(theirs.account) == {theirs.group.name}
    assert not AwsAccount.objects.visible_to(mine.member).filter(pk=theirs.account.pk).exists()


def test_staff_cannot_register_an_account(staff_client: Client, mine: Team) -> None:
    form = account_form(mine.account, name="fresh", account_id="123456789012", role_arn="")
    staff_client.post(reverse("admin:connections_awsaccount_add"), {**form, "auth_mode": "default"})
    assert not AwsAccount.objects.filter(name="fresh").exists()


def endpoint_form(account: AwsAccount) -> dict[str, Any]:
    return {
        "account": account.pk,
        "method": "GET",
        "first_seen_at_0": "2026-01-01",
        "first_seen_at_1": "00:00:00",
        "last_seen_at_0": "2026-01-02",
        "last_seen_at_1": "00:00:00",
    }


def test_staff_cannot_move_an_endpoint_to_another_account(
    staff_client: Client, mine: Team, theirs: Team
) -> None:
    endpoint = mine.rows[Endpoint]
    assert isinstance(endpoint, Endpoint)
    form = {**endpoint_form(theirs.account), "url_template": endpoint.url_template}
    staff_client.post(reverse("admin:connections_endpoint_change", args=[endpoint.pk]), form)
    staff_client.post(reverse("admin:connections_endpoint_add"), {**form, "url_template": "/x"})
    endpoint.refresh_from_db()
    assert endpoint.account_id == mine.account.pk
    assert not Endpoint.objects.filter(account=theirs.account).exclude(pk=theirs.rows[Endpoint].pk)


def test_staff_cannot_change_another_teams_endpoint(staff_client: Client, theirs: Team) -> None:
    endpoint = theirs.rows[Endpoint]
    url = reverse("admin:connections_endpoint_change", args=[endpoint.pk])
    staff_client.post(url, {**endpoint_form(theirs.account), "url_template": "/x"})
    assert Endpoint.objects.get(pk=endpoint.pk).url_template == endpoint.url_template  # type: ignore[attr-defined]


@pytest.mark.parametrize("model", registered_models(), ids=lambda m: m._meta.label)
def test_staff_cannot_delete_another_teams_rows(
    staff_client: Client, theirs: Team, model: type[Model]
) -> None:
    row = theirs.rows[model]
    info = f"admin:{model._meta.app_label}_{model._meta.model_name}"
    staff_client.post(reverse(f"{info}_delete", args=[row.pk]), {"post": "yes"})
    staff_client.post(
        reverse(f"{info}_changelist"),
        {"action": "delete_selected", "_selected_action": [row.pk], "post": "yes"},
    )
    assert model._default_manager.filter(pk=row.pk).exists()


@pytest.mark.parametrize("action", ["sync_now", "test_credentials"])
def test_account_actions_ignore_another_teams_ids(
    staff_client: Client,
    theirs: Team,
    queued_syncs: list[int],
    tested_credentials: list[int],
    action: str,
) -> None:
    staff_client.post(
        reverse("admin:connections_awsaccount_changelist"),
        {"action": action, "_selected_action": [theirs.account.pk], "select_across": "0"},
    )
    assert queued_syncs == [] and tested_credentials == []


def test_account_actions_still_act_on_their_own_account(
    staff_client: Client, mine: Team, queued_syncs: list[int]
) -> None:
    staff_client.post(
        reverse("admin:connections_awsaccount_changelist"),
        {"action": "sync_now", "_selected_action": [mine.account.pk]},
    )
    assert queued_syncs == [mine.account.pk]


def test_staff_cannot_join_another_team_through_the_user_admin(
    staff_client: Client, staff_user: User, theirs: Team
) -> None:
    url = reverse("admin:auth_user_change", args=[staff_user.pk])
    staff_client.post(
        url,
        {
            "username": staff_user.username,
            "is_active": "on",
            "is_staff": "on",
            "is_superuser": "on",
            "groups": [g.pk for g in staff_user.groups.all()] + [theirs.group.pk],
            "date_joined_0": "2026-01-01",
            "date_joined_1": "00:00:00",
        },
    )
    staff_user.refresh_from_db()
    assert not staff_user.is_superuser
    assert theirs.group not in staff_user.groups.all()
    add = reverse("admin:auth_user_add")
    staff_client.post(
        add, {"username": "sock", "password1": "x9!kLm2#qWe", "password2": "x9!kLm2#qWe"}
    )
    assert not User.objects.filter(username="sock").exists()


def test_superuser_still_sees_every_team(admin_client: Client, mine: Team, theirs: Team) -> None:
    html = admin_client.get(reverse("admin:connections_connection_changelist")).content.decode()
    assert str(mine.rows[Connection]) in html and str(theirs.rows[Connection]) in html


def test_superuser_still_grants_accounts_to_groups(mine: Team, theirs: Team) -> None:
    client = Client()
    client.force_login(UserFactory.create(is_staff=True, is_superuser=True))
    url = reverse("admin:connections_awsaccount_change", args=[theirs.account.pk])
    form = account_form(theirs.account, groups=[theirs.group.pk, mine.group.pk])
    assert client.post(url, form).status_code == 302
    assert grants(theirs.account) == {theirs.group.name, mine.group.name}


def _rule_form(rule: AlertRule, **changes: Any) -> dict[str, Any]:
    data = {
        "name": rule.name,
        "enabled": "on",
        "events": '["new_group"]',
        "accounts": [a.pk for a in rule.accounts.all()],
        "regions": "[]",
        "categories": "[]",
        "final_attempts_only": "on",
        "email_to": '["x@example.com"]',
        "quiet_period_seconds": "3600",
        "rate_failures": "0",
        "rate_minutes": "0",
    }
    return {**data, **changes}


def test_staff_cannot_widen_an_alert_rule_beyond_their_accounts(
    staff_client: Client, mine: Team, theirs: Team
) -> None:
    rule = mine.rows[AlertRule]
    assert isinstance(rule, AlertRule)
    change = reverse("admin:alerts_alertrule_change", args=[rule.pk])
    assert staff_client.get(change).status_code == 200
    for accounts in ([mine.account.pk, theirs.account.pk], []):
        answer = staff_client.post(change, _rule_form(rule, accounts=accounts))
        assert answer.status_code == 200  # the form again, with its error
        assert set(rule.accounts.all()) == {mine.account}
    add = staff_client.post(
        reverse("admin:alerts_alertrule_add"), _rule_form(rule, name="all accounts", accounts=[])
    )
    assert add.status_code == 200 and not AlertRule.objects.filter(name="all accounts").exists()
    saved = staff_client.post(change, _rule_form(rule, quiet_period_seconds="60"))
    assert saved.status_code == 302, saved.content.decode()[:2000]
    rule.refresh_from_db()
    assert rule.quiet_period_seconds == 60 and rule.email_to == ["x@example.com"]
    page = staff_client.get(change).content.decode()
    assert "webhook_url" not in page and "signing_secret" not in page
