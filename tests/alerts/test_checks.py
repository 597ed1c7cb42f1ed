"""The alert timing checks: a lease shorter than a send (alerts.E001) and a drain no faster than
the sync interval (alerts.E002) are errors; the shipped defaults pass."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.test import override_settings

from alerts.checks import alert_timing


def _ids(**stepscope: Any) -> list[str]:
    with override_settings(STEPSCOPE={**settings.STEPSCOPE, **stepscope}):
        return [p.id for p in alert_timing(None) if p.id]


def _with_tick(schedule: Any) -> list[str]:
    beat = {**settings.CELERY_BEAT_SCHEDULE, "drain-alerts": {"schedule": schedule}}
    with override_settings(CELERY_BEAT_SCHEDULE=beat):
        return _ids()


def test_the_defaults_pass_and_manage_py_check_runs_them() -> None:
    assert _ids() == []
    call_command("check")  # raises SystemCheckError if an alerts.E0xx fires


def test_a_lease_not_above_twice_the_send_timeout_is_refused() -> None:
    assert _ids(ALERT_CLAIM_SECONDS=20, ALERT_HTTP_TIMEOUT_SECONDS=10) == ["alerts.E001"]
    assert _ids(ALERT_CLAIM_SECONDS=21, ALERT_HTTP_TIMEOUT_SECONDS=10) == []
    with override_settings(EMAIL_TIMEOUT=40):
        assert _ids() == ["alerts.E001"]  # the SMTP timeout counts too


def test_a_drain_no_faster_than_the_sync_interval_is_refused() -> None:
    interval = int(settings.STEPSCOPE["SYNC_INTERVAL_SECONDS"])
    assert _with_tick(interval) == ["alerts.E002"]
    assert _with_tick(timedelta(seconds=interval - 1)) == []
    assert _ids(SYNC_INTERVAL_SECONDS=5) == ["alerts.E002"]  # tick 10 s
    beat = {k: v for k, v in settings.CELERY_BEAT_SCHEDULE.items() if k != "drain-alerts"}
    with override_settings(CELERY_BEAT_SCHEDULE=beat):
        assert _ids() == ["alerts.E002"]  # no drain scheduled at all
