"""`manage.py add_alert_rule`: idempotent by name, exit 2 with one line on bad input, and the
webhook URLs and signing secret stored encrypted."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection

from alerts.models import AlertRule
from tests.factories import AwsAccountFactory

pytestmark = pytest.mark.django_db
HOOK = "https://hooks.example.com/T000/B000/tokentokentoken"


def test_creates_then_updates_by_name_and_encrypts_the_secrets(tmp_path: Path) -> None:
    account = AwsAccountFactory.create(name="prod")
    secret = tmp_path / "secret"
    secret.write_text("s3cr3t-signing-key-1234\n")
    args = ["--name", "oncall", "--events", "new_group,regression", "--webhook", HOOK]
    call_command("add_alert_rule", *args, "--signing-secret-file", str(secret), "--account", "prod")
    call_command("add_alert_rule", *args, "--signing-secret-file", str(secret), "--account", "prod")
    rule = AlertRule.objects.get()
    assert (rule.events, rule.signing_secret, list(rule.accounts.all())) == (
        ["new_group", "regression"],
        "s3cr3t-signing-key-1234",
        [account],
    )
    call_command(
        "add_alert_rule", "--name", "oncall", "--events", "sync_failed", "--email", "a@b.io"
    )
    rule = AlertRule.objects.get()
    assert (rule.events, rule.email_to, rule.webhook_url, rule.accounts.count()) == (
        ["sync_failed"],
        ["a@b.io"],
        "",
        0,
    )
    call_command("add_alert_rule", *args, "--signing-secret-file", str(secret))
    with connection.cursor() as cursor:
        cursor.execute("SELECT row_to_json(r)::text FROM alerts_alertrule r")
        (stored,) = cursor.fetchone()
    assert "tokentokentoken" not in stored and "s3cr3t" not in stored and "fernet:" in stored


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--events", "new_group,bogus", "--webhook", HOOK], "unknown event 'bogus'"),
        (["--events", "new_group"], "give at least one channel"),
        (["--events", "new_group", "--webhook", "ftp://x"], "--webhook is not an http(s) URL"),
        (["--events", "new_group", "--email", "nobody"], "is not an e-mail address"),
        (["--events", "new_group", "--email", "a@b.io", "--account", "nope"], "no account named"),
        (["--events", "new_group", "--webhook", HOOK, "--signing-secret-file", "/nonexistent"],
         "FileNotFoundError"),
    ],
)  # fmt: skip
def test_bad_input_exits_2_with_one_line(
    args: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        call_command("add_alert_rule", "--name", "x", *args)
    err = capsys.readouterr().err
    assert exited.value.code == 2
    assert err.count("\n") == 1 and says in err, err
    assert not AlertRule.objects.exists()
