"""What an alert says, built once from stored rows (already redacted at ingestion) and passed
through the Redactor again, so no channel can carry a secret; then rendered per channel."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings
from django.template.loader import render_to_string

from alerts.choices import Event
from alerts.links import action_links
from connections.models import AwsAccount, Connection, SyncRun
from executions.choices import Category
from executions.models import FailureGroup, StateMachine
from executions.redaction import Redactor, default_redactor
from executions.resolution import account_redactor

TITLES = {
    Event.NEW_GROUP: "New failure",
    Event.REGRESSION: "Regression",
    Event.CONNECTION_DEAUTHORIZED: "Connection de-authorized",
    Event.CONNECTION_FAILED_CONNECTIVITY: "Connection unreachable",
    Event.SYNC_FAILED: "Sync failed",
    Event.RATE: "Failure rate crossed",
    Event.WORSENED: "Got worse while snoozed",
}


def link(path: str) -> str:
    """An absolute link into Stepscope (SITE_URL is where users reach it)."""
    return str(settings.STEPSCOPE["SITE_URL"]).rstrip("/") + path


def _when(value: datetime | None) -> str:
    return value.isoformat() if value else ""


def redactor_for(account: AwsAccount) -> Redactor:
    return account_redactor(account, default_redactor())


def clean(payload: dict[str, Any], redactor: Redactor) -> dict[str, Any]:
    """Every text of the message through the one redaction recipe (defence in depth: the rows
    were redacted when stored, a rule added since may know more)."""
    cleaned: dict[str, Any] = redactor.value(payload)
    return cleaned


def group_payload(event: Event, group: FailureGroup, why: str = "") -> dict[str, Any]:
    """`why` says more in the title: the rate crossed ("50 failures in 5 minutes")."""
    endpoint = f"{group.method} {group.endpoint.url_template}" if group.endpoint else group.method
    payload = {
        "event": event.value,
        "title": f"{TITLES[event]}{f' ({why})' if why else ''}: {group.title}",
        "account": group.account.name,
        "category": Category(group.category).label if group.category in Category else "",
        "connection": group.connection.name if group.connection else "",
        "endpoint": endpoint.strip(),
        "count": group.count,
        "first_seen": _when(group.first_seen_at),
        "last_seen": _when(group.last_seen_at),
        "hint": group.hint,
        "link": link(group.get_absolute_url()),
    }
    return with_actions(clean(payload, redactor_for(group.account)), group)


def with_actions(payload: dict[str, Any], group: FailureGroup) -> dict[str, Any]:
    """The signed action links, added after redaction (a token may look like a secret to a
    value pattern, and it is ours, not third-party text)."""
    return {**payload, "actions": action_links(group.pk, str(settings.STEPSCOPE["SITE_URL"]))}


def broken_machines(connection: Connection) -> list[str]:
    """The cascade: state machines with an HTTP task calling through this connection."""
    machines = StateMachine.objects.filter(account_id=connection.account_id).only(
        "name", "http_states"
    )
    return sorted(
        m.name
        for m in machines
        if any(
            isinstance(s, dict) and s.get("connection_arn") == connection.arn
            for s in (m.http_states or {}).values()
        )
    )


def connection_payload(event: Event, connection: Connection, reason: str) -> dict[str, Any]:
    machines = broken_machines(connection)
    payload = {
        "event": event.value,
        "title": f"{TITLES[event]}: {connection.name}",
        "account": connection.account.name,
        "region": connection.region,
        "connection": connection.name,
        "state": connection.state,
        "reason": reason,
        "state_machines": machines,
        "hint": (
            f"Every HTTP task calling through it fails until it is re-authorized "
            f"(UpdateConnection): {len(machines)} state machine(s) affected."
        ),
        "link": link(connection.get_absolute_url()),
    }
    return clean(payload, redactor_for(connection.account))


def sync_payload(run: SyncRun, *, stalled: bool) -> dict[str, Any]:
    errors = [str(e) for e in run.errors][:3]
    payload = {
        "event": Event.SYNC_FAILED.value,
        "title": f"{'Sync stalled' if stalled else TITLES[Event.SYNC_FAILED]}: {run.account.name}",
        "account": run.account.name,
        "errors": errors,
        "hint": "Stepscope shows stale data for this account until a sync succeeds.",
        "first_seen": _when(run.started_at),
        "last_seen": _when(run.finished_at),
        "link": link(run.account.get_absolute_url()),
    }
    return clean(payload, redactor_for(run.account))


def digest_payload(parent: dict[str, Any], added: int, group: FailureGroup) -> dict[str, Any]:
    payload = dict(parent)
    payload.update(
        event=parent.get("event", ""),
        digest=True,
        title=f"{added} more failure(s) during the quiet period: {group.title}",
        count=group.count,
        last_seen=_when(group.last_seen_at),
        hint=group.hint,
    )
    payload.pop("actions", None)
    return with_actions(clean(payload, redactor_for(group.account)), group)


FIELDS = (
    ("category", "Category"),
    ("connection", "Connection"),
    ("endpoint", "Endpoint"),
    ("count", "Count"),
    ("first_seen", "First seen"),
    ("last_seen", "Last seen"),
    ("state_machines", "State machines"),
    ("reason", "Reason"),
    ("errors", "Errors"),
)


def fields(payload: dict[str, Any]) -> list[tuple[str, str]]:
    """The (label, text) pairs every channel shows, in one order."""
    out = []
    for name, label in FIELDS:
        value = payload.get(name)
        if value in (None, "", []):
            continue
        out.append((label, ", ".join(map(str, value)) if isinstance(value, list) else str(value)))
    return out


def email_parts(payload: dict[str, Any]) -> tuple[str, str, str]:
    """Subject, plain text and HTML (autoescaped template) of the email."""
    context = {"p": payload, "fields": fields(payload)}
    return (
        f"[Stepscope] {payload.get('title', '')}"[:200],
        render_to_string("alerts/email.txt", context),
        render_to_string("alerts/email.html", context),
    )


def _mrkdwn(text: str) -> str:
    # Slack's mrkdwn treats these three as control characters.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_message(payload: dict[str, Any]) -> dict[str, Any]:
    """A Block Kit message for Slack-compatible incoming webhooks."""
    title = str(payload.get("title", ""))
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title[:150]}},
    ]
    pairs = fields(payload)
    if pairs:
        blocks.append(
            {
                "type": "section",
                "fields": [
                    {"type": "mrkdwn", "text": f"*{label}*\n{_mrkdwn(text)[:1900]}"}
                    for label, text in pairs[:10]
                ],
            }
        )
    if payload.get("hint"):
        blocks.append(
            {"type": "section", "text": {"type": "mrkdwn", "text": _mrkdwn(payload["hint"])[:2900]}}
        )
    blocks.append(
        {
            "type": "actions",
            "elements": [
                {
                    "type": "button",
                    "text": {"type": "plain_text", "text": "Open in Stepscope"},
                    "url": payload.get("link", ""),
                },
                *(
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": str(a.get("label", ""))[:75]},
                        "url": str(a.get("url", "")),
                    }
                    for a in payload.get("actions") or []
                    if isinstance(a, dict)
                ),
            ],
        }
    )
    return {"text": title, "blocks": blocks}
