"""`manage.py check --deploy` passes with the production environment, and catches weak setups."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[1]
PRODUCTION = {
    "DEBUG": "0",
    "SECRET_KEY": "p9-3vQ#xk2!Lr8sT0uYw5zA7cE1gH4jM6nB9dF2hK5mP8qS1tV4xZ7aC0eG3iL6o",
    "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
    "ALLOWED_HOSTS": "stepscope.example.com",
    "SECURE_SSL_REDIRECT": "1",
    "SECURE_COOKIES": "1",
    "SECURE_HSTS_SECONDS": "31536000",
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/postgres",
}


def run_check(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    # The browser tests set DJANGO_ALLOW_ASYNC_UNSAFE for Playwright; production never does.
    inherited = set(PRODUCTION) | {"DJANGO_ALLOW_ASYNC_UNSAFE"}
    clean = {k: v for k, v in os.environ.items() if k not in inherited}
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=False,
    )


def test_production_environment_passes_the_deploy_check() -> None:
    proc = run_check(PRODUCTION)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_missing_field_encryption_keys_fails_the_deploy_check() -> None:
    proc = run_check({**PRODUCTION, "FIELD_ENCRYPTION_KEYS": ""})
    assert proc.returncode != 0
    assert "stepscope.W001" in proc.stdout + proc.stderr


def test_default_secret_key_and_debug_fail_the_deploy_check() -> None:
    env = {k: v for k, v in PRODUCTION.items() if k != "SECRET_KEY"}
    proc = run_check({**env, "DEBUG": "1"})
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "security.W009" in out and "security.W018" in out


def test_a_redaction_pattern_that_does_not_compile_fails_the_deploy_check() -> None:
    proc = run_check({**PRODUCTION, "REDACT_VALUE_PATTERNS": r"ACME-\d{6},[unclosed"})
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "stepscope.E002" in out and "'[unclosed'" in out
