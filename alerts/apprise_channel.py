"""The apprise channel: one encrypted apprise URL (or several, comma-separated) per rule, for the
services apprise knows (Teams, Discord, Telegram, ntfy, Pushover, json://, form://, …) without a
branch of ours for each. The message is the e-mail's subject and plain text."""

from __future__ import annotations

import logging
import re
from urllib.parse import quote

# apprise's generic HTTP services take custom headers as `+Name=value` URL arguments: these get
# the Idempotency-Key like our own webhook does. Other services have no place for it.
HEADER_SCHEMES = frozenset({"json", "jsons", "form", "forms", "xml", "xmls"})
_URL_IN_TEXT = re.compile(r"\b[a-z][a-z0-9+.-]*://\S+", re.IGNORECASE)
MAX_URL_CHARS = 2000


class AppriseError(Exception):
    """The URL is not one apprise can send to, or the service refused; the text says which."""


def split_urls(value: str) -> list[str]:
    return [u.strip() for u in value.replace("\n", ",").split(",") if u.strip()]


def problem(value: str) -> str | None:
    """Why apprise could not use `value` (None: every URL in it is a service apprise knows)."""
    import apprise

    urls = split_urls(value)
    if not urls:
        return "Give an apprise URL."
    if len(value) > MAX_URL_CHARS:
        return f"At most {MAX_URL_CHARS} characters."
    for index, url in enumerate(urls, 1):
        try:
            known = apprise.Apprise().add(url)
        except Exception:  # apprise's plug-ins parse third-party text; any failure is "unknown"
            known = False
        if not known:
            # The URL itself holds the service's token: name it by position, never echo it.
            return f"URL {index} is not one apprise can send to (see apprise's URL formats)."
    return None


def with_key(url: str, key: str) -> str:
    scheme = url.split("://", 1)[0].lower()
    if scheme not in HEADER_SCHEMES:
        return url
    joiner = "&" if "?" in url else "?"
    return f"{url}{joiner}+Idempotency-Key={quote(key, safe='')}"


def send(urls: str, key: str, title: str, body: str) -> str:
    """Notify every URL; returns a short answer, raises AppriseError with the captured reason."""
    import apprise

    notifier = apprise.Apprise()
    targets = split_urls(urls)
    for url in targets:
        if not notifier.add(with_key(url, key)):
            raise AppriseError("apprise: a stored URL is no longer one apprise can send to")
    with apprise.LogCapture(level=logging.WARNING) as log:  # type: ignore[no-untyped-call]
        try:
            ok = notifier.notify(title=title, body=body, body_format=apprise.NotifyFormat.TEXT)
        except Exception as exc:  # a plug-in's own error: the service could not be reached
            raise AppriseError(f"apprise: {type(exc).__name__}") from exc
        said = log.getvalue()
    if not ok:
        # apprise's log lines may quote a URL (the token): drop anything URL-shaped.
        reason = " ".join(_URL_IN_TEXT.sub("<url>", said).split())[:300]
        raise AppriseError(f"apprise: not delivered. {reason}".strip())
    return f"apprise: delivered to {len(targets)} service(s)"
