"""Account registration: validation, write-only secrets encrypted at rest, access scoping."""

from __future__ import annotations

import io
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.contrib.auth.models import Group, User
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import connection, transaction
from django.test import Client, override_settings

from connections import crypto
from connections.choices import AuthMode
from connections.forms import AwsAccountForm
from connections.models import AwsAccount

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYCANARY0001"
EXTERNAL_ID = "ext-canary-7c1d2e"

pytestmark = pytest.mark.django_db


def make_account(**overrides: object) -> AwsAccount:
    data = {
        "name": "prod",
        "account_id": "123456789012",
        "regions": "eu-west-1,us-east-1",
        "auth_mode": AuthMode.ACCESS_KEYS,
        "access_key_id": "AKIAIOSFODNN7EXAMPLE",
        "secret_access_key": SECRET,
        "enabled": True,
        "sync_interval_seconds": 60,
    }
    data.update(overrides)
    form = AwsAccountForm(data=data)
    assert form.is_valid(), form.errors
    return form.save()


def raw_row(account: AwsAccount) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT t::text FROM connections_awsaccount t WHERE id = %s", [account.pk])
        return str(cursor.fetchone()[0])


def test_secret_is_encrypted_in_the_database_and_readable_in_python() -> None:
    account = make_account()
    row = raw_row(account)
    assert SECRET not in row
    assert crypto.TOKEN_PREFIX in row
    assert AwsAccount.objects.get(pk=account.pk).secret_access_key == SECRET


def test_admin_change_page_never_renders_the_secret(admin_client: Client) -> None:
    account = make_account(
        auth_mode=AuthMode.ASSUME_ROLE,
        role_arn="arn:aws:iam::123456789012:role/Reader",
        external_id=EXTERNAL_ID,
    )
    html = admin_client.get(f"/admin/connections/awsaccount/{account.pk}/change/").content.decode()
    assert "Secrets stored" in html
    assert SECRET not in html
    assert EXTERNAL_ID not in html
    assert "AKIAIOSFODNN7EXAMPLE" not in html


def test_blank_secret_on_edit_keeps_the_stored_value(admin_client: Client) -> None:
    account = make_account()
    form = AwsAccountForm(
        data={
            "name": "prod",
            "account_id": "123456789012",
            "regions": "eu-west-1",
            "auth_mode": AuthMode.ACCESS_KEYS,
            "enabled": True,
            "sync_interval_seconds": 60,
        },
        instance=account,
    )
    assert form.is_valid(), form.errors
    form.save()
    assert AwsAccount.objects.get(pk=account.pk).secret_access_key == SECRET


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("account_id", "12345", "12 digits"),
        ("regions", "eu-west-1,mars-north-1", "mars-north-1"),
        ("endpoint_url", "not a url", "URL"),
    ],
)
def test_invalid_account_fields_are_rejected(field: str, value: str, message: str) -> None:
    data = {
        "name": "x",
        "account_id": "123456789012",
        "regions": "eu-west-1",
        "auth_mode": AuthMode.DEFAULT_CHAIN,
        "enabled": True,
        "sync_interval_seconds": 60,
        field: value,
    }
    form = AwsAccountForm(data=data)
    assert not form.is_valid()
    assert message in str(form.errors[field])


def test_role_arn_must_match_the_account() -> None:
    form = AwsAccountForm(
        data={
            "name": "x",
            "account_id": "123456789012",
            "regions": "eu-west-1",
            "auth_mode": AuthMode.ASSUME_ROLE,
            "role_arn": "arn:aws:iam::999999999999:role/R",
            "enabled": True,
            "sync_interval_seconds": 60,
        }
    )
    assert not form.is_valid()
    assert "another account" in str(form.errors["role_arn"])


