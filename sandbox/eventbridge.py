"""EventBridge connections as HTTP Tasks see them: lookup, credentials, (de)authorization.

moto's `Connection` model keeps the secret values in `auth_parameters` but has no notion of a
connection state changing: it is always AUTHORIZED, and DescribeConnection returns the secrets.
These functions give it the AWS behaviour: a Basic/API-key connection that meets a 401/407 becomes
DEAUTHORIZED with a StateReason, OAuth tokens are fetched from the connection's authorization
endpoint (and a failed fetch deauthorizes), UpdateConnection re-authorizes, and descriptions never
carry secret values. `sandbox.http_task.install()` wires them into moto.
"""

from __future__ import annotations

import base64
import copy
import threading
import time
import uuid
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, NoReturn

import requests
from moto.events.models import Connection, events_backends

CONNECTION_NOT_AUTHORIZED_CAUSE = (
    "Connection resource is not authorized. This is likely a configuration issue with your "
    "connection."
)
# Connection states in which EventBridge hands out credentials.
USABLE_STATES = frozenset({"AUTHORIZED", "ACTIVE"})
_SECRET_KEYS = frozenset({"Password", "ApiKeyValue", "ClientSecret"})
_PARAMETER_LISTS = ("HeaderParameters", "QueryStringParameters", "BodyParameters")
_OAUTH_TIMEOUT_SECONDS = 10.0
# Refresh a little before the token expires, as EventBridge does proactively.
_TOKEN_EXPIRY_MARGIN_SECONDS = 30.0

_tokens: dict[str, tuple[str, float]] = {}
_token_lock = threading.Lock()


class ConnectionNotAuthorizedError(Exception):
    """The connection cannot hand out credentials (it is, or just became, DEAUTHORIZED)."""


@dataclass(frozen=True)
class InvocationParameters:
    """A connection's InvocationHttpParameters, merged into every request at call time."""

    headers: dict[str, str] = field(default_factory=dict)
    query: dict[str, str] = field(default_factory=dict)
    body: dict[str, str] = field(default_factory=dict)


def find(connection_arn: str) -> Connection | None:
    """The connection with this ARN, or None (unknown, deleted, or not an ARN at all)."""
    parts = connection_arn.split(":", 5)
    if len(parts) != 6 or parts[2] != "events" or not parts[5].startswith("connection/"):
        return None
    name = parts[5].split("/")[1]
    try:
        connection = events_backends[parts[4]][parts[3]].connections.get(name)
    except (KeyError, ValueError):
        return None
    if connection is None or connection.arn != connection_arn:
        return None
    return connection


def state_reason(connection: Connection) -> str | None:
    return getattr(connection, "state_reason", None)


def last_modified(connection: Connection) -> float:
    return float(getattr(connection, "last_modified_time", connection.creation_time))


def last_authorized(connection: Connection) -> float:
    return float(getattr(connection, "last_authorized_time", connection.creation_time))


def deauthorize(connection: Connection, reason: str) -> None:
    _mark_deauthorized(connection, reason)
    _forget_token(connection)


def authorize(connection: Connection) -> None:
    now = time.time()
    _set(
        connection,
        state="AUTHORIZED",
        state_reason=None,
        last_modified_time=now,
        last_authorized_time=now,
    )
    _forget_token(connection)


def _mark_deauthorized(connection: Connection, reason: str) -> None:
    _set(
        connection,
        state="DEAUTHORIZED",
        state_reason=reason[:512],
        last_modified_time=time.time(),
    )


def _set(connection: Connection, **fields: Any) -> None:
    # moto's model has no state reason or times; they live as extra attributes on it.
    for name, value in fields.items():
        setattr(connection, name, value)


def invocation_parameters(connection: Connection) -> InvocationParameters:
    http_parameters = connection.auth_parameters.get("InvocationHttpParameters") or {}
    return InvocationParameters(
        headers=_key_values(http_parameters.get("HeaderParameters")),
        query=_key_values(http_parameters.get("QueryStringParameters")),
        body=_key_values(http_parameters.get("BodyParameters")),
    )


