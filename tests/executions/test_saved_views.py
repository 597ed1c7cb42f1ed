"""Saved views (executions/saved_views.py): save, list, open, delete; sharing follows the
account grants and never widens what a viewer sees."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client
from django.urls import reverse

from connections.models import AwsAccount
from executions.models import SavedView
from tests.factories import ExecutionFactory, HttpAttemptFactory, UserFactory

pytestmark = pytest.mark.django_db
VIEWS = reverse("executions:saved_views")


def client_for(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def save(client: Client, name: str, querystring: str, *, shared: bool = False) -> Any:
    data = {"name": name, "querystring": querystring, **({"shared": "on"} if shared else {})}
    return client.post(VIEWS, data)


def listed(client: Client) -> list[str]:
    return [v.name for v in client.get(VIEWS).context["views"]]


@pytest.fixture
def colleague(viewers: Group) -> User:
    return UserFactory.create(username="colleague", groups=[viewers])


def test_a_saved_view_is_listed_and_opens_the_page_with_its_filters(
    viewer_client: Client, account: AwsAccount
) -> None:
    execution = ExecutionFactory.create(state_machine__account=account, name="payroll-run-42")
    HttpAttemptFactory.create(execution=execution)
    HttpAttemptFactory.create(execution__state_machine__account=account)
    response = save(viewer_client, "Payroll 5xx", "q=payroll-run&status=5xx&after=")
    assert response.status_code == 302
    view = SavedView.objects.get(name="Payroll 5xx")
    assert view.querystring == "status=5xx&q=payroll-run"  # the form's order, no empty cursor
    assert list(view.accounts.all()) == [account]
    assert listed(viewer_client) == ["Payroll 5xx"]
    page = viewer_client.get(view.get_absolute_url())
    assert [r.execution.pk for r in page.context["page"].rows] == [execution.pk]


def test_the_list_page_offers_to_save_the_current_filters(viewer_client: Client) -> None:
    html = viewer_client.get(reverse("executions:list"), {"q": "timeout"}).content.decode()
    assert 'name="querystring" value="q=timeout"' in html
    assert f'action="{VIEWS}"' in html


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ({"name": "x", "querystring": "status=banana"}, "status"),
        ({"name": "x", "querystring": "q=ab"}, "q"),
        ({"name": "", "querystring": ""}, "name"),
        ({"name": "x" * 101, "querystring": ""}, "name"),
    ],
)
def test_an_invalid_view_is_a_400_and_nothing_is_saved(
    viewer_client: Client, data: dict[str, str], problem: str
) -> None:
    response = viewer_client.post(VIEWS, data)
    assert response.status_code == 400
    assert problem in response.content.decode()
    assert not SavedView.objects.exists()


def test_the_same_name_twice_is_a_400(viewer_client: Client) -> None:
    assert save(viewer_client, "Mine", "").status_code == 302
    response = save(viewer_client, "Mine", "status=503")
    assert response.status_code == 400
    assert "already have a saved view" in response.content.decode()
    assert SavedView.objects.count() == 1


def test_a_shared_view_is_listed_to_colleagues_a_private_one_is_not(
    viewer_client: Client, colleague: User, outsider_client: Client
) -> None:
    save(viewer_client, "Team view", "status=5xx", shared=True)
    save(viewer_client, "My view", "status=4xx")
    assert listed(client_for(colleague)) == ["Team view"]
    assert listed(outsider_client) == []


def test_a_shared_view_over_a_hidden_account_is_not_listed(
    viewer_client: Client, other_account: AwsAccount
) -> None:
    boss = UserFactory.create(username="boss", is_superuser=True)
    save(client_for(boss), "Hidden team triage", f"account={other_account.pk}", shared=True)
    assert SavedView.objects.get().accounts.get() == other_account
    assert listed(viewer_client) == []
    assert "Hidden team triage" not in viewer_client.get(VIEWS).content.decode()


def test_opening_someone_elses_view_shows_only_what_the_viewer_may_see(
    viewer: User, viewer_client: Client, account: AwsAccount, other_account: AwsAccount
) -> None:
    boss = UserFactory.create(username="boss", is_superuser=True)
    hidden = HttpAttemptFactory.create(execution__state_machine__account=other_account)
    HttpAttemptFactory.create(execution__state_machine__account=account)
    save(client_for(boss), "Everything", "view=attempts", shared=True)
    view = SavedView.objects.get()
    assert listed(viewer_client) == ["Everything"]  # saved over both accounts, one is the viewer's
    rows = viewer_client.get(view.get_absolute_url()).context["page"].rows
    assert len(rows) == 1 and hidden.pk not in {r.pk for r in rows}


def test_only_the_owner_deletes_a_view(viewer_client: Client, colleague: User) -> None:
    save(viewer_client, "Team view", "", shared=True)
    view = SavedView.objects.get()
    delete = reverse("executions:saved_view_delete", args=[view.pk])
    assert client_for(colleague).post(delete).status_code == 404
    assert viewer_client.get(delete).status_code == 405
    assert viewer_client.post(delete).status_code == 302
    assert not SavedView.objects.exists()


def test_a_third_party_name_is_escaped(viewer_client: Client) -> None:
    save(viewer_client, '<script>alert("x")</script>', "")
    html = viewer_client.get(VIEWS).content.decode()
    assert '<script>alert("x")' not in html and "&lt;script&gt;" in html