def test_register_account_command_is_idempotent_by_name(tmp_path: Path) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET)
    args = [
        "register_account",
        "--name",
        "sandbox",
        "--account-id",
        "123456789012",
        "--region",
        "us-east-1",
        "--access-key-id",
        "AKIAIOSFODNN7EXAMPLE",
        "--secret-access-key-file",
        str(secret_file),
        "--endpoint-url",
        "http://127.0.0.1:4566",
    ]
    call_command(*args)
    call_command(*args[:5], "--region", "us-east-1,eu-west-1", *args[7:])
    account = AwsAccount.objects.get(name="sandbox")
    assert AwsAccount.objects.count() == 1
    assert account.regions == ["us-east-1", "eu-west-1"]
    assert account.secret_access_key == SECRET


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--region", "us-east-1", "--role-arn", "arn:aws:iam::12:role/x"], "role_arn"),
        (["--region", "nowhere-1", "--account-id", "123456789012"], "Unknown region"),
        (
            [
                "--region",
                "us-east-1",
                "--account-id",
                "123456789012",
                "--secret-access-key-file",
                "/nonexistent/file",
            ],
            "cannot read",
        ),
    ],
)
def test_register_account_bad_input_exits_2_with_one_line(args: list[str], expected: str) -> None:
    proc = subprocess.run(
        [sys.executable, "manage.py", "register_account", "--name", "bad", *args],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
        check=False,
        env={**__import__("os").environ, "DATABASE_URL": _database_url()},
    )
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and expected in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr


def _database_url() -> str:
    # The subprocess must see the test database, not the developer's.
    s = connection.settings_dict
    return f"postgres://{s['USER']}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def test_key_rotation_reencrypts_without_loss() -> None:
    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    with override_settings(FIELD_ENCRYPTION_KEYS=[old_key]):
        account = make_account()
        before = raw_row(account)
    with override_settings(FIELD_ENCRYPTION_KEYS=[new_key, old_key]):
        call_command("rotate_secrets")
        after = raw_row(account)
        assert before != after
    with override_settings(FIELD_ENCRYPTION_KEYS=[new_key]):
        assert AwsAccount.objects.get(pk=account.pk).secret_access_key == SECRET


def test_visible_to_scopes_accounts_by_group_grant() -> None:
    shown = make_account(name="shown")
    hidden = make_account(name="hidden", account_id="210987654321")
    team = Group.objects.create(name="team")
    shown.groups.add(team)
    member = User.objects.create_user("member")
    member.groups.add(team)
    outsider = User.objects.create_user("outsider")
    boss = User.objects.create_superuser("boss")
    assert list(AwsAccount.objects.visible_to(member)) == [shown]
    assert list(AwsAccount.objects.visible_to(outsider)) == []
    assert set(AwsAccount.objects.visible_to(boss)) == {shown, hidden}


# --- One AWS account, one owner per region --------------------------------------------------


def test_a_second_registration_of_an_account_in_a_shared_region_is_refused_by_name() -> None:
    make_account(name="prod", regions="eu-west-1,us-east-1")
    form = AwsAccountForm(data={**_account_data("prod-again"), "regions": "us-east-1,eu-north-1"})
    assert not form.is_valid()
    assert str(form.errors["regions"][0]).startswith(
        "AWS account 123456789012 in us-east-1 is already registered as 'prod'; "
        "add the region to that registration instead"
    )
    assert AwsAccount.objects.count() == 1


def test_the_same_account_in_other_regions_is_a_second_registration() -> None:
    make_account(name="prod-eu", regions="eu-west-1")
    other = make_account(name="prod-us", regions="us-east-1")
    assert other.account_id == "123456789012"
    # Editing a registration never collides with itself.
    form = AwsAccountForm(data={**_account_data("prod-us"), "regions": "us-east-1"}, instance=other)
    assert form.is_valid(), form.errors


def test_another_endpoint_does_not_make_a_shared_region_a_second_account() -> None:
    # ARNs name the account id and the region, not the endpoint: both would claim the same rows.
    make_account(name="sandbox-a", regions="us-east-1", endpoint_url="http://127.0.0.1:4566")
    form = AwsAccountForm(
        data={
            **_account_data("sandbox-b"),
            "regions": "us-east-1",
            "endpoint_url": "http://127.0.0.1:4567",
        }
    )
    assert not form.is_valid()
    assert "already registered as 'sandbox-a'" in form.errors["regions"][0]


def test_the_admin_refuses_an_overlapping_registration(admin_client: Client) -> None:
    make_account(name="prod", regions="eu-west-1")
    data = {**_account_data("prod-again"), "regions": "eu-west-1", "enabled": "on"}
    response = admin_client.post("/admin/connections/awsaccount/add/", data)
    assert response.status_code == 200
    assert "is already registered as &#x27;prod&#x27;" in response.content.decode()
    assert list(AwsAccount.objects.values_list("name", flat=True)) == ["prod"]