def auth_headers(connection: Connection, region: str) -> dict[str, str]:
    """The headers that carry the connection's credentials; may fetch an OAuth token."""
    params = connection.auth_parameters
    kind = connection.authorization_type
    if kind == "BASIC":
        basic = params.get("BasicAuthParameters") or {}
        pair = f"{basic.get('Username', '')}:{basic.get('Password', '')}".encode()
        return {"Authorization": "Basic " + base64.b64encode(pair).decode()}
    if kind == "API_KEY":
        api_key = params.get("ApiKeyAuthParameters") or {}
        return {str(api_key.get("ApiKeyName", "")): str(api_key.get("ApiKeyValue", ""))}
    if kind == "OAUTH_CLIENT_CREDENTIALS":
        return {"Authorization": f"Bearer {_oauth_token(connection, region)}"}
    return {}


def observe_response(connection: Connection, status_code: int) -> None:
    """Apply EventBridge's reaction to the endpoint's answer (401/407 only)."""
    if status_code not in (401, 407):
        return
    if connection.authorization_type == "OAUTH_CLIENT_CREDENTIALS":
        # OAuth connections refresh their token instead of giving up.
        _forget_token(connection)
        return
    phrase = HTTPStatus(status_code).phrase
    deauthorize(
        connection,
        f"The connection was deauthorized because the endpoint returned HTTP {status_code} "
        f"{phrase} to a request made with its credentials.",
    )


def merge_auth_parameters(current: dict[str, Any], update: dict[str, Any] | None) -> dict[str, Any]:
    """UpdateConnection changes only the auth blocks it is given."""
    merged = copy.deepcopy(current)
    for key, value in (update or {}).items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def describe(connection: Connection) -> dict[str, Any]:
    """DescribeConnection as AWS answers it: state, reason, times; no secret values."""
    out: dict[str, Any] = {
        "ConnectionArn": connection.arn,
        "Name": connection.name,
        "ConnectionState": connection.state,
        "AuthorizationType": connection.authorization_type,
        "SecretArn": connection.secret_arn,
        "AuthParameters": redact(connection.auth_parameters),
        "CreationTime": connection.creation_time,
        "LastModifiedTime": last_modified(connection),
        "LastAuthorizedTime": last_authorized(connection),
    }
    if connection.description:
        out["Description"] = connection.description
    if state_reason(connection):
        out["StateReason"] = state_reason(connection)
    return out


def describe_short(connection: Connection) -> dict[str, Any]:
    return {
        "ConnectionArn": connection.arn,
        "ConnectionState": connection.state,
        "CreationTime": connection.creation_time,
        "LastModifiedTime": last_modified(connection),
        "LastAuthorizedTime": last_authorized(connection),
    }


def list_item(connection: Connection) -> dict[str, Any]:
    # The method, not describe_short above: sandbox.connectivity settles the state in it.
    item = dict(connection.describe_short())
    item.update({"Name": connection.name, "AuthorizationType": connection.authorization_type})
    if state_reason(connection):
        item["StateReason"] = state_reason(connection)
    return item


def redact(auth_parameters: Any) -> Any:
    """Drop secret values the way DescribeConnection does."""
    if isinstance(auth_parameters, list):
        return [redact(item) for item in auth_parameters]
    if not isinstance(auth_parameters, dict):
        return auth_parameters
    out: dict[str, Any] = {}
    for key, value in auth_parameters.items():
        if key in _SECRET_KEYS:
            continue
        if key in _PARAMETER_LISTS and isinstance(value, list):
            out[key] = [_redact_parameter(item) for item in value]
        else:
            out[key] = redact(value)
    return out


def _redact_parameter(item: dict[str, Any]) -> dict[str, Any]:
    if item.get("IsValueSecret"):
        return {k: v for k, v in item.items() if k != "Value"}
    return dict(item)


def _key_values(items: list[dict[str, Any]] | None) -> dict[str, str]:
    return {str(item["Key"]): _as_text(item.get("Value", "")) for item in items or []}


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _forget_token(connection: Connection) -> None:
    with _token_lock:
        _tokens.pop(connection.arn, None)


