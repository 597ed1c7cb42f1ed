"""Signed, expiring links in alert messages: acknowledge, snooze, mute or resolve a group.

A link opens a confirm page in Stepscope (alerts.views.act) for a logged-in user who may see
the group and change it; the change itself is the page's POST to the group action it names.
A GET never changes state: mail scanners and link previews open links too."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.core import signing
from django.urls import reverse

SALT = "stepscope.alerts.action-link"


@dataclass(frozen=True)
class Action:
    name: str
    label: str
    confirm: str
    url_name: str  # the group action the confirm page posts to
    post: tuple[tuple[str, str], ...] = ()


ACTIONS = {
    a.name: a
    for a in (
        Action("acknowledge", "Acknowledge", "Acknowledge", "executions:group_acknowledge"),
        Action(
            "snooze",
            "Snooze 24 h",
            "Snooze alerts for 24 hours",
            "executions:group_snooze",
            (("hours", "24"),),
        ),
        Action("mute", "Mute", "Mute its alerts", "executions:group_mute"),
        Action("resolve", "Resolve", "Resolve", "executions:group_resolve"),
    )
}


class LinkError(Exception):
    """The link was tampered with, is not ours, or has expired; the text says which."""


def max_age() -> int:
    return int(settings.STEPSCOPE["ALERT_LINK_MAX_AGE_SECONDS"])


def token(group_id: int, action: str) -> str:
    return signing.dumps({"g": group_id, "a": action}, salt=SALT, compress=True)


def read(value: str) -> tuple[int, Action]:
    try:
        data: Any = signing.loads(value, salt=SALT, max_age=max_age())
    except signing.SignatureExpired as exc:
        raise LinkError("This link has expired; open the group in Stepscope instead.") from exc
    except (signing.BadSignature, ValueError, TypeError) as exc:
        raise LinkError("This link is not valid (it may have been cut or changed).") from exc
    if not isinstance(data, dict) or data.get("a") not in ACTIONS:
        raise LinkError("This link is not valid (it may have been cut or changed).")
    group_id = data.get("g")
    if not isinstance(group_id, int) or isinstance(group_id, bool) or group_id < 1:
        raise LinkError("This link is not valid (it may have been cut or changed).")
    return group_id, ACTIONS[data["a"]]


def action_links(group_id: int, site_url: str) -> list[dict[str, str]]:
    """[{action, label, url}] for a group alert's message (absolute URLs under SITE_URL)."""
    base = site_url.rstrip("/") + reverse("alerts:act")
    return [
        {
            "action": a.name,
            "label": a.label,
            "url": f"{base}?{urlencode({'t': token(group_id, a.name)})}",
        }
        for a in ACTIONS.values()
    ]
