"""Private and KMS-keyed EventBridge connections, and which connection a task may use.

moto's CreateConnection drops `InvocationConnectivityParameters` and `KmsKeyIdentifier` and
knows one state, AUTHORIZED. This module keeps both and gives the states AWS documents (issue
15 item 6; reference §6 and §8):

- a connection to a private API (`InvocationConnectivityParameters`, VPC Lattice) succeeds as
  ACTIVE, not AUTHORIZED; for its first PROVISIONING_SECONDS after a create or update its calls
  get no answer (States.Http.Socket), as AWS warns they may fail for minutes while it provisions;
- an OAuth connection whose authorization endpoint is private (`AuthParameters.
  ConnectivityParameters`) is AUTHORIZING for that time (calls: AuthInProgress);
- a resource configuration the sandbox cannot reach — by convention one whose id starts with
  `rcfg-unreachable` — makes the connection FAILED_CONNECTIVITY (calls through a private API:
  InvalidPrivateConnectionState, through a private OAuth endpoint: InvalidConnectionState);
- a `KmsKeyIdentifier` that moto's KMS does not have, or has disabled, de-authorizes the
  connection at its next use with a StateReason naming KMS (calls: InvalidConnectionState).

The sandbox's seconds stand for AWS's minutes; the StateReason wordings are the sandbox's own
(AWS's are not recorded).
"""

from __future__ import annotations

import json
import time
from typing import Any

from sandbox import eventbridge
from sandbox.http_call import HttpTaskError

# How long a new or updated private connection provisions (AWS: "a few minutes").
PROVISIONING_SECONDS = 3.0
UNREACHABLE_PREFIX = "rcfg-unreachable"
ACTIVE = "ACTIVE"
AUTHORIZED = "AUTHORIZED"
AUTHORIZING = "AUTHORIZING"
FAILED_CONNECTIVITY = "FAILED_CONNECTIVITY"
FAILED_CONNECTIVITY_REASON = (
    "The connection could not reach its private endpoint through resource configuration "
    "{arn}: check the resource gateway and its security groups."
)
KMS_REASON = (
    "The connection was deauthorized because EventBridge could not use the customer managed KMS "
    "key {key} to decrypt its secret (KMS key {problem})."
)
PRIVATE_STATES = frozenset({ACTIVE, FAILED_CONNECTIVITY})


# --------------------------------------------------------------------------- state


def resource_arn(connectivity: Any) -> str:
    resource = connectivity.get("ResourceParameters") if isinstance(connectivity, dict) else None
    arn = resource.get("ResourceConfigurationArn") if isinstance(resource, dict) else None
    return arn if isinstance(arn, str) else ""


def private_api(connection: Any) -> str:
    """The resource configuration of a private API ("" for a public one)."""
    return resource_arn(getattr(connection, "invocation_connectivity", None))


def private_auth(connection: Any) -> str:
    auth = connection.auth_parameters if isinstance(connection.auth_parameters, dict) else {}
    return resource_arn(auth.get("ConnectivityParameters"))


def configure(connection: Any, connectivity: Any, kms_key: Any) -> None:
    """After CreateConnection/UpdateConnection: keep what moto drops, set the state AWS would."""
    if connectivity is not None:
        connection.invocation_connectivity = connectivity
    if kms_key is not None:
        connection.kms_key_identifier = str(kms_key)
    connection.provisioned_at = time.time() + PROVISIONING_SECONDS
    unreachable = [
        arn for arn in (private_api(connection), private_auth(connection)) if _unreachable(arn)
    ]
    if unreachable:
        connection.state = FAILED_CONNECTIVITY
        connection.state_reason = FAILED_CONNECTIVITY_REASON.format(arn=unreachable[0])
    elif private_auth(connection) and connection.authorization_type == "OAUTH_CLIENT_CREDENTIALS":
        connection.state, connection.state_reason = AUTHORIZING, None
    elif private_api(connection):
        connection.state, connection.state_reason = ACTIVE, None


def settle(connection: Any) -> None:
    """AUTHORIZING ends when the private OAuth endpoint is provisioned (read before use)."""
    if connection.state == AUTHORIZING and not provisioning(connection):
        connection.state = ACTIVE if private_api(connection) else AUTHORIZED
        connection.last_authorized_time = time.time()


def provisioning(connection: Any) -> bool:
    return time.time() < float(getattr(connection, "provisioned_at", 0.0))


def describe_extra(connection: Any, out: dict[str, Any]) -> None:
    """The DescribeConnection members moto does not know."""
    connectivity = getattr(connection, "invocation_connectivity", None)
    if private_api(connection):
        out["InvocationConnectivityParameters"] = _described(connectivity)
    auth = out.get("AuthParameters")
    if isinstance(auth, dict) and "ConnectivityParameters" in auth:
        auth["ConnectivityParameters"] = _described(auth["ConnectivityParameters"])
    if getattr(connection, "kms_key_identifier", ""):
        out["KmsKeyIdentifier"] = connection.kms_key_identifier


