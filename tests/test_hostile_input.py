"""No query string, form value or cookie makes any page answer 500 (issue 13, item 4).

Every URL pattern from `get_resolver()` is requested as a superuser with every parameter its
forms accept (plus the admin changelists' filter, search, ordering and lookup parameters, plus
parameters nobody reads) set to each hostile value below, with and without `HX-Request`. The
only answers allowed are 200 and 400; by design, the admin also redirects (302: a filter value
it cannot apply sends it to `?e=1`, a missing object to the admin index), POST actions
redirect, object pages answer 404 for ids that name nothing, and logout refuses GET. One test
per page keeps the run short: the requests are looped, and every bad answer is collected so a
failure lists all of them at once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import pytest
from django import forms
from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.models import User
from django.db import models, transaction
from django.http import HttpResponse
from django.test import Client, RequestFactory
from django.urls import reverse
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alerts.forms import ActionLinkForm
from api.forms import (
    AlertRuleFilterForm,
    ConnectionFilterForm,
    DeliveryLogForm,
    EndpointFilterForm,
    ExecutionFilterForm,
    SyncRunFilterForm,
)
from connections.models import AwsAccount
from dashboard.forms import SyncFilterForm, WindowForm
from executions.forms import AttemptFilterForm, GroupFilterForm
from operations.forms import AuditFilterForm
from tests.factories import SyncRunFactory, UserFactory
from tests.test_access_matrix import (
    ACTIONS,
    API_ACTIONS,
    API_LISTS,
    API_OBJECTS,
    LIST_PAGES,
    OBJECT_PAGES,
    OWN_OBJECT_PAGES,
    _objects_in,
    all_routes,
)

pytestmark = pytest.mark.django_db


def _iso(delta: timedelta) -> str:
    return (timezone.now() + delta).strftime("%Y-%m-%dT%H:%M:%S")


def hostile_values() -> list[tuple[str, str]]:
    """(label, percent-encoded value): what an attacker or a broken link puts in a parameter.

    NUL and lone surrogates are given as raw bytes; a lone surrogate cannot even be encoded as
    UTF-8, so over HTTP it arrives as CESU-8 (`%ED%A0%80`) or a truncated sequence.
    """
    plain = {
        "empty": "",
        "negative": "-1",
        "huge": "99999999999999999999",
        "bigint+1": "9223372036854775808",
        "negative-huge": "-99999999999999999999",
        "float-overflow": "1e309",
        "long": "x" * 10_000,
        "future": _iso(timedelta(hours=1)),
        "far-future-offset": "9999-12-31T23:59:59-14:00",
        "ancient": "0001-01-01T00:00:00",
        "ancient-offset": "0001-01-01T00:00:00+14:00",
        "bad-date": "2025-02-30T25:61",
        "sql": "' OR 1=1; --",
        "regex": "[(*+?{\\",
        "like": "%_\\%",
        "crlf-html": "<b>a\r\nSet-Cookie: x=y",
        "cursor-huge": "99999999999999999999_1",
        "cursor-edge": "9223372036854775807_9223372036854775807",
        "cursor-negative": "-9223372036854775808_1",
    }
    raw = {
        "nul": "%00",
        "nul-inside": "a%00b",
        "lone-surrogate": "%ED%A0%80",
        "truncated": "%F0%9F",
    }
    return [(k, quote(v, safe="")) for k, v in plain.items()] + list(raw.items())


# The admin filters by value in SQL: the classes of value that reach the database.
ADMIN_VALUE_LABELS = {"empty", "huge", "long", "far-future-offset", "bad-date", "regex", "nul"}


# --- Which parameters each page reads ---------------------------------------------------------

PAGE_FORMS: dict[str, list[type[forms.Form]]] = {
    "dashboard:overview": [WindowForm],
    "dashboard:sync_status": [SyncFilterForm],
    "executions:list": [AttemptFilterForm],
    "executions:export": [AttemptFilterForm],
    "executions:groups": [GroupFilterForm],
    "executions:detail": [],
    "executions:group": [],
    "connections:list": [WindowForm],
    "connections:detail": [WindowForm],
    "connections:endpoint": [WindowForm],
    "alerts:rules": [],
    # GET lists; the POST that saves is probed below.
    "executions:saved_views": [],
    "executions:saved_view_delete": [],
    "alerts:rule": [],
    # Form pages (POST saves); their hostile POSTs are in tests/alerts/test_pages.py.
    "alerts:new": [],
    "alerts:edit": [],
    # The signed action link's token: tests/alerts/test_action_links.py probes it.
    "alerts:act": [ActionLinkForm],
    "operations:audit": [AuditFilterForm],
    "operations:action": [],
    # The redrive confirmation: hostile POSTs below (test_no_form_value_makes_a_redrive_fail).
    "operations:redrive": [],
    "operations:group_redrive": [],
    # The replay confirmation and its `?from=<action>`: test_no_form_value_makes_a_replay_fail.
    "operations:replay": [],
    "operations:batch": [],
    "operations:batch_cancel": [],
    # The group page's redrive figures (HTMX): no parameters.
    "operations:group_progress": [],
    # Redrive the failing-executions page's filter: its query string is that page's filter.
    "operations:filter_redrive": [AttemptFilterForm],
    "login": [AuthenticationForm],
    # The REST API reads the same forms as the pages (api/views.py), plus its own.
    "api:attempts": [AttemptFilterForm],
    "api:attempt": [],
    "api:executions": [ExecutionFilterForm],
    "api:execution": [],
    "api:groups": [GroupFilterForm],
    "api:group": [],
    "api:connections": [ConnectionFilterForm],
    "api:connection": [WindowForm],
    "api:endpoints": [EndpointFilterForm],
    "api:endpoint": [WindowForm],
    "api:sync_runs": [SyncRunFilterForm],
    "api:alert_rules": [AlertRuleFilterForm],
    "api:alert_rule": [],
    "api:alert_rule_deliveries": [DeliveryLogForm],
    "api:schema": [],
    "api:docs": [],
    "api:not_found": [],
    "tokens:list": [],
}
# Parameters no form declares but some code reads (or an attacker tries anyway).
EXTRA_PARAMS = ["next", "unknown"]
# Views that draw an HTMX partial on success (every form page draws one for its errors).
HTMX_PAGES = {"executions:list", "dashboard:sync_status"}


def _dt(delta: timedelta) -> str:
    return quote(_iso(delta), safe="")


# Partners: a hostile value in one field is also tried next to valid values of the fields it
# is checked against (a start with a valid end, a cursor under each sort).
def partners(param: str) -> list[dict[str, str]]:
    return {
        "start": [{"end": _dt(-timedelta(hours=1))}],
        "end": [{"start": _dt(-timedelta(hours=2))}],
        "since": [{"until": _dt(-timedelta(hours=1))}],
        "until": [{"since": _dt(-timedelta(hours=2))}],
        "after": [{"sort": s} for s in ("-duration", "duration", "occurred_at", "all")],
    }.get(param, [])


def params_of(name: str) -> list[str]:
    fields = [f for form in PAGE_FORMS[name] for f in form.base_fields]
    return list(dict.fromkeys([*fields, *EXTRA_PARAMS]))


# --- Requests and verdicts --------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    url: str
    htmx: bool
    status: int
    detail: str = ""

    def __str__(self) -> str:
        where = f"{self.url[:160]}{' (HX)' if self.htmx else ''}"
        return f"{self.status} {where} {self.detail}".rstrip()


def ask(client: Client, method: str, url: str, *, htmx: bool = False, **data: Any) -> Answer:
    """One request, rolled back afterwards.

    Production runs in autocommit, where a query PostgreSQL refuses leaves nothing behind;
    here every test is one transaction, which such a query would poison for the next request.
    """
    headers = {"HX-Request": "true"} if htmx else {}
    savepoint = transaction.savepoint()
    try:
        response = getattr(client, method)(url, headers=headers, **data)
        if response.streaming:  # the CSV export fails, if it does, while streaming
            b"".join(response.streaming_content)
    except Exception as exc:  # a test client re-raising means the server would answer 500
        return Answer(url, htmx, 500, f"{type(exc).__name__}: {str(exc)[:200]}")
    finally:
        transaction.savepoint_rollback(savepoint)
    return Answer(url, htmx, response.status_code)


class Probe:
    """Requests one path with hostile parameters and keeps every answer not in `allowed`."""

    def __init__(
        self, client: Client, path: str, allowed: set[int], labels: set[str] | None = None
    ):
        self.client, self.path, self.allowed = client, path, allowed
        self.values = [(k, v) for k, v in hostile_values() if labels is None or k in labels]
        self.bad: list[str] = []

    def get(self, query: str, *, htmx: bool = False) -> int:
        answer = ask(self.client, "get", f"{self.path}?{query}", htmx=htmx)
        if answer.status not in self.allowed:
            self.bad.append(str(answer))
        return answer.status

    def each_param(self, params: Iterable[str], *, htmx: bool = False) -> None:
        """Each parameter alone with each value; a value the page accepts alone is tried again
        beside valid values of the fields it is checked against, and as an HTMX request when
        `htmx` (a refused one gets the error partial, which `all_params` covers)."""
        for param in params:
            for _, value in self.values:
                query = f"{param}={value}"
                status = self.get(query)
                if status == 200 and htmx:
                    self.get(query, htmx=True)
                if status != 200 and param != "after":  # a cursor's validity depends on sort
                    continue
                for partner in partners(param):
                    self.get(query + "".join(f"&{k}={v}" for k, v in partner.items()))

    def all_params(self, params: list[str], *, htmx: bool) -> None:
        """Every parameter set to the same value at once (the error list names them all)."""
        for _, value in self.values:
            self.get("&".join(f"{p}={value}" for p in params), htmx=htmx)

    def odd_shapes(self) -> None:
        for query in ("start&end", "after=1_1&after=2_2", "a=%ZZ&=&&==", "%00=1"):
            self.get(query)

    def assert_clean(self) -> None:
        assert not self.bad, f"{len(self.bad)} bad answers:\n" + "\n".join(self.bad[:40])


@pytest.fixture
def superuser() -> User:
    return UserFactory.create(username="root", is_superuser=True, is_staff=True)


@pytest.fixture
def root(superuser: User) -> Client:
    client = Client(raise_request_exception=True)
    client.force_login(superuser)
    return client


@pytest.fixture
def objects(account: AwsAccount) -> dict[str, Any]:
    made = _objects_in(account)
    SyncRunFactory.create(account=account)
    return made


def path_of(name: str, objects: dict[str, Any]) -> str:
    kind = OBJECT_PAGES.get(name) or OWN_OBJECT_PAGES.get(name) or ACTIONS.get(name, ("",))[0]
    return reverse(name, args=[objects[kind].pk]) if kind else reverse(name)


# --- The project's own pages ------------------------------------------------------------------

ROUTES = all_routes()
OWN_GET_PAGES = sorted(LIST_PAGES | set(OBJECT_PAGES) | set(OWN_OBJECT_PAGES))


def test_every_page_is_covered() -> None:
    own = {r.name for r in ROUTES if not r.pattern.startswith("admin/")}
    # The SSO views read the provider's redirect, not a form: tests/dashboard/test_sso.py
    # sends them hostile query strings with and without a sign-in under way.
    missing = own - set(PAGE_FORMS) - set(ACTIONS) - set(API_ACTIONS)
    missing -= {"logout", "tokens:revoke", "sso_login", "sso_callback"}
    assert not missing, f"add these pages to PAGE_FORMS in {__name__}: {sorted(missing)}"


@pytest.mark.parametrize("name", OWN_GET_PAGES)
def test_no_query_string_makes_a_page_fail(
    root: Client, objects: dict[str, Any], name: str
) -> None:
    probe = Probe(root, path_of(name, objects), {200, 400})
    params = params_of(name)
    probe.each_param(params, htmx=name in HTMX_PAGES)
    probe.all_params(params, htmx=True)
    probe.all_params(params, htmx=False)
    probe.odd_shapes()
    probe.assert_clean()


def test_no_token_makes_an_alert_action_link_fail(root: Client, objects: dict[str, Any]) -> None:
    """Hostile, cut or forged tokens are a 400 page; a well-signed one for a missing group 404."""
    probe = Probe(root, reverse("alerts:act"), {400, 404})
    probe.each_param(params_of("alerts:act"), htmx=False)
    probe.all_params(params_of("alerts:act"), htmx=False)
    probe.odd_shapes()
    probe.assert_clean()


@pytest.mark.parametrize("name", sorted(API_LISTS | set(API_OBJECTS)))
def test_no_query_string_makes_an_api_resource_fail(
    root: Client, objects: dict[str, Any], name: str
) -> None:
    kind = API_OBJECTS.get(name)
    probe = Probe(
        root, reverse(name, args=[objects[kind].pk]) if kind else reverse(name), {200, 400}
    )
    params = params_of(name)
    probe.each_param(params)
    probe.all_params(params, htmx=False)
    probe.odd_shapes()
    probe.assert_clean()


@pytest.mark.parametrize("name", sorted(API_OBJECTS))
def test_a_hostile_object_id_in_an_api_path_is_a_json_404(root: Client, name: str) -> None:
    for pk in ("99999999999999999999", "9223372036854775808", "0"):
        path = reverse(name, args=[1]).replace("/1/", f"/{pk}/")
        response = root.get(path)
        assert response.status_code == 404 and response.json()["message"], path


# --- The admin --------------------------------------------------------------------------------

# One field of each kind per model, and the lookups that reach the database with a value only
# the database checks (a regex, a year, a JSON path, a range).
LOOKUPS_BY_KIND: dict[str, list[str]] = {
    "text": ["exact", "regex"],
    "number": ["in", "range"],
    "date": ["gte", "year"],
    "json": ["contains", "has_key"],
    "bool": ["isnull"],
}
KINDS = {
    "CharField": "text", "TextField": "text", "EmailField": "text", "URLField": "text",
    "SlugField": "text", "BigAutoField": "number", "AutoField": "number",
    "IntegerField": "number", "PositiveIntegerField": "number", "BigIntegerField": "number",
    "PositiveSmallIntegerField": "number", "DateTimeField": "date", "DateField": "date",
    "JSONField": "json", "BooleanField": "bool",
}  # fmt: skip
# Changelist parameters Django itself reads: search, ordering, page, error flag, popups.
CHANGELIST_PARAMS = ["q", "o", "p", "e", "all", "_to_field", "_popup", "_changelist_filters"]


def field_lookups(model: type[models.Model]) -> list[str]:
    seen: set[str] = set()
    lookups = []
    for f in model._meta.get_fields():
        if f.is_relation and f.many_to_one:
            lookups += [f"{f.name}__id__exact", f"{f.name}__name__regex"]
            continue
        kind = KINDS.get(f.get_internal_type()) if isinstance(f, models.Field) else None
        if kind and kind not in seen:
            seen.add(kind)
            lookups += [f"{f.name}__{lookup}" for lookup in LOOKUPS_BY_KIND[kind]]
    return lookups


def changelist_params(model_admin: admin.ModelAdmin[Any], user: User) -> list[str]:
    request = RequestFactory().get("/")
    request.user = user
    changelist: ChangeList = model_admin.get_changelist_instance(request)
    filters = [str(p) for spec in changelist.filter_specs for p in spec.expected_parameters()]
    lookups = field_lookups(model_admin.model)
    return list(dict.fromkeys([*filters, *CHANGELIST_PARAMS, *lookups, "unknown"]))


ADMINS = sorted(admin.site._registry.items(), key=lambda item: item[0]._meta.label)
# The changelist answers a lookup it cannot apply with a redirect to `?e=1` (Django's design:
# IncorrectLookupParameters), which then explains the problem; a missing object in an admin
# URL redirects to the admin index with a message.
ADMIN_ALLOWED = {200, 302, 400}


@pytest.mark.parametrize("model", [m for m, _ in ADMINS], ids=lambda m: m._meta.label)
def test_no_query_string_makes_an_admin_changelist_fail(
    root: Client, superuser: User, objects: dict[str, Any], model: type[models.Model]
) -> None:
    model_admin = admin.site._registry[model]
    opts = model._meta
    path = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
    probe = Probe(root, path, ADMIN_ALLOWED, ADMIN_VALUE_LABELS)
    probe.each_param(changelist_params(model_admin, superuser))
    probe.odd_shapes()
    probe.assert_clean()


ADMIN_OBJECT_VIEWS = ["change", "history", "delete"]


@pytest.mark.parametrize("model", [m for m, _ in ADMINS], ids=lambda m: m._meta.label)
def test_no_object_id_or_parameter_makes_an_admin_object_page_fail(
    root: Client, superuser: User, objects: dict[str, Any], model: type[models.Model]
) -> None:
    """Each object view of a real row with hostile parameters; the change view (the others
    look the object up the same way) with each hostile value as the object id."""
    opts = model._meta
    base = f"/admin/{opts.app_label}/{opts.model_name}"
    probe = Probe(root, "", ADMIN_ALLOWED, ADMIN_VALUE_LABELS)
    real = model._default_manager.order_by("pk").values_list("pk", flat=True).first()
    request = RequestFactory().get("/")
    request.user = superuser
    for view in ADMIN_OBJECT_VIEWS if real is not None else []:
        probe.path = f"{base}/{quote(str(real))}/{view}/"
        # A view the admin refuses even a superuser (the audit cannot be deleted) is a 403.
        refused = view == "delete" and not admin.site._registry[model].has_delete_permission(
            request
        )
        probe.allowed = ADMIN_ALLOWED | {403} if refused else ADMIN_ALLOWED
        probe.each_param(["_changelist_filters", "_popup", "_to_field"])
    probe.allowed = ADMIN_ALLOWED
    for _, object_id in probe.values:
        probe.path = f"{base}/{object_id or '%20'}/change/"
        probe.get("")
    probe.assert_clean()


# --- Paths, POST actions, cookies -------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(OBJECT_PAGES))
def test_a_hostile_object_id_in_a_path_is_a_404(root: Client, name: str) -> None:
    for pk in ("99999999999999999999", "9223372036854775808", "0"):
        path = reverse(name, args=[1]).replace("/1/", f"/{pk}/")
        assert ask(root, "get", path).status == 404, path


def _posts(
    client: Client, path: str, fields: list[str], allowed: set[int], labels: set[str] | None = None
) -> list[str]:
    bad = []
    for field in fields:
        for label, value in hostile_values():
            if labels is not None and label not in labels:
                continue
            body = f"{field}={value}"
            answer = ask(
                client, "post", path, data=body, content_type="application/x-www-form-urlencoded"
            )
            if answer.status not in allowed:
                bad.append(f"{label}: {answer}")
    return bad


@pytest.mark.parametrize("name", sorted(ACTIONS))
def test_no_form_value_makes_a_post_action_fail(
    root: Client, objects: dict[str, Any], name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from executions import tasks

    monkeypatch.setattr(tasks.sync_account, "delay", lambda *args, **kwargs: None)
    # Actions redirect by design (302); a value no database can hold is refused (400).
    bad = _posts(
        root, path_of(name, objects), ["next", "status", "account", "hours", "unknown"], {302, 400}
    )
    assert not bad, "\n".join(bad[:40])


def test_no_form_value_makes_saving_a_view_fail(root: Client) -> None:
    path = reverse("executions:saved_views")
    bad = _posts(root, path, ["name", "querystring", "shared", "unknown"], {302, 400})
    # A named view whose query string holds each hostile value as a filter value.
    for param in ("q", "status", "after", "since", "account"):
        for label, value in hostile_values():
            body = f"name={param}-{label}&querystring={quote(param + '=', safe='')}{value}"
            answer = ask(
                root, "post", path, data=body, content_type="application/x-www-form-urlencoded"
            )
            if answer.status not in {302, 400}:
                bad.append(f"{param} {label}: {answer}")
    assert not bad, "\n".join(bad[:40])


def test_a_hostile_saved_view_id_is_a_404(root: Client) -> None:
    for pk in ("99999999999999999999", "9223372036854775808", "0"):
        path = reverse("executions:saved_view_delete", args=[1]).replace("/1/", f"/{pk}/")
        assert ask(root, "post", path).status == 404, path


def test_no_form_value_makes_a_redrive_fail(
    root: Client, objects: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from operations import tasks, views
    from operations.redrive import DryRun

    monkeypatch.setattr(tasks.redrive_execution, "delay", lambda *args, **kwargs: None)
    monkeypatch.setattr(tasks.run_redrive_batch, "delay", lambda *args, **kwargs: None)
    account = objects["account"]
    paths = [
        reverse("operations:redrive", args=[objects["execution"].pk]),
        reverse("operations:group_redrive", args=[objects["group"].pk]),
        reverse("operations:batch_cancel", args=[objects["batch"].pk]),
    ]
    # Without an operator role every POST is refused with the page (400) ...
    bad = [b for path in paths[:2] for b in _posts(root, path, ["confirm", "unknown"], {400})]
    # ... with one, a confirmation queues (302) and anything else is refused (400).
    account.operator_auth_mode = "access_keys"
    account.save(update_fields=["operator_auth_mode"])
    # The page shown again after a refused POST asks AWS for its dry run: not here.
    monkeypatch.setattr(views, "dry_run", lambda execution: DryRun(True, "AWS says REDRIVABLE."))
    bad += [b for path in paths for b in _posts(root, path, ["confirm", "unknown"], {302, 400})]
    assert not bad, "\n".join(bad[:40])


def test_no_form_value_makes_a_replay_fail(
    root: Client, objects: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from executions.redaction import default_redactor
    from operations import replay_views, tasks
    from operations.replay import Plan, Replayed

    monkeypatch.setattr(tasks.replay_attempt, "delay", lambda *args, **kwargs: None)
    path = reverse("operations:replay", args=[objects["attempt"].pk])
    fields = ["state_input", "arguments", "mock", "reveal", "confirm", "unknown"]

    def posts(allowed: set[int]) -> list[str]:
        bad = []
        for field in fields:
            for label, value in hostile_values():
                body = f"confirm=on&state_input=%7B%7D&{field}={value}"
                answer = ask(
                    root, "post", path, data=body, content_type="application/x-www-form-urlencoded"
                )
                if answer.status not in allowed:
                    bad.append(f"{field} {label}: {answer}")
        return bad

    # Without an operator role every POST is refused with the page (400).
    bad = posts({400})
    objects["account"].operator_auth_mode = "access_keys"
    objects["account"].save(update_fields=["operator_auth_mode"])
    # The plan is read from AWS, and the revealing call made, by other tests: not here.
    state = {"Type": "Task", "Resource": "arn:aws:states:::http:invoke", "Parameters": {}}
    plan = Plan({"StartAt": "C", "States": {"C": state}}, "C", state, {}, "", default_redactor())
    monkeypatch.setattr(replay_views, "read_plan", lambda attempt: plan)
    monkeypatch.setattr(replay_views, "carry_out_replay", lambda pk, **kw: Replayed("failed"))
    bad += posts({200, 302, 400})
    for label, value in hostile_values():
        answer = ask(root, "get", f"{path}?from={value}")
        if answer.status not in (200, 400):  # 400: a NUL no query may hold
            bad.append(f"from {label}: {answer}")
    assert not bad, "\n".join(bad[:40])


def test_no_form_value_makes_the_login_fail(settings: Any, superuser: User) -> None:
    settings.AXES_FAILURE_LIMIT = 100_000  # every hostile login fails; none may lock anyone out
    bad = _posts(Client(), reverse("login"), ["username", "password", "next"], {200, 302, 400})
    assert not bad, "\n".join(bad[:40])


def test_no_form_value_makes_an_admin_action_fail(root: Client, objects: dict[str, Any]) -> None:
    path = reverse("admin:connections_awsaccount_changelist")
    bad = _posts(
        root, path, ["action", "_selected_action", "index", "select_across"], ADMIN_ALLOWED
    )
    assert not bad, "\n".join(bad[:40])


def test_no_form_value_makes_the_admin_add_form_fail(root: Client) -> None:
    path = reverse("admin:connections_awsaccount_add")
    fields = ["name", "account_id", "regions", "role_arn", "endpoint_url", "groups"]
    bad = _posts(root, path, fields, ADMIN_ALLOWED, ADMIN_VALUE_LABELS)
    valid = "name=acme&account_id=123456789012&auth_mode=role&sync_interval_seconds=60"
    for label, json_text in [("nul", '["\\u0000"]'), ("surrogate", '["\\ud800"]')]:
        body = f"{valid}&regions={quote(json_text)}&role_arn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fx"
        answer = ask(
            root, "post", path, data=body, content_type="application/x-www-form-urlencoded"
        )
        if answer.status not in ADMIN_ALLOWED:
            bad.append(f"regions {label}: {answer}")
    assert not bad, "\n".join(bad[:40])


def test_a_session_cookie_with_a_nul_is_no_session(superuser: User) -> None:
    client = Client()
    client.cookies["sessionid"] = "abcdefghij\x00klmnop"
    response = client.get(reverse("dashboard:overview"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_a_nul_in_a_query_string_is_a_400_that_says_so(root: Client) -> None:
    response = root.get(reverse("admin:connections_connection_changelist") + "?state__exact=%00")
    assert response.status_code == 400
    assert "“state__exact” contains a NUL character" in response.content.decode()


def test_a_lone_surrogate_is_refused_before_the_view(superuser: User) -> None:
    from dashboard.middleware import BadInputMiddleware

    request = RequestFactory().get("/executions/")
    request.user = superuser
    query = request.GET.copy()
    query["q"] = "\ud800"  # cannot come over HTTP, but can from any other caller
    request.GET = query  # type: ignore[assignment]
    middleware = BadInputMiddleware(lambda request: HttpResponse())
    response = middleware.process_view(request, lambda request: HttpResponse(), (), {})
    assert response is not None and response.status_code == 400


def test_an_unchecked_admin_lookup_is_a_400_that_says_so(root: Client) -> None:
    response = root.get(reverse("admin:auth_group_changelist") + "?name__regex=%5B")
    assert response.status_code == 400
    assert "cannot filter with “name__regex”" in response.content.decode()


def test_a_future_window_start_is_a_400_that_says_so(root: Client, objects: dict[str, Any]) -> None:
    for name in ("dashboard:overview", "connections:detail", "connections:endpoint"):
        response = root.get(path_of(name, objects), {"start": _iso(timedelta(hours=1))})
        assert response.status_code == 400, name
        assert "The start must be in the past." in response.content.decode()


def test_an_out_of_range_cursor_is_a_400_that_says_so(root: Client) -> None:
    for name in ("executions:list", "executions:groups", "executions:export"):
        response = root.get(reverse(name), {"after": "99999999999999999999_1"})
        assert response.status_code == 400, name
        assert "Malformed page cursor" in response.content.decode()


# --- Hypothesis: arbitrary text in any parameter of any page ----------------------------------

PAGE_PARAMS = [(name, param) for name in OWN_GET_PAGES for param in params_of(name)]


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    page_param=st.sampled_from(PAGE_PARAMS),
    value=st.text(max_size=40)
    | st.integers().map(str)
    | st.datetimes().map(lambda d: d.isoformat()),
    htmx=st.booleans(),
)
def test_arbitrary_text_in_any_parameter_is_never_a_500(
    root: Client, objects: dict[str, Any], page_param: tuple[str, str], value: str, htmx: bool
) -> None:
    name, param = page_param
    answer = ask(root, "get", f"{path_of(name, objects)}?{param}={quote(value)}", htmx=htmx)
    assert answer.status in (200, 400), str(answer)


def test_a_broken_multipart_body_is_a_400(root: Client, objects: dict[str, Any]) -> None:
    answer = ask(
        root,
        "post",
        path_of("executions:group_resolve", objects),
        data=b"--x\r\nContent-Disposition: form-data; name=\r\n\r\n",
        content_type="multipart/form-data; boundary=",
    )
    assert answer.status == 400, str(answer)


def test_no_parameter_makes_the_admin_site_views_fail(
    root: Client, objects: dict[str, Any]
) -> None:
    """Autocomplete and view-on-site take model names and ids from the URL; by design they
    refuse with 403 (a field without autocomplete) or 404 (nothing to show)."""
    allowed = {200, 302, 400, 403, 404}
    probe = Probe(root, reverse("admin:autocomplete"), allowed, ADMIN_VALUE_LABELS)
    valid = "app_label=connections&model_name=connection&field_name=account"
    probe.each_param(["term", "app_label", "model_name", "field_name", "page"])
    for _, value in probe.values:
        probe.get(f"{valid}&term={value}&page={value}")
    for _, value in probe.values:
        probe.path = f"/admin/r/{value or '%20'}/{value or '%20'}/"
        probe.get("")
    probe.assert_clean()