def test_register_account_refuses_an_overlap_with_one_line_and_exit_2(tmp_path: Path) -> None:
    make_account(name="prod", regions="eu-west-1")
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET)
    err = io.StringIO()
    with pytest.raises(SystemExit) as exited:
        call_command(
            "register_account",
            "--name=prod-again",
            "--account-id=123456789012",
            "--region=eu-west-1",
            "--access-key-id=AKIAIOSFODNN7EXAMPLE",
            f"--secret-access-key-file={secret_file}",
            stderr=err,
        )
    assert exited.value.code == 2
    lines = err.getvalue().strip().splitlines()
    assert len(lines) == 1 and "is already registered as 'prod'" in lines[0], lines
    assert AwsAccount.objects.count() == 1


def test_saving_an_overlapping_account_outside_the_form_is_refused() -> None:
    make_account(name="prod", regions="eu-west-1")
    with pytest.raises(ValidationError, match="already registered as 'prod'"):
        AwsAccount.objects.create(name="sneaky", account_id="123456789012", regions=["eu-west-1"])
    assert AwsAccount.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_overlapping_registrations_saved_at_once_cannot_both_pass() -> None:
    first_saved = threading.Event()
    second: list[str] = []

    def save_first_and_hold_the_transaction() -> None:
        try:
            with transaction.atomic():
                AwsAccount.objects.create(
                    name="one", account_id="123456789012", regions=["eu-west-1"]
                )
                first_saved.set()
                time.sleep(1.0)  # uncommitted: a check without a lock would not see it
        finally:
            connection.close()

    def save_second() -> None:
        first_saved.wait(timeout=10)
        try:
            AwsAccount.objects.create(name="two", account_id="123456789012", regions=["eu-west-1"])
            second.append("saved")
        except ValidationError as exc:
            second.append(" ".join(exc.messages))
        finally:
            connection.close()

    threads = [
        threading.Thread(target=save_first_and_hold_the_transaction),
        threading.Thread(target=save_second),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(second) == 1 and "already registered as 'one'" in second[0], second
    assert list(AwsAccount.objects.values_list("name", flat=True)) == ["one"]


# --- Access keys ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key_id",
    [
        "AKIAIOSFODNN7EXAM",
        "AKIAIOSFODNN7EXAMPLE1",
        "akiaiosfodnn7example",
        "test",
        "AIDAIOSFODNN7EXAMPLE",
    ],
)
def test_an_aws_access_key_id_is_akia_or_asia_and_16_capitals_or_digits(key_id: str) -> None:
    form = AwsAccountForm(data={**_account_data("prod"), "access_key_id": key_id})
    assert not form.is_valid()
    assert form.errors["access_key_id"] == [
        "An AWS access key id is AKIA or ASIA followed by 16 capital letters or digits."
    ]


def test_temporary_aws_access_key_ids_are_accepted() -> None:
    form = AwsAccountForm(data={**_account_data("prod"), "access_key_id": "ASIAIOSFODNN7EXAMPLE"})
    assert form.is_valid(), form.errors


def test_an_endpoint_url_account_takes_any_non_empty_keys_as_localstack_does() -> None:
    data = {**_account_data("localstack"), "endpoint_url": "http://127.0.0.1:4566"}
    form = AwsAccountForm(data={**data, "access_key_id": "test", "secret_access_key": "test"})
    assert form.is_valid(), form.errors
    empty = AwsAccountForm(data={**data, "access_key_id": "", "secret_access_key": ""})
    assert not empty.is_valid()
    assert set(empty.errors) == {"access_key_id", "secret_access_key"}


def _account_data(name: str) -> dict[str, object]:
    return {
        "name": name,
        "account_id": "123456789012",
        "regions": "eu-west-1",
        "auth_mode": AuthMode.ACCESS_KEYS,
        "access_key_id": "AKIAIOSFODNN7EXAMPLE",
        "secret_access_key": SECRET,
        "enabled": True,
        "sync_interval_seconds": 60,
    }
