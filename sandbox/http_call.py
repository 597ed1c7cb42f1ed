"""The request an HTTP Task sends and the output it returns, as Step Functions shapes them.

Pure functions plus `send()`; no moto here. `sandbox.http_task` calls them from the task service.
Values follow ../shared/docs/aws-http-task-reference.md §1-§3.
"""

from __future__ import annotations

import json
import os
import time
import urllib.parse
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Final

import requests

from sandbox import eventbridge

MAX_PAYLOAD_BYTES: Final = 256 * 1024
METHODS: Final = frozenset({"GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"})
ARRAY_FORMATS: Final = frozenset({"INDICES", "REPEAT", "COMMAS", "BRACKETS"})
# fmt: off
FORBIDDEN_HEADERS: Final = frozenset(h.lower() for h in [
    "A-IM", "Accept-Charset", "Accept-Datetime", "Accept-Encoding", "Authorization",
    "Cache-Control", "Connection", "Content-Encoding", "Content-MD5", "Date", "Expect",
    "Forwarded", "From", "Host", "HTTP2-Settings", "If-Match", "If-Modified-Since",
    "If-None-Match", "If-Range", "If-Unmodified-Since", "Max-Forwards", "Origin", "Pragma",
    "Proxy-Authorization", "Referer", "Server", "TE", "Trailer", "Transfer-Encoding", "Upgrade",
    "Via", "Warning",
])
# fmt: on

FORBIDDEN_HEADER_PREFIXES: Final = ("x-forwarded-", "x-amz-", "x-amzn-")
UNSUPPORTED_RESPONSE_TYPES: Final = ("application/octet-stream", "image/", "video/", "audio/")
JSON_CONTENT_TYPE: Final = "application/json; charset=UTF-8"
FORM_CONTENT_TYPE: Final = "application/x-www-form-urlencoded"

_settings: dict[str, float] = {"http_timeout_seconds": 60.0}


class HttpTaskError(Exception):
    """An HTTP Task failure, reported as TaskFailed with this error and cause."""

    def __init__(self, error: str, cause: str):
        super().__init__(f"{error}: {cause}")
        self.error = error
        self.cause = cause


def configure(http_timeout_seconds: float) -> None:
    """Set the request time cap (AWS: 60 s, a hard quota)."""
    _settings["http_timeout_seconds"] = float(http_timeout_seconds)


def http_timeout_seconds() -> float:
    return _settings["http_timeout_seconds"]


# --- request shaping (pure) ---------------------------------------------------------------


@dataclass
class HttpCall:
    """The request an HTTP Task sends, before the connection adds its parameters."""

    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    query: list[tuple[str, str]] = field(default_factory=list)
    body: Any = None
    url_encoded: bool = False
    array_format: str = "INDICES"

    @classmethod
    def from_parameters(cls, parameters: dict[str, Any]) -> HttpCall:
        endpoint = parameters.get("ApiEndpoint")
        method = str(parameters.get("Method", "")).upper()
        if not isinstance(endpoint, str) or not endpoint.startswith(("https://", "http://")):
            raise HttpTaskError(
                "States.Runtime", f"The ApiEndpoint '{endpoint}' is not a valid URL."
            )
        if method not in METHODS:
            raise HttpTaskError("States.Runtime", f"The Method '{method}' is not supported.")
        headers = {str(k): _text(v) for k, v in (parameters.get("Headers") or {}).items()}
        for name in headers:
            if is_forbidden_header(name):
                raise HttpTaskError(
                    "States.Runtime",
                    f"The header '{name}' is not allowed in the 'Headers' field of an HTTP Task.",
                )
        transform = parameters.get("Transform") or {}
        array_format = (transform.get("RequestEncodingOptions") or {}).get("ArrayFormat", "INDICES")
        if array_format not in ARRAY_FORMATS:
            raise HttpTaskError(
                "States.Runtime", f"The ArrayFormat '{array_format}' is not supported."
            )
        return cls(
            method=method,
            url=endpoint,
            headers=headers,
            query=query_pairs(parameters.get("QueryParameters")),
            body=parameters.get("RequestBody"),
            url_encoded=transform.get("RequestBodyEncoding") == "URL_ENCODED",
            array_format=array_format,
        )

    def with_connection(
        self, params: eventbridge.InvocationParameters, auth: dict[str, str]
    ) -> HttpCall:
        """Merge the connection's parameters; they win over the definition's on equal keys."""
        headers = _merge_headers(_merge_headers(self.headers, params.headers), auth)
        query = [(k, v) for k, v in self.query if k not in params.query] + list(
            params.query.items()
        )
        body = self.body
        if params.body:
            if isinstance(body, str):
                raise HttpTaskError(
                    "States.Runtime",
                    "A string RequestBody cannot be combined with the connection's body parameters.",
                )
            body = {**(body or {}), **params.body}
        return HttpCall(
            self.method, self.url, headers, query, body, self.url_encoded, self.array_format
        )

    def prepared(self, region: str) -> tuple[str, dict[str, str], bytes | None]:
        """URL, headers and body bytes as sent, including the headers Step Functions adds."""
        headers = dict(self.headers)
        data: bytes | None = None
        if self.body is not None:
            if self.url_encoded and isinstance(self.body, dict):
                data = url_encode(self.body, self.array_format).encode()
                _set_default(headers, "Content-Type", FORM_CONTENT_TYPE)
            elif isinstance(self.body, str):
                data = self.body.encode()
                _set_default(headers, "Content-Type", JSON_CONTENT_TYPE)
            else:
                data = json.dumps(self.body, separators=(",", ":")).encode()
                _set_default(headers, "Content-Type", JSON_CONTENT_TYPE)
        headers = _merge_headers(
            headers,
            {
                "User-Agent": f"Amazon|StepFunctions|HttpInvoke|{region}",
                "Range": f"bytes=0-{MAX_PAYLOAD_BYTES}",
                "X-Amzn-Trace-Id": _trace_id(),
            },
        )
        url = self.url
        if self.query:
            url += ("&" if "?" in url else "?") + urllib.parse.urlencode(self.query)
        return url, headers, data


