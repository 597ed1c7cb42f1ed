"""Start the sandbox: moto's server with the HTTP-task plug-in, plus the partner API.

The AWS endpoint also answers a few sandbox-only paths (never called by AWS SDKs):

    GET  /_sandbox/info          {"partner_url", "region", "account_id", "http_timeout_seconds"}
    GET  /_sandbox/executions    {"running": [execution ARNs]} (Standard and Express)
    GET|POST|DELETE /_sandbox/faults   see sandbox.faults (throttle, error, invalid_token, page_size;
                                 per resource: vanished, kms_access_denied, kms_invalid_state,
                                 access_denied)
    GET|POST|DELETE /_sandbox/quota    see sandbox.quota (quota mode: AWS's token buckets, a time
                                 scale, answered/throttled counts per account + region + API)
    GET|POST|DELETE /_sandbox/clock    see sandbox.clock (planned pasts: {"shifts": {execution
                                 name: seconds before now}}, registered before the start)
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import WSGIRequestHandler, make_server

from sandbox import (
    ACCOUNT_ID,
    DEFAULT_REGION,
    clock,
    executions,
    faults,
    http_call,
    http_task,
    quota,
)
from sandbox.partner import PartnerServer

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


@dataclass
class Sandbox:
    """A running sandbox; `stop()` shuts both servers down."""

    endpoint_url: str
    partner_url: str
    region: str = DEFAULT_REGION
    http_timeout_seconds: float = 60.0
    faults: faults.FaultInjector = field(default_factory=faults.FaultInjector, repr=False)
    quota: quota.QuotaBuckets = field(default_factory=quota.QuotaBuckets, repr=False)
    _moto: ThreadedMotoServer | None = field(default=None, repr=False)
    _partner: PartnerServer | None = field(default=None, repr=False)

    def stop(self) -> None:
        if self._moto is not None:
            self._moto.stop()
            self._moto = None
        if self._partner is not None:
            self._partner.stop()
            self._partner = None


def start_sandbox(
    host: str = "127.0.0.1",
    port: int = 0,
    partner_port: int = 0,
    http_timeout_seconds: float = 60.0,
    quota_mode: bool = False,
    time_scale: float = 1.0,
) -> Sandbox:
    """Start moto (with HTTP Tasks) and the partner API; port 0 picks a free port. With
    `quota_mode` AWS's API quotas are enforced, their refill sped up by `time_scale`.

    moto's backends and the HTTP time cap are process-wide: two sandboxes in one process share
    their AWS state, and the last one started sets the cap.
    """
    buckets = quota.QuotaBuckets(enabled=quota_mode, time_scale=time_scale)  # may refuse the scale
    http_task.install()
    partner = PartnerServer(host, partner_port).start()
    sandbox = Sandbox(
        endpoint_url="",
        partner_url=partner.url,
        http_timeout_seconds=http_timeout_seconds,
        quota=buckets,
        _partner=partner,
    )
    moto_server = _SandboxMotoServer(host, port, lambda app: SandboxApp(app, sandbox))
    try:
        moto_server.start()
    except OSError:
        partner.stop()
        raise
    http_call.configure(http_timeout_seconds)
    bound_host, bound_port = moto_server.get_host_and_port()
    sandbox.endpoint_url = f"http://{_client_host(bound_host)}:{bound_port}"
    sandbox._moto = moto_server
    return sandbox


class SandboxApp:
    """WSGI middleware in front of moto: sandbox-only paths and fault injection."""

    def __init__(self, moto_app: WsgiApp, sandbox: Sandbox):
        self._moto_app = moto_app
        self._sandbox = sandbox

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path.startswith("/_sandbox/"):
            status, payload = self._sandbox_path(path, environ)
            return _json_response(start_response, status, payload)
        operation = faults.operation_of(environ)
        if operation is not None:
            # AWS meters a call before it reads it: a throttled call has no other effect.
            account, region = quota.caller_of(environ, self._sandbox.region)
            if not self._sandbox.quota.take(account, region, operation):
                status_line, headers, payload = quota.throttle_response(environ)
                start_response(status_line, headers)
                return [payload]
        injector = self._sandbox.faults
        body = self._body(operation, environ)
        unreadable = injector.resource_fault(operation, body)
        if unreadable is not None:
            status_line, headers, payload = faults.resource_response(
                unreadable[0], str(operation), unreadable[1]
            )
            start_response(status_line, headers)
            return [payload]
        token = faults.token_of(body) if isinstance(body, dict) else None
        kind = injector.decide(operation, token)
        if kind is not None:
            status_line, headers, payload = faults.response(kind)
            start_response(status_line, headers)
            return [payload]
        return self._moto_app(environ, start_response)

    def _body(self, operation: str | None, environ: dict[str, Any]) -> Any:
        """The request body when a fault rule needs it (a page_size rule applied to it), else
        None: most calls need no look inside."""
        injector = self._sandbox.faults
        rule = injector.rule_for(operation)
        paging = rule is not None and bool(rule.invalid_token or rule.page_size)
        if not paging and not injector.wants_resource(operation):
            return None
        raw = _read_body(environ)
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = None
        if (
            isinstance(body, dict)
            and rule is not None
            and rule.page_size
            and faults.cap_page_size(body, rule.page_size)
        ):
            raw = json.dumps(body).encode()
        environ["wsgi.input"] = io.BytesIO(raw)
        environ["CONTENT_LENGTH"] = str(len(raw))
        return body

    def _sandbox_path(self, path: str, environ: dict[str, Any]) -> tuple[int, Any]:
        method = environ.get("REQUEST_METHOD", "GET")
        if path == "/_sandbox/info":
            return 200, {
                "partner_url": self._sandbox.partner_url,
                "region": self._sandbox.region,
                "account_id": ACCOUNT_ID,
                "http_timeout_seconds": self._sandbox.http_timeout_seconds,
            }
        if path == "/_sandbox/executions":
            return 200, {"running": executions.running_execution_arns()}
        if path == "/_sandbox/faults":
            return self._faults(method, environ)
        if path == "/_sandbox/quota":
            return self._quota(method, environ)
        if path == "/_sandbox/clock":
            return self._clock(method, environ)
        return 404, {"message": f"no sandbox path {path}"}

    def _faults(self, method: str, environ: dict[str, Any]) -> tuple[int, Any]:
        injector = self._sandbox.faults
        if method in ("POST", "PUT"):
            try:
                injector.configure(json.loads(_read_body(environ) or b"{}"))
            except (ValueError, TypeError, AttributeError) as exc:
                return 400, {"message": str(exc)}
        elif method == "DELETE":
            injector.configure({})
        return 200, injector.snapshot()

    def _quota(self, method: str, environ: dict[str, Any]) -> tuple[int, Any]:
        buckets = self._sandbox.quota
        if method in ("POST", "PUT"):
            try:
                buckets.configure(json.loads(_read_body(environ) or b"{}"))
            except ValueError as exc:  # json's errors are ValueErrors too
                return 400, {"message": str(exc)}
        elif method == "DELETE":
            buckets.reset()
        return 200, buckets.snapshot()

    def _clock(self, method: str, environ: dict[str, Any]) -> tuple[int, Any]:
        if method in ("POST", "PUT"):
            try:
                known = clock.configure(json.loads(_read_body(environ) or b"{}"))
            except ValueError as exc:
                return 400, {"message": str(exc)}
            return 200, {**clock.snapshot(), "known": known}
        if method == "DELETE":
            clock.reset()
        return 200, clock.snapshot()


class _QuietRequestHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


class _SandboxMotoServer(ThreadedMotoServer):
    """moto's ThreadedMotoServer with our middleware, without per-request logging, and binding
    in the caller's thread so that a busy port raises instead of hanging start()."""

    def __init__(self, host: str, port: int, wrap: Callable[[WsgiApp], WsgiApp]):
        super().__init__(ip_address=host, port=port, verbose=False)
        self._wrap = wrap

    def start(self) -> None:
        app = self._wrap(DomainDispatcherApplication(create_backend_app))
        try:
            server = make_server(
                self._ip_address,
                self._port,
                app,
                threaded=True,
                request_handler=_QuietRequestHandler,
            )
        except SystemExit as exc:  # werkzeug exits when the port is taken
            raise OSError(f"cannot listen on {self._ip_address}:{self._port}") from exc
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)
        self._thread.start()
        self._server_ready_event.set()


def _read_body(environ: dict[str, Any]) -> bytes:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    return bytes(environ["wsgi.input"].read(length)) if length else b""


def _json_response(start_response: Callable[..., Any], status: int, payload: Any) -> list[bytes]:
    body = json.dumps(payload).encode()
    reason = {200: "OK", 400: "Bad Request", 404: "Not Found"}.get(status, "")
    start_response(
        f"{status} {reason}",
        [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
    )
    return [body]


def _client_host(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "") else host  # noqa: S104
