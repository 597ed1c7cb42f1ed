"""Real local receivers for alert tests: an SMTP server (aiosmtpd) and an HTTP server that
verifies the webhook signature the way docs/alerts.md tells receivers to."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller

TOLERANCE_SECONDS = 300


def verify(secret: str, header: str, body: bytes, now: float | None = None) -> bool:
    """The receiver's check (the snippet in docs/alerts.md): HMAC over "<t>.<body>", recent t."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs((now or time.time()) - timestamp) > TOLERANCE_SECONDS:
        return False
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return hmac.compare_digest(expected.hexdigest(), parts.get("v1", ""))


@dataclass
class Received:
    path: str
    key: str
    body: dict[str, Any]
    signed: bool
    raw: bytes


@dataclass
class HttpReceiver:
    """POST /hook (signed JSON) and /slack (Block Kit); answers `status` (500 = "down")."""

    secret: str
    port: int = 0
    status: int = 200
    received: list[Received] = field(default_factory=list)
    rejected: list[bytes] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None

    def start(self) -> HttpReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                signed = verify(receiver.secret, self.headers.get("X-Stepscope-Signature", ""), raw)
                if self.path == "/hook" and not signed:
                    receiver.rejected.append(raw)
                    self.send_response(401)
                    self.end_headers()
                    return
                if receiver.status < 300:
                    receiver.received.append(
                        Received(
                            self.path,
                            self.headers.get("Idempotency-Key", ""),
                            json.loads(raw),
                            signed,
                            raw,
                        )
                    )
                self.send_response(receiver.status)
                self.end_headers()
                self.wfile.write(b"ok" if receiver.status < 300 else b"receiver is down")

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def on(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path == path]


class _Collect:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd hook name)
        self.messages.append(message_from_bytes(envelope.original_content or envelope.content))
        return "250 OK"


class SmtpReceiver:
    def __init__(self) -> None:
        self.handler = _Collect()
        self.port = free_port()
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)

    def start(self) -> SmtpReceiver:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    @property
    def messages(self) -> list[Message]:
        return self.handler.messages


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def parts(message: Message) -> tuple[str, str]:
    """(plain text, HTML) of a multipart/alternative e-mail."""
    texts = {p.get_content_type(): p.get_payload(decode=True) for p in message.walk()}
    plain, html = texts.get("text/plain", b""), texts.get("text/html", b"")
    return (
        plain.decode() if isinstance(plain, bytes) else "",
        html.decode() if isinstance(html, bytes) else "",
    )