def is_forbidden_header(name: str) -> bool:
    lowered = name.lower()
    return lowered in FORBIDDEN_HEADERS or lowered.startswith(FORBIDDEN_HEADER_PREFIXES)


def query_pairs(query: Any) -> list[tuple[str, str]]:
    if query is None:
        return []
    if isinstance(query, str):
        return urllib.parse.parse_qsl(query.lstrip("?"), keep_blank_values=True)
    if not isinstance(query, dict):
        raise HttpTaskError("States.Runtime", "QueryParameters must be an object or a string.")
    pairs: list[tuple[str, str]] = []
    for key, value in query.items():
        values = value if isinstance(value, list) else [value]
        pairs.extend((str(key), _text(item)) for item in values)
    return pairs


def url_encode(body: dict[str, Any], array_format: str = "INDICES") -> str:
    """Transform.RequestBodyEncoding URL_ENCODED with RequestEncodingOptions.ArrayFormat."""
    pairs: list[tuple[str, str]] = []
    for key, value in body.items():
        if not isinstance(value, list):
            pairs.append((key, _text(value)))
        elif array_format == "REPEAT":
            pairs.extend((key, _text(item)) for item in value)
        elif array_format == "COMMAS":
            pairs.append((key, ",".join(_text(item) for item in value)))
        elif array_format == "BRACKETS":
            pairs.extend((f"{key}[]", _text(item)) for item in value)
        else:
            pairs.extend((f"{key}[{i}]", _text(item)) for i, item in enumerate(value))
    return urllib.parse.urlencode(pairs)


def task_output(response: requests.Response, body: bytes) -> dict[str, Any]:
    """TaskSucceeded output: {Headers (arrays of strings), ResponseBody, StatusCode, StatusText}."""
    content_type = response.headers.get("Content-Type", "").lower()
    if content_type.startswith(UNSUPPORTED_RESPONSE_TYPES):
        raise HttpTaskError(
            "States.Runtime", f"The response Content-Type '{content_type}' is not supported."
        )
    try:
        text = body.decode(response.encoding or "utf-8")
    except (UnicodeDecodeError, LookupError) as exc:
        raise HttpTaskError(
            "States.Runtime", "The response body could not be read as text."
        ) from exc
    response_body: Any = text
    if "json" in content_type and text.strip():
        try:
            response_body = json.loads(text)
        except ValueError:
            response_body = text
    return {
        "Headers": response_headers(response),
        "ResponseBody": response_body,
        "StatusCode": response.status_code,
        "StatusText": status_text(response),
    }


def response_headers(response: requests.Response) -> dict[str, list[str]]:
    raw = response.raw.headers
    names = dict.fromkeys(name.lower() for name in raw)
    return {name: [str(v) for v in raw.getlist(name)] for name in names}


def status_text(response: requests.Response) -> str:
    try:
        return HTTPStatus(response.status_code).phrase
    except ValueError:
        return response.reason or ""


def _merge_headers(base: dict[str, str], override: dict[str, str]) -> dict[str, str]:
    lowered = {k.lower() for k in override}
    return {**{k: v for k, v in base.items() if k.lower() not in lowered}, **override}


def _set_default(headers: dict[str, str], name: str, value: str) -> None:
    if name.lower() not in {k.lower() for k in headers}:
        headers[name] = value


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _trace_id() -> str:
    return f"Root=1-{int(time.time()):08x}-{os.urandom(12).hex()}"


# --- sending ------------------------------------------------------------------------------


def send(call: HttpCall, region: str) -> tuple[requests.Response, bytes]:
    """Send the call within the time cap; socket trouble becomes States.Http.Socket."""
    return send_prepared(call.method, *call.prepared(region))


def send_prepared(
    method: str, url: str, headers: dict[str, str], data: bytes | None
) -> tuple[requests.Response, bytes]:
    """`send` for a request already prepared (TestState shows exactly what it sends)."""
    cap = http_timeout_seconds()
    try:
        # A session per call: the TCP connection closes with the task, and requests'
        # default headers (Accept, Accept-Encoding, ...) are not sent.
        with requests.Session() as session:
            session.headers.clear()
            response = session.request(
                method,
                url,
                headers=headers,
                data=data,
                timeout=(cap, cap),
                allow_redirects=False,
                stream=True,
            )
            body = response.content
    except requests.Timeout as exc:
        raise HttpTaskError(
            "States.Http.Socket", f"The request timed out after {cap:g} seconds."
        ) from exc
    except requests.RequestException as exc:
        raise HttpTaskError(
            "States.Http.Socket", f"The connection failed: {_root_cause(exc)}"
        ) from exc
    return response, body


def _root_cause(exc: BaseException) -> str:
    while exc.__context__ is not None and exc.__cause__ is None and exc.args == ():
        exc = exc.__context__
    inner = exc.args[0] if exc.args else exc
    while (
        isinstance(inner, BaseException)
        and inner.args
        and isinstance(inner.args[-1], BaseException)
    ):
        inner = inner.args[-1]
    return str(inner)