def _oauth_token(connection: Connection, region: str) -> str:
    with _token_lock:
        cached = _tokens.get(connection.arn)
        if cached and cached[1] > time.time():
            return cached[0]
        token, expires_in = _fetch_token(connection, region)
        _tokens[connection.arn] = (token, time.time() + expires_in - _TOKEN_EXPIRY_MARGIN_SECONDS)
        return token


def _fetch_token(connection: Connection, region: str) -> tuple[str, float]:
    oauth = connection.auth_parameters.get("OAuthParameters") or {}
    client = oauth.get("ClientParameters") or {}
    extra = oauth.get("OAuthHttpParameters") or {}
    endpoint = str(oauth.get("AuthorizationEndpoint", ""))
    method = str(oauth.get("HttpMethod", "POST")).upper()
    body = _key_values(extra.get("BodyParameters"))
    try:
        response = requests.request(
            method,
            endpoint,
            auth=(str(client.get("ClientID", "")), str(client.get("ClientSecret", ""))),
            headers={
                "User-Agent": f"Amazon|EventBridge|Connections|{region}",
                **_key_values(extra.get("HeaderParameters")),
            },
            params=_key_values(extra.get("QueryStringParameters")),
            data=body if method != "GET" else None,
            timeout=_OAUTH_TIMEOUT_SECONDS,
        )
        payload = response.json() if response.ok else {}
    except (requests.RequestException, ValueError) as exc:
        _refuse(
            connection, f"The OAuth authorization endpoint {endpoint} could not be reached: {exc}"
        )
    token = payload.get("access_token") if isinstance(payload, dict) else None
    if not token:
        _refuse(
            connection,
            f"The OAuth authorization endpoint {endpoint} returned HTTP {response.status_code} "
            "without an access token.",
        )
    return str(token), float(payload.get("expires_in") or 3600)


def _refuse(connection: Connection, reason: str) -> NoReturn:
    # Called with _token_lock held, so deauthorize without re-taking it.
    _mark_deauthorized(connection, reason)
    raise ConnectionNotAuthorizedError(reason)


# --- stable connection ids ----------------------------------------------------------------------

# Namespace of the sandbox's connection ids (uuid5 of account, region and name).
_CONNECTION_ID_NAMESPACE = uuid.UUID("6f1d3c2e-5b7a-4e8f-9a0b-51a7d2c3e4f5")


class _StableConnectionIds:
    """Stands in for `moto.events.models.random`: `uuid4()` inside CreateConnection gives an id
    derived from the connection's account, region and name, every other call moto's own.

    On AWS a connection keeps its ARN for as long as the account keeps it; the sandbox starts
    empty on every run, so without this each `make demo` would register the same connections
    under new ARNs and Stepscope would list every connection once per run.
    """

    def __init__(self, real: Any) -> None:
        self._real = real
        self._local = threading.local()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def uuid4(self) -> uuid.UUID:
        key = getattr(self._local, "key", None)
        return uuid.uuid5(_CONNECTION_ID_NAMESPACE, key) if key else self._real.uuid4()

    def creating(self, account_id: str, region: str, name: str) -> Any:
        local = self._local

        class _Creating:
            def __enter__(self) -> None:
                local.key = f"{account_id}:{region}:{name}"

            def __exit__(self, *exc: object) -> None:
                local.key = None

        return _Creating()


def install_stable_connection_ids() -> None:
    """Make CreateConnection's ARN a function of account, region and name (idempotent)."""
    from moto.events import models

    current = getattr(models, "random")  # noqa: B009 -- moto does not export it
    if isinstance(current, _StableConnectionIds):
        return
    ids = _StableConnectionIds(current)
    setattr(models, "random", ids)  # noqa: B010
    original = Connection.__init__

    def init(self: Any, name: str, account_id: str, region_name: str, *a: Any, **kw: Any) -> None:
        with ids.creating(account_id, region_name, name):
            original(self, name, account_id, region_name, *a, **kw)

    Connection.__init__ = init  # type: ignore[method-assign]
