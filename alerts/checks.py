"""System checks for alert timing: a lease shorter than a send would let a second worker send a
delivery the first is still sending, and a drain slower than the sync interval would make alerts
arrive later than the data they are about (docs/alerts.md)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Error, register


def _seconds(value: Any) -> float | None:
    """A beat schedule in seconds (a number or a timedelta); None for crontab-like schedules."""
    if isinstance(value, int | float):
        return float(value)
    total = getattr(value, "total_seconds", None)
    return float(total()) if callable(total) else None


@register()
def alert_timing(app_configs: Any, **kwargs: Any) -> list[Error]:
    conf = settings.STEPSCOPE
    problems: list[Error] = []
    # requests' timeout bounds the connect and each read separately, so a send may take about
    # twice it; SMTP likewise.
    longest_send = 2 * max(int(conf["ALERT_HTTP_TIMEOUT_SECONDS"]), int(settings.EMAIL_TIMEOUT))
    if int(conf["ALERT_CLAIM_SECONDS"]) <= longest_send:
        problems.append(
            Error(
                f"ALERT_CLAIM_SECONDS ({conf['ALERT_CLAIM_SECONDS']}) must exceed {longest_send} "
                "s (twice the longer of ALERT_HTTP_TIMEOUT_SECONDS and EMAIL_TIMEOUT): a lease "
                "that expires mid-send lets another worker send the same alert again.",
                hint="Raise ALERT_CLAIM_SECONDS or lower the send timeouts.",
                id="alerts.E001",
            )
        )
    entry = settings.CELERY_BEAT_SCHEDULE.get("drain-alerts")
    tick = _seconds(entry["schedule"]) if entry else None
    interval = int(conf["SYNC_INTERVAL_SECONDS"])
    if tick is None or tick >= interval:
        problems.append(
            Error(
                f"The alert drain (ALERT_TICK_SECONDS, {tick if tick is not None else 'missing'}) "
                f"must run more often than SYNC_INTERVAL_SECONDS ({interval}): alerts would "
                "arrive later than one sync interval after their data.",
                hint="Set ALERT_TICK_SECONDS below SYNC_INTERVAL_SECONDS (default 10 vs 60).",
                id="alerts.E002",
            )
        )
    return problems