def _described(connectivity: Any) -> dict[str, Any]:
    # AWS answers with the association it made in the service network, beside the ARN given.
    arn = resource_arn(connectivity)
    association = arn.replace(":resourceconfiguration/", ":servicenetworkresourceassociation/")
    association = association.replace("/rcfg-", "/snra-")
    return {
        "ResourceParameters": {
            "ResourceConfigurationArn": arn,
            "ResourceAssociationArn": association,
        }
    }


def _unreachable(arn: str) -> bool:
    return arn.rpartition("/")[2].startswith(UNREACHABLE_PREFIX)


# --------------------------------------------------------------------------- use


def usable_connection(connection_arn: str, denied: bool) -> Any:
    """The connection a task may use, or the HttpTaskError AWS reports (also for TestState)."""
    if denied:
        raise HttpTaskError(
            "Events.ConnectionResource.AccessDenied",
            "The execution role is not authorized to retrieve the credentials of connection "
            f"'{connection_arn}' (events:RetrieveConnectionCredentials, "
            "secretsmanager:GetSecretValue, secretsmanager:DescribeSecret).",
        )
    connection = eventbridge.find(connection_arn)
    if connection is None:
        raise HttpTaskError(
            "Events.ConnectionResource.ResourceNotFound",
            f"Connection resource '{connection_arn}' does not exist.",
        )
    settle(connection)
    if connection.state == AUTHORIZING:
        raise HttpTaskError(
            "Events.ConnectionResource.AuthInProgress",
            "Connection resource is being authorized. Try again later.",
        )
    if connection.state in eventbridge.USABLE_STATES:
        _check_kms_key(connection)
    if connection.state not in eventbridge.USABLE_STATES:
        if private_api(connection) and connection.state == FAILED_CONNECTIVITY:
            raise HttpTaskError(
                "Events.ConnectionResource.InvalidPrivateConnectionState",
                "The private connection is not in an ACTIVE state.",
            )
        raise invalid_connection_state()
    if private_api(connection) and provisioning(connection):
        raise HttpTaskError(
            "States.Http.Socket",
            "The connection failed: the private endpoint did not answer (still provisioning).",
        )
    return connection


def invalid_connection_state() -> HttpTaskError:
    return HttpTaskError(
        "Events.ConnectionResource.InvalidConnectionState",
        eventbridge.CONNECTION_NOT_AUTHORIZED_CAUSE,
    )


def _check_kms_key(connection: Any) -> None:
    key = getattr(connection, "kms_key_identifier", "")
    if not key:
        return
    problem = _kms_problem(key, connection.arn.split(":")[3], connection.arn.split(":")[4])
    if problem:
        eventbridge.deauthorize(connection, KMS_REASON.format(key=key, problem=problem))


def _kms_problem(key: str, region: str, account: str) -> str:
    from moto.kms.models import kms_backends

    backend = kms_backends[account][region]
    try:
        found = backend.describe_key(key)
    except Exception:  # moto raises NotFoundException (and others) for an unknown key
        return "not found"
    return "" if found.enabled else "disabled"


# --------------------------------------------------------------------------- moto wiring


def install() -> None:
    """Keep the private and KMS members of CreateConnection and UpdateConnection and describe
    them; wraps what `sandbox.http_task` installed (it calls this once, under its lock)."""
    from moto.events.models import Connection
    from moto.events.responses import EventsHandler

    original_create = EventsHandler.create_connection
    original_update = EventsHandler.update_connection
    original_describe = Connection.describe
    original_short = Connection.describe_short

    def create_connection(self: Any) -> tuple[str, dict[str, Any]]:
        original_create(self)
        connection = self.events_backend.connections[self._get_param("Name")]
        configure(
            connection,
            self._get_param("InvocationConnectivityParameters"),
            self._get_param("KmsKeyIdentifier"),
        )
        return json.dumps(eventbridge.describe_short(connection)), self.response_headers

    def update_connection(self: Any) -> tuple[str, dict[str, Any]]:
        original_update(self)  # re-authorizes (AUTHORIZED); the state is then set here
        connection = self.events_backend.connections[self._get_param("Name")]
        configure(
            connection,
            self._get_param("InvocationConnectivityParameters"),
            self._get_param("KmsKeyIdentifier"),
        )
        return json.dumps(eventbridge.describe_short(connection)), self.response_headers

    def describe(connection: Any) -> dict[str, Any]:
        settle(connection)
        out: dict[str, Any] = original_describe(connection)
        describe_extra(connection, out)
        return out

    def describe_short(connection: Any) -> dict[str, Any]:
        settle(connection)
        return dict(original_short(connection))

    EventsHandler.create_connection = create_connection  # type: ignore[method-assign]
    EventsHandler.update_connection = update_connection  # type: ignore[method-assign]
    Connection.describe = describe  # type: ignore[method-assign,assignment]
    Connection.describe_short = describe_short  # type: ignore[method-assign,assignment]
