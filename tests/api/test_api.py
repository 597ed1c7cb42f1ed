"""The REST API beyond the access matrix (tests/test_access_matrix.py): filters shared with the
pages, keyset `next` links, redaction on the way out, JSON errors, the tokens page and command."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from api.models import ApiToken
from connections.models import AwsAccount
from tests.factories import HttpAttemptFactory, SyncRunFactory
from tests.test_access_matrix import _objects_in, api_client

pytestmark = pytest.mark.django_db
CANARY = "canary-3f9a1c-secret"


@pytest.fixture
def api(viewer: User) -> Client:
    return api_client(viewer)


def test_next_links_walk_every_row_once(api: Client, account: AwsAccount) -> None:
    start = timezone.now() - timedelta(days=1)
    runs = [SyncRunFactory.create(account=account) for _ in range(53)]
    for i, run in enumerate(runs):  # two share a time: the id breaks the tie
        type(run).objects.filter(pk=run.pk).update(started_at=start + timedelta(minutes=i // 2))
    seen: list[int] = []
    url: str | None = reverse("api:sync_runs") + f"?account={account.pk}"
    while url:
        body = api.get(url).json()
        seen += [r["id"] for r in body["results"]]
        url = body["next"]
        assert url is None or f"account={account.pk}" in url  # the filters are kept
    assert sorted(seen) == sorted(r.pk for r in runs)
    assert len(seen) == len(set(seen))


def test_attempt_filters_mean_what_they_mean_on_the_page(api: Client, account: AwsAccount) -> None:
    made = _objects_in(account)
    other = HttpAttemptFactory.create(execution=made["execution"], status_code=404)
    url = reverse("api:attempts")
    ids = {r["id"] for r in api.get(url, {"status": "5xx"}).json()["results"]}
    assert made["attempt"].pk in ids and other.pk not in ids
    arn = made["connection"].arn
    ids = {r["id"] for r in api.get(url, {"connection": arn}).json()["results"]}
    assert ids == {made["attempt"].pk}
    # Executions take the same connection filter: those with a failing attempt through it.
    runs = reverse("api:executions")
    ids = {r["id"] for r in api.get(runs, {"connection": arn}).json()["results"]}
    assert ids == {made["execution"].pk}
    assert api.get(runs, {"connection": arn.replace("arn:aws", "arn:gcp")}).status_code == 400
    assert api.get(runs, {"category": made["attempt"].category}).json()["results"]


@pytest.mark.parametrize(
    ("name", "query"),
    [
        ("api:attempts", {"status": "600"}),
        ("api:attempts", {"after": "99999999999999999999_1"}),
        ("api:executions", {"since": "2025-02-30T25:61"}),
        ("api:executions", {"connection": "not-an-arn", "endpoint": "0"}),
        ("api:groups", {"status": "nope"}),
        ("api:connections", {"window": "9y"}),
        ("api:sync_runs", {"account": "-1"}),
    ],
)
def test_a_bad_filter_is_a_400_that_names_the_field(
    api: Client, name: str, query: dict[str, str]
) -> None:
    response = api.get(reverse(name), query)
    assert response.status_code == 400
    body = response.json()
    assert body["message"] == "Invalid filter."
    assert set(body["errors"]) == set(query)


def test_other_errors_are_json_with_a_message(api: Client, account: AwsAccount) -> None:
    group = _objects_in(account)["group"]
    for response, status in [
        (api.get("/api/v1/nothing-here/"), 404),
        (api.post("/api/v1/nothing-here/"), 404),
        (api.delete(reverse("api:attempts")), 405),
        (api.get(reverse("api:attempts") + "?q=a%00b"), 400),
        (api.post(reverse("api:group_status", args=[group.pk]), "{", "application/json"), 403),
    ]:
        assert response.status_code == status
        assert response["Content-Type"] == "application/json"
        assert response.json()["message"]


def test_payloads_are_redacted_on_the_way_out(api: Client, account: AwsAccount) -> None:
    # Stored unredacted here on purpose: rows written before a pattern existed look like this.
    attempt = HttpAttemptFactory.create(
        execution=_objects_in(account)["execution"],
        request_headers={"Authorization": f"Bearer {CANARY}"},
        request_body={"password": CANARY},
        url=f"https://api.example.com/v1?api_key={CANARY}",
    )
    for url in (
        reverse("api:attempt", args=[attempt.pk]),
        reverse("api:execution", args=[attempt.execution_id]),
        reverse("api:attempts"),
    ):
        response = api.get(url)
        assert response.status_code == 200
        assert CANARY not in response.content.decode(), url
    detail = api.get(reverse("api:attempt", args=[attempt.pk])).json()
    assert detail["category"] and detail["hint"] and detail["evidence"]


def test_the_schema_and_docs_are_served_without_a_cdn(client: Client) -> None:
    assert client.get(reverse("api:schema")).status_code == 200
    docs = client.get(reverse("api:docs")).content.decode()
    assert "swagger-ui" in docs
    assert "//cdn" not in docs and "unpkg" not in docs and "jsdelivr" not in docs


@pytest.mark.parametrize(
    "name", ["api:attempts", "api:groups", "api:executions", "api:connections"]
)
def test_a_list_costs_the_same_queries_for_few_rows_or_many(
    api: Client, account: AwsAccount, name: str
) -> None:
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert (
                api.get(
                    reverse(name), {"status": "all"} if name == "api:groups" else {}
                ).status_code
                == 200
            )
        return len(captured)

    _objects_in(account)
    few = queries()
    for _ in range(4):  # each with its own connection, endpoint, group and execution
        _objects_in(account)
    assert queries() == few


# --- Tokens -----------------------------------------------------------------------------------


def test_a_token_is_stored_hashed_and_records_its_last_use(
    viewer: User, account: AwsAccount
) -> None:
    token, plain = ApiToken.issue(viewer, "ci")
    assert token.key_digest == hashlib.sha256(plain.encode()).hexdigest()
    assert plain not in str(ApiToken.objects.filter(pk=token.pk).values().get())
    client = Client(headers={"Authorization": f"Bearer {plain}"})
    assert client.get(reverse("api:groups")).status_code == 200
    token.refresh_from_db()
    first = token.last_used_at
    assert first is not None
    client.get(reverse("api:groups"))  # within the minute: no second write
    token.refresh_from_db()
    assert token.last_used_at == first


def test_the_tokens_page_shows_a_new_token_once_and_revokes(viewer: User, outsider: User) -> None:
    page = Client()
    page.force_login(viewer)
    created = page.post(reverse("tokens:list"), {"name": "deploy script"})
    assert created.status_code == 200
    plain = created.context["created"]
    assert plain.startswith("sts_") and plain in created.content.decode()
    listed = page.get(reverse("tokens:list")).content.decode()
    assert "deploy script" in listed and plain not in listed
    token = ApiToken.objects.get(user=viewer)
    # Someone else's token is not theirs to revoke: 404, as if it did not exist.
    other = Client()
    other.force_login(outsider)
    assert other.post(reverse("tokens:revoke", args=[token.pk])).status_code == 404
    assert page.post(reverse("tokens:revoke", args=[token.pk])).status_code == 302
    api = Client(headers={"Authorization": f"Bearer {plain}"})
    assert api.get(reverse("api:groups")).status_code == 401


def test_the_tokens_page_needs_a_login(client: Client) -> None:
    assert client.get(reverse("tokens:list")).status_code == 302


def test_create_api_token_prints_a_working_token(
    viewer: User, capsys: pytest.CaptureFixture[str]
) -> None:
    call_command("create_api_token", "viewer", "--name", "nightly")
    plain = capsys.readouterr().out.strip()
    assert ApiToken.objects.get(user=viewer).name == "nightly"
    api = Client(headers={"Authorization": f"Bearer {plain}"})
    assert api.get(reverse("api:groups")).status_code == 200


@pytest.mark.parametrize("args", [["nobody"], ["viewer", "--name", ""]])
def test_create_api_token_refuses_bad_input_in_one_line(
    viewer: User, capsys: pytest.CaptureFixture[str], args: list[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        call_command("create_api_token", *args)
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("create_api_token:") and "\n" not in err
    assert not ApiToken.objects.exists()
