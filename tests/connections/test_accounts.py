"""Account registration: validation, write-only secrets encrypted at rest, access scoping."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.db import connection
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
    shown, hidden = make_account(name="shown"), make_account(name="hidden")
    team = Group.objects.create(name="team")
    shown.groups.add(team)
    member = User.objects.create_user("member")
    member.groups.add(team)
    outsider = User.objects.create_user("outsider")
    boss = User.objects.create_superuser("boss")
    assert list(AwsAccount.objects.visible_to(member)) == [shown]
    assert list(AwsAccount.objects.visible_to(outsider)) == []
    assert set(AwsAccount.objects.visible_to(boss)) == {shown, hidden}
