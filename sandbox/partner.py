"""The partner API: a real local HTTP server whose endpoints misbehave on purpose.

Every endpoint accepts `?delay=<seconds>` (sleep before answering). Endpoints:

    /ok                       200 {"ok": true}
    /echo                     200, echoes method, path, query, headers and body; each
                              ?reflect=<header> also comes back as a response header
    /text, /binary            200 text/plain, 200 application/octet-stream
    /slow?seconds=S           200 after S seconds (timeouts)
    /basic, /apikey, /bearer  200 with good credentials, 403 for the read-only ones, else 401
    /oauth/token              OAuth client-credentials token endpoint (401 for a bad client)
    /orders                   POST: 415 unless JSON, 400 naming a missing header or field, else 201
    /form                     POST: 415 unless form-encoded, else 200 echoing the fields
    /inventory/<sku>          200, or 404 for skus starting with "missing"
    /status/<code>            that status with a JSON error body (429 adds Retry-After)
    /flaky?key=K&fail=k&of=n  fails (503, or ?status=) on k of every n calls per key
    /oversized?kb=N           200 with an N KiB JSON body (ignores Range)
    /reset                    resets the TCP connection
    anything else             404
"""

from __future__ import annotations

import base64
import contextlib
import json
import secrets
import socket
import struct
import sys
import threading
import time
import urllib.parse
from collections import defaultdict
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

BASIC_USERNAME = "stepscope"
BASIC_PASSWORD = "sandbox-password"
READONLY_USERNAME = "readonly"
API_KEY_NAME = "x-api-key"
API_KEY = "sk-sandbox-1234"
READONLY_API_KEY = "sk-sandbox-readonly"
OAUTH_CLIENT_ID = "stepscope-client"
OAUTH_CLIENT_SECRET = "sandbox-client-secret"
OAUTH_READONLY_CLIENT_ID = "stepscope-readonly-client"
TOKEN_LIFETIME_SECONDS = 3600
MAX_DELAY_SECONDS = 600.0

_READONLY_TOKEN_PREFIX = "ro-"


class PartnerState:
    """What the partner remembers between requests: issued tokens and flaky counters."""

    def __init__(self) -> None:
        self.tokens: dict[str, float] = {}
        self.flaky_calls: defaultdict[str, int] = defaultdict(int)
        self.lock = threading.Lock()

    def issue_token(self, readonly: bool) -> str:
        token = (_READONLY_TOKEN_PREFIX if readonly else "") + secrets.token_urlsafe(24)
        with self.lock:
            self.tokens[token] = time.time() + TOKEN_LIFETIME_SECONDS
        return token

    def token_valid(self, token: str) -> bool:
        with self.lock:
            return self.tokens.get(token, 0) > time.time()

    def flaky_call(self, key: str) -> int:
        """0-based index of this call for `key`."""
        with self.lock:
            index = self.flaky_calls[key]
            self.flaky_calls[key] += 1
            return index


class PartnerHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "PartnerAPI/1.0"
    server: PartnerHTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def do_OPTIONS(self) -> None:
        self._handle()

    def do_HEAD(self) -> None:
        self._handle()

    def _handle(self) -> None:
        parsed = urllib.parse.urlsplit(self.path)
        self.route = parsed.path.rstrip("/") or "/"
        self.query = urllib.parse.parse_qs(parsed.query, keep_blank_values=True)
        length = int(self.headers.get("Content-Length") or 0)
        self.body = self.rfile.read(length) if length else b""
        delay = min(_float(self._param("delay")), MAX_DELAY_SECONDS)
        if delay > 0:
            time.sleep(delay)
        handler = _ROUTES.get(self.route.split("/")[1] if self.route != "/" else "")
        if handler is None:
            self._json(404, {"error": "NotFound", "message": f"No route for {self.route}"})
        else:
            handler(self)

    # --- helpers ---------------------------------------------------------------------------

    def _param(self, name: str, default: str = "") -> str:
        return self.query.get(name, [default])[-1]

    def _json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json", headers)

    def _send(
        self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _error(self, status: int, error: str, message: str, **extra: Any) -> None:
        self._json(status, {"error": error, "message": message, **extra})

    def _content_type(self) -> str:
        return (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()

    def _reset(self) -> None:
        # SO_LINGER 0 makes close() send a TCP RST instead of a FIN.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True
        self.wfile = _Discard()  # type: ignore[assignment]

    def _auth_failure(self, scheme: str) -> None:
        self._json(
            401,
            {"error": "Unauthorized", "message": "Missing or invalid credentials"},
            {"WWW-Authenticate": f'{scheme} realm="partner"'},
        )

    def _forbidden(self) -> None:
        self._error(403, "Forbidden", "These credentials are read-only")


class _Discard:
    # socketserver's finish() flushes the stream unless it says it is closed.
    closed = True

    def write(self, data: bytes) -> int:
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


def _float(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        return 0.0


def _int(value: str, default: int) -> int:
    try:
        return int(value)
    except ValueError:
        return default


# --- endpoints ------------------------------------------------------------------------------


def _ok(h: PartnerHandler) -> None:
    h._json(200, {"ok": True})


def _echo(h: PartnerHandler) -> None:
    text = h.body.decode("utf-8", "replace")
    # Partners that copy request headers into their answer (correlation ids, tenant headers).
    reflected = {name: h.headers[name] for name in h.query.get("reflect", []) if name in h.headers}
    h._json(
        200,
        {
            "method": h.command,
            "path": h.route,
            "query": h.query,
            "headers": {k.lower(): v for k, v in h.headers.items()},
            "body": text,
        },
        reflected,
    )


def _text(h: PartnerHandler) -> None:
    h._send(200, b"pong", "text/plain; charset=utf-8")


def _binary(h: PartnerHandler) -> None:
    h._send(200, bytes(range(256)), "application/octet-stream")


def _slow(h: PartnerHandler) -> None:
    seconds = min(_float(h._param("seconds", "5")), MAX_DELAY_SECONDS)
    time.sleep(seconds)
    h._json(200, {"ok": True, "slept": seconds})


def _basic(h: PartnerHandler) -> None:
    header = h.headers.get("Authorization") or ""
    username = password = ""
    if header.startswith("Basic "):
        with contextlib.suppress(ValueError):
            username, _, password = base64.b64decode(header[6:]).decode().partition(":")
    if password != BASIC_PASSWORD or username not in (BASIC_USERNAME, READONLY_USERNAME):
        h._auth_failure("Basic")
    elif username == READONLY_USERNAME and h.command != "GET":
        h._forbidden()
    else:
        h._json(200, {"ok": True, "user": username})


def _apikey(h: PartnerHandler) -> None:
    key = h.headers.get(API_KEY_NAME) or ""
    if key not in (API_KEY, READONLY_API_KEY):
        h._json(401, {"error": "Unauthorized", "message": f"Missing or invalid {API_KEY_NAME}"})
    elif key == READONLY_API_KEY and h.command != "GET":
        h._forbidden()
    else:
        h._json(200, {"ok": True})


def _bearer(h: PartnerHandler) -> None:
    header = h.headers.get("Authorization") or ""
    token = header[7:] if header.startswith("Bearer ") else ""
    if not h.server.state.token_valid(token):
        h._auth_failure("Bearer")
    elif token.startswith(_READONLY_TOKEN_PREFIX) and h.command != "GET":
        h._forbidden()
    else:
        h._json(200, {"ok": True, "captured": h.command != "GET"})


def _oauth(h: PartnerHandler) -> None:
    if h.route != "/oauth/token":
        h._error(404, "NotFound", f"No route for {h.route}")
        return
    form = {k: v[-1] for k, v in urllib.parse.parse_qs(h.body.decode()).items()}
    client_id, client_secret = form.get("client_id", ""), form.get("client_secret", "")
    header = h.headers.get("Authorization") or ""
    if header.startswith("Basic "):
        client_id, _, client_secret = base64.b64decode(header[6:]).decode().partition(":")
    if form.get("grant_type", "client_credentials") != "client_credentials":
        h._json(400, {"error": "unsupported_grant_type"})
    elif client_secret != OAUTH_CLIENT_SECRET or client_id not in (
        OAUTH_CLIENT_ID,
        OAUTH_READONLY_CLIENT_ID,
    ):
        h._json(401, {"error": "invalid_client"})
    else:
        token = h.server.state.issue_token(readonly=client_id == OAUTH_READONLY_CLIENT_ID)
        h._json(
            200,
            {"access_token": token, "token_type": "Bearer", "expires_in": TOKEN_LIFETIME_SECONDS},
        )


def _orders(h: PartnerHandler) -> None:
    if h.command == "GET":
        h._json(200, {"orders": [{"orderId": "ord-1001", "status": "PAID"}]})
        return
    if h._content_type() != "application/json":
        h._error(415, "UnsupportedMediaType", "Content-Type must be application/json")
        return
    if not h.headers.get("Idempotency-Key"):
        h._error(
            400,
            "MissingHeader",
            "Missing required header: Idempotency-Key",
            header="Idempotency-Key",
        )
        return
    try:
        order = json.loads(h.body or b"{}")
    except ValueError:
        h._error(400, "InvalidJson", "The request body is not valid JSON")
        return
    for name in ("customerId", "amount"):
        if not isinstance(order, dict) or order.get(name) in (None, ""):
            h._error(400, "ValidationError", f"Missing required field: {name}", field=name)
            return
    h._json(201, {"orderId": f"ord-{secrets.token_hex(4)}", "status": "CREATED"})


def _form(h: PartnerHandler) -> None:
    if h._content_type() != "application/x-www-form-urlencoded":
        h._error(
            415, "UnsupportedMediaType", "Content-Type must be application/x-www-form-urlencoded"
        )
        return
    h._json(200, {"fields": urllib.parse.parse_qs(h.body.decode(), keep_blank_values=True)})


def _inventory(h: PartnerHandler) -> None:
    sku = h.route.split("/", 2)[2] if h.route.count("/") >= 2 else ""
    if not sku or sku.startswith("missing"):
        h._error(404, "NotFound", f"Unknown SKU: {sku}", sku=sku)
    else:
        h._json(200, {"sku": sku, "available": 10 + len(sku)})


def _status(h: PartnerHandler) -> None:
    code = _int(h.route.rsplit("/", 1)[-1], 500)
    try:
        phrase = HTTPStatus(code).phrase
    except ValueError:
        phrase = "Unknown"
    headers = {"Retry-After": "1"} if code in (429, 503) else {}
    if code in (204, 304) or code < 200:
        h.send_response(code)
        h.send_header("Content-Length", "0")
        h.end_headers()
        return
    h._json(code, {"error": phrase.replace(" ", ""), "message": phrase, "status": code}, headers)


def _sequence(h: PartnerHandler) -> None:
    # `/sequence?key=K&statuses=429,500,200`: the n-th call for K answers the n-th status
    # (the last one repeats), e.g. a 429 then a 500 across two retries.
    statuses = [_int(s, 500) for s in h._param("statuses", "500").split(",") if s.strip()]
    call = h.server.state.flaky_call("sequence:" + h._param("key", "default"))
    status = statuses[min(call, len(statuses) - 1)] if statuses else 500
    h._json(status, {"call": call + 1, "status": status})


def _flaky(h: PartnerHandler) -> None:
    fail, of = _int(h._param("fail", "1"), 1), max(_int(h._param("of", "2"), 2), 1)
    call = h.server.state.flaky_call(h._param("key", "default"))
    if call % of < fail:
        status = _int(h._param("status", "503"), 503)
        h._json(status, {"error": "Flaky", "message": f"Call {call + 1} fails on purpose"})
    else:
        h._json(200, {"ok": True, "call": call + 1})


def _oversized(h: PartnerHandler) -> None:
    kib = max(_int(h._param("kb", "300"), 300), 1)
    filler = "x" * 1000
    items = [{"i": i, "filler": filler} for i in range(kib * 1024 // 1015 + 1)]
    h._json(200, {"items": items})


def _reset(h: PartnerHandler) -> None:
    h._reset()


_ROUTES = {
    "ok": _ok,
    "echo": _echo,
    "text": _text,
    "binary": _binary,
    "slow": _slow,
    "basic": _basic,
    "apikey": _apikey,
    "bearer": _bearer,
    "oauth": _oauth,
    "orders": _orders,
    "form": _form,
    "inventory": _inventory,
    "status": _status,
    "flaky": _flaky,
    "sequence": _sequence,
    "oversized": _oversized,
    "reset": _reset,
}


class PartnerHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    # Many executions call at once; the default backlog of 5 refuses connections.
    request_queue_size = 256

    def __init__(self, address: tuple[str, int]):
        super().__init__(address, PartnerHandler)
        self.state = PartnerState()

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A caller that gave up (the HTTP task's time cap on a slow endpoint) closes the socket
        # before the answer: expected here, not worth a traceback.
        if isinstance(sys.exc_info()[1], BrokenPipeError | ConnectionResetError):
            return
        super().handle_error(request, client_address)


class PartnerServer:
    """The partner API in a background thread."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self._httpd = PartnerHTTPServer((host, port))
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> PartnerServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)
