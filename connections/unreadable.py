"""A resource one sync could not read: which one, which call, AWS's answer, and what to do.

One unreadable connection or state machine costs only itself: the sync skips it (or keeps what
it could read), names it on the run (`SyncRun.unreadable`) and goes on with the rest. The hint
names the permission or the state to fix; for a customer-managed KMS key, `kms:Decrypt` on it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from connections.aws import AwsError

CONNECTION = "connection"
STATE_MACHINE = "state machine"
HISTORIES = "execution histories"
LOG = "execution log"

GONE_CODES = frozenset({"ResourceNotFoundException", "StateMachineDoesNotExist"})


@dataclass(frozen=True)
class Unreadable:
    kind: str  # CONNECTION, STATE_MACHINE or HISTORIES
    name: str
    arn: str
    region: str
    operation: str
    code: str
    message: str
    missing: str  # what Stepscope does not have because of it
    hint: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)

    @property
    def line(self) -> str:
        return line_of(self.as_dict())


def line_of(problem: Any) -> str:
    """One sentence for logs, the account's last error and the command's output."""
    if not isinstance(problem, dict):
        return str(problem)
    kind, name, arn, operation, code, missing = (
        str(problem.get(key) or "")  # a stored row may lack keys
        for key in ("kind", "name", "arn", "operation", "code", "missing")
    )
    return f"{kind} {name or arn}: {operation}: {code}; {missing}"


def unreadable(
    kind: str, name: str, arn: str, region: str, exc: AwsError, missing: str, key: str = ""
) -> Unreadable:
    return Unreadable(
        kind=kind,
        name=name,
        arn=arn,
        region=region,
        operation=exc.operation,
        code=exc.code,
        message=str(exc)[:500],
        missing=missing,
        hint=hint_for(exc, kind, key),
    )


def hint_for(exc: AwsError, kind: str, key: str = "") -> str:
    named_key = f"the KMS key {key}" if key else "its customer-managed KMS key"
    if exc.code == "KmsAccessDeniedException":
        return (
            f"Grant kms:Decrypt on {named_key} to the role Stepscope reads with (in the role's "
            "policy and, if the key policy does not delegate to IAM, in the key policy)."
        )
    if exc.code == "KmsInvalidStateException":
        return (
            f"{named_key[0].upper()}{named_key[1:]} is disabled, pending deletion or unavailable: "
            "enable it (or cancel its deletion); Step Functions cannot decrypt with it until then."
        )
    if kind == LOG and exc.code in GONE_CODES:
        return (
            "The state machine logs to a log group that does not exist (deleted, or never "
            "created): create it, or point the machine's logging at one that does."
        )
    if exc.code in GONE_CODES:
        return f"The {kind} was deleted while the sync read it; the next sync no longer lists it."
    if exc.code in ("AccessDenied", "AccessDeniedException"):
        service = {CONNECTION: "events", LOG: "logs"}.get(kind, "states")
        return (
            f"Allow {service}:{exc.operation} on this {kind}'s ARN to the role Stepscope reads "
            "with (an IAM or SCP statement denies it for this resource)."
        )
    return "See the AWS answer above."
