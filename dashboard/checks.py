"""Checks of our own: `manage.py check --deploy` must fail loudly on weak secrets, and every
`check` (so `runserver`, `migrate` and `--deploy` too) on redaction patterns that do not compile
on AWS quota shares and worker GC thresholds that make no sense."""

from __future__ import annotations

from typing import Any

from cryptography.fernet import Fernet
from django.conf import settings
from django.core.checks import Error, Tags, Warning, register

from connections.ratelimit import quota_problems
from dashboard.worker_gc import threshold_problem
from executions.redaction import KEY_PATTERN_FLAGS, pattern_problem
from executions.retention import retention_problem


@register(Tags.security, deploy=True)
def field_encryption_keys(app_configs: Any, **kwargs: Any) -> list[Warning | Error]:
    keys = list(settings.FIELD_ENCRYPTION_KEYS)
    if not keys:
        return [
            Warning(
                "FIELD_ENCRYPTION_KEYS is not set: account secrets are encrypted with a key "
                "derived from SECRET_KEY, so rotating SECRET_KEY would lose them.",
                hint="Set FIELD_ENCRYPTION_KEYS to a Fernet key (newest first).",
                id="stepscope.W001",
            )
        ]
    problems: list[Warning | Error] = []
    for index, key in enumerate(keys):
        try:
            Fernet(key.encode())
        except ValueError:
            problems.append(
                Error(
                    f"FIELD_ENCRYPTION_KEYS entry {index + 1} is not a valid Fernet key.",
                    id="stepscope.E001",
                )
            )
    return problems


@register(Tags.security)
def redaction_patterns(app_configs: Any, **kwargs: Any) -> list[Error]:
    """A pattern that does not compile would redact nothing it was meant to: refuse it by name
    (at run time it is left out with a warning and the other patterns still apply)."""
    conf = settings.STEPSCOPE
    problems = []
    for setting, flags in (
        ("REDACT_KEY_PATTERNS", KEY_PATTERN_FLAGS),
        ("REDACT_VALUE_PATTERNS", 0),
    ):
        for pattern in conf.get(setting, ()):
            problem = pattern_problem(pattern, flags)
            if problem is not None:
                problems.append(
                    Error(
                        f"{setting} pattern {pattern!r} is not a valid regular expression: "
                        f"{problem}.",
                        hint="Fix or remove it; patterns are comma-separated Python regexes.",
                        id="stepscope.E002",
                    )
                )
    return problems


@register()
def retention_days(app_configs: Any, **kwargs: Any) -> list[Error]:
    """A RETENTION_DAYS that is not a whole number ≥ 0 would silently keep (or lose) data."""
    problem = retention_problem(settings.STEPSCOPE.get("RETENTION_DAYS", "30"))
    if problem is None:
        return []
    return [
        Error(
            f"{problem}.",
            hint="Set RETENTION_DAYS to the days of executions to keep, or 0 to keep all.",
            id="stepscope.E003",
        )
    ]


@register()
def aws_quota_shares(app_configs: Any, **kwargs: Any) -> list[Warning | Error]:
    """A share that is not a number in (0, 1] would pace the workers wrongly (at run time it
    falls back to its default); a greedy share or a time scale is allowed, but said."""
    errors, warnings = quota_problems()
    hint = (
        "AWS_QUOTA_SHARE and each AWS_QUOTA_SHARES entry (API=share, comma-separated) are "
        "shares of AWS's quota above 0 and at most 1; AWS_QUOTA_TIME_SCALE is a number above 0."
    )
    problems: list[Warning | Error] = [
        Error(f"{e}.", hint=hint, id="stepscope.E010") for e in errors
    ]
    problems += [Warning(f"{w}.", id="stepscope.W010") for w in warnings]
    return problems


@register()
def worker_gc_threshold(app_configs: Any, **kwargs: Any) -> list[Error]:
    """A threshold that is not three positive integers (at run time the default applies)."""
    problem = threshold_problem()
    hint = "Set WORKER_GC_THRESHOLD to gen0,gen1,gen2 (e.g. 50000,10,10) or to python."
    return [Error(f"{problem}.", hint=hint, id="stepscope.E011")] if problem else []
