"""Sending one delivery: claim it with a conditional UPDATE and a lease, send, record the answer
at once, retry with exponential backoff. A worker killed mid-send loses its claim when
`claimed_until` passes and the next drain sends again with the same idempotency key and body,
which receivers use to drop the repeat (email: the same Message-ID). HTTP cannot tell us whether
a receiver took a message whose answer we never read, so without that dedupe on the receiver's
side this is at-least-once; the window is the one round trip between the receiver acting and
our "sent" commit."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import datetime, timedelta
from typing import Any

import requests
from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from alerts import apprise_channel, messages
from alerts.choices import Channel, DeliveryStatus
from alerts.models import Alert, Delivery, DeliveryAttempt
from connections.crypto import DecryptionError

SIGNATURE_HEADER = "X-Stepscope-Signature"
KEY_HEADER = "Idempotency-Key"
ANSWER_CHARS = 500


def conf(name: str) -> int:
    return int(settings.STEPSCOPE[name])


class SendError(Exception):
    """The receiver refused the alert or could not be reached; the text is its answer."""


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """`t=<unix>,v1=<hex>`: HMAC-SHA256 over "<timestamp>.<body>" (docs/alerts.md)."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def backoff(attempts: int) -> timedelta:
    """Wait after the `attempts`-th failure: base × 2^(n-1), capped."""
    base, cap = conf("ALERT_RETRY_BASE_SECONDS"), conf("ALERT_RETRY_MAX_SECONDS")
    return timedelta(seconds=min(cap, base * 2 ** max(0, attempts - 1)))


def due_ids(
    now: datetime | None = None, limit: int = 500, account_id: int | None = None
) -> list[int]:
    """Deliveries to (re)try now: pending and due, or claimed by a worker that went silent
    (only those about one account when `account_id` is given)."""
    now = now or timezone.now()
    due = Delivery.objects.filter(
        Q(status=DeliveryStatus.PENDING, next_attempt_at__lte=now)
        | Q(status=DeliveryStatus.SENDING, claimed_until__lt=now)
    )
    if account_id is not None:
        due = due.filter(alert__account_id=account_id)
    return list(due.order_by("next_attempt_at").values_list("pk", flat=True)[:limit])


def claim(delivery_id: int, now: datetime) -> datetime | None:
    """Take the delivery until the returned lease (None: not ours). The lease is also the
    fencing token: only the holder of this exact lease may record the outcome."""
    lease = now + timedelta(seconds=conf("ALERT_CLAIM_SECONDS"))
    taken = Delivery.objects.filter(
        Q(status=DeliveryStatus.PENDING, next_attempt_at__lte=now)
        | Q(status=DeliveryStatus.SENDING, claimed_until__lt=now),
        pk=delivery_id,
    ).update(status=DeliveryStatus.SENDING, claimed_until=lease)
    return lease if taken else None


def deliver(delivery_id: int) -> str:
    """One attempt at one delivery; returns its status afterwards ("" when not ours to send)."""
    try:
        # Loaded (and the rule's secrets decrypted) before the claim: the lease covers the send.
        delivery = Delivery.objects.select_related("alert__rule").get(pk=delivery_id)
        alert, channel = delivery.alert, Channel(delivery.channel)
    except Delivery.DoesNotExist:
        return ""
    except DecryptionError:
        # The rule's URLs or secret were encrypted with a key no longer configured.
        lease = claim(delivery_id, timezone.now())
        if lease is None:
            return ""
        bare = Delivery.objects.get(pk=delivery_id)
        return _failed(
            bare, lease, "a channel secret of the rule cannot be decrypted (FIELD_ENCRYPTION_KEYS)"
        )
    lease = claim(delivery_id, timezone.now())
    if lease is None:
        return ""
    try:
        answer = send(alert, channel)
    except SendError as exc:
        return _failed(delivery, lease, str(exc))
    # Recorded sent in the very next statement: the only window for a repeat is a kill between
    # the receiver's answer and this commit.
    with transaction.atomic():
        Delivery.objects.filter(pk=delivery.pk, claimed_until=lease).update(
            status=DeliveryStatus.SENT,
            sent_at=timezone.now(),
            attempts=F("attempts") + 1,
            claimed_until=None,
            last_answer=answer[:ANSWER_CHARS],
        )
        DeliveryAttempt.objects.create(delivery=delivery, ok=True, answer=answer[:ANSWER_CHARS])
    return DeliveryStatus.SENT


def _failed(delivery: Delivery, lease: datetime, answer: str) -> str:
    attempts = delivery.attempts + 1
    gave_up = attempts >= conf("ALERT_MAX_ATTEMPTS")
    status = DeliveryStatus.FAILED if gave_up else DeliveryStatus.PENDING
    with transaction.atomic():
        Delivery.objects.filter(pk=delivery.pk, claimed_until=lease).update(
            status=status,
            attempts=attempts,
            claimed_until=None,
            next_attempt_at=timezone.now() + backoff(attempts),
            last_answer=answer[:ANSWER_CHARS],
        )
        DeliveryAttempt.objects.create(delivery=delivery, ok=False, answer=answer[:ANSWER_CHARS])
    return status


def send(alert: Alert, channel: Channel) -> str:
    """Send on one channel; returns the receiver's answer, raises SendError with it."""
    rule = alert.rule
    payload = dict(alert.payload, key=alert.key, kind=alert.kind, rule=rule.name)
    if channel == Channel.EMAIL:
        return _email(alert, payload, list(rule.email_to))
    if channel == Channel.APPRISE:
        subject, text, _ = messages.email_parts(payload)
        try:
            return apprise_channel.send(rule.apprise_url, alert.key, subject, text)
        except apprise_channel.AppriseError as exc:
            raise SendError(str(exc)) from exc
    if channel == Channel.SLACK:
        return _post(rule.slack_webhook_url, messages.slack_message(payload), alert.key, "")
    return _post(rule.webhook_url, payload, alert.key, rule.signing_secret)


def _email(alert: Alert, payload: dict[str, Any], to: list[str]) -> str:
    subject, text, html = messages.email_parts(payload)
    domain = str(settings.STEPSCOPE["SITE_URL"]).split("://")[-1].split("/")[0] or "stepscope"
    mail = EmailMultiAlternatives(
        subject,
        text,
        to=to,
        # One Message-ID per alert: a resend after a crash is the same message to mail clients.
        headers={"Message-ID": f"<{alert.key}@{domain}>", KEY_HEADER: alert.key},
    )
    mail.attach_alternative(html, "text/html")
    try:
        mail.send()
    except OSError as exc:  # smtplib errors and refused connections are OSErrors
        raise SendError(f"SMTP: {type(exc).__name__}: {exc}") from exc
    return f"accepted for {len(to)} recipient(s)"


def _post(url: str, body: dict[str, Any], key: str, secret: str) -> str:
    data = json.dumps(body, sort_keys=True).encode()
    headers = {"Content-Type": "application/json", KEY_HEADER: key}
    if secret:
        headers[SIGNATURE_HEADER] = sign(secret, int(time.time()), data)
    try:
        answer = requests.post(
            url, data=data, headers=headers, timeout=conf("ALERT_HTTP_TIMEOUT_SECONDS")
        )
    except requests.RequestException as exc:
        # The exception text may hold the URL, whose path is the webhook's token.
        raise SendError(f"{type(exc).__name__}: the receiver could not be reached") from exc
    text = f"HTTP {answer.status_code} {answer.text[:300]}".strip()
    if answer.status_code >= 300:
        raise SendError(text)
    return text
