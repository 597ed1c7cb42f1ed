"""Amazon Resource Names: the one parser and formatter of the ARNs Stepscope meets.

`arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE`, where the resource may itself hold `:` and `/`.
The kinds read here:

| Kind | Resource |
| --- | --- |
| state machine | `stateMachine:MACHINE` (a version or alias adds `:QUALIFIER`) |
| Standard execution | `execution:MACHINE:NAME` (a Distributed Map child: `MACHINE/LABEL`) |
| Express execution | `express:MACHINE:NAME:ID` |
| Map Run | `mapRun:MACHINE/LABEL:ID` |
| EventBridge connection | `connection/NAME/ID` |
| CloudWatch log group | `log-group:NAME` (often with `:*`) |
| IAM role | `role/PATH/NAME` (no region) |

Pure (no Django, no boto3): the pure `executions.history` and `executions.classify` read ARNs
through it too. Every reader is total: an ARN text is AWS data or user input, so anything else
(a wrong kind, whitespace, control characters, non-ASCII digits, 100 kB of text) gives None or
"", never an exception. Hand-written rather than a library's: botocore's ArnParser only splits
the six fields (it does not know the resource shapes above) and would make this module impure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# AWS caps ARNs at 2048 characters; anything longer is not one.
MAX_LENGTH = 2048

_PARTITION = re.compile(r"aws(?:-[a-z]+)*", re.ASCII)
_SERVICE = re.compile(r"[a-z0-9-]+", re.ASCII)
# Region and account are checked for their alphabet only, so that a name is still read from a
# test's or a partner's odd ARN; validators of user input also want the 12-digit account id.
_REGION = re.compile(r"[a-z0-9-]*", re.ASCII)
_ACCOUNT = re.compile(r"[0-9]*", re.ASCII)
_ACCOUNT_ID = re.compile(r"[0-9]{12}", re.ASCII)
# No whitespace, no control characters (names may be non-ASCII).
_RESOURCE = re.compile(r"[^\s\x00-\x1f\x7f-\x9f]+")
# IAM's own rule for role paths and names (CreateRole).
_ROLE = re.compile(r"role/[\w+=,.@/-]{1,512}", re.ASCII)
# An ARN inside free text (an AWS error message), to tell which region it is about.
_REGION_IN_TEXT = re.compile(
    r"arn:aws(?:-[a-z]+)*:[a-z0-9-]+:([a-z]{2}(?:-[a-z]+)+-[0-9]+):", re.ASCII
)


@dataclass(frozen=True, slots=True)
class Arn:
    partition: str
    service: str
    region: str
    account: str
    resource: str

    def __str__(self) -> str:
        return f"arn:{self.partition}:{self.service}:{self.region}:{self.account}:{self.resource}"

    def resource_of(self, service: str, kind: str, sep: str) -> list[str] | None:
        """The parts of a `KIND<sep>…` resource of `service` (split on ":"), else None."""
        if self.service != service or not self.resource.startswith(kind + sep):
            return None
        return self.resource[len(kind) + len(sep) :].split(":")


def parse(text: object) -> Arn | None:
    """The six fields of an ARN, or None for anything that is not one."""
    if not isinstance(text, str) or len(text) > MAX_LENGTH:
        return None
    parts = text.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn":
        return None
    _, partition, service, region, account, resource = parts
    if not (
        _PARTITION.fullmatch(partition)
        and _SERVICE.fullmatch(service)
        and _REGION.fullmatch(region)
        and _ACCOUNT.fullmatch(account)
        and _RESOURCE.fullmatch(resource)
    ):
        return None
    return Arn(partition, service, region, account, resource)


def region_of(text: object) -> str:
    """The ARN's region ("" for a global resource or for what is not an ARN)."""
    arn = parse(text)
    return arn.region if arn else ""


def account_of(text: object) -> str:
    """The ARN's AWS account id ("" when it names none or is not an ARN)."""
    arn = parse(text)
    return arn.account if arn else ""


def region_in_text(text: str) -> str:
    """The region of the first ARN found in free text (an error message), else ""."""
    match = _REGION_IN_TEXT.search(text)
    return match[1] if match else ""


# --- Step Functions ----------------------------------------------------------------------------


def _states_parts(text: object, kind: str, count: int) -> list[str] | None:
    arn = parse(text)
    parts = arn.resource_of("states", kind, ":") if arn else None
    if parts is None or len(parts) != count or not all(parts):
        return None
    return parts


def state_machine_name(text: object) -> str:
    """The state machine an ARN belongs to: a state machine (any version or alias), an
    execution of it (Standard or Express) or one of its Map Runs; "" otherwise."""
    parts = (
        _states_parts(text, "stateMachine", 1)
        or _states_parts(text, "stateMachine", 2)
        or _states_parts(text, "execution", 2)
        or _states_parts(text, "express", 3)
        or _states_parts(text, "mapRun", 2)
    )
    return parts[0].split("/", 1)[0] if parts else ""


def execution_name(text: object) -> str:
    """The name of a Standard or Express execution's ARN; "" for any other text."""
    parts = _states_parts(text, "execution", 2) or _states_parts(text, "express", 3)
    return parts[1] if parts else ""


def map_run_label(text: object) -> str:
    """The Map state's label of a Map Run ARN; "" for any other text."""
    parts = _states_parts(text, "mapRun", 2)
    if not parts or "/" not in parts[0]:
        return ""
    return parts[0].split("/", 1)[1]


def state_machine_arn(region: str, account: str, name: str, partition: str = "aws") -> str:
    return f"arn:{partition}:states:{region}:{account}:stateMachine:{name}"


def execution_arn(
    region: str, account: str, machine: str, name: str, partition: str = "aws"
) -> str:
    return f"arn:{partition}:states:{region}:{account}:execution:{machine}:{name}"


def express_execution_arn(
    region: str, account: str, machine: str, name: str, run_id: str, partition: str = "aws"
) -> str:
    return f"arn:{partition}:states:{region}:{account}:express:{machine}:{name}:{run_id}"


def map_run_arn(
    region: str, account: str, machine: str, label: str, run_id: str, partition: str = "aws"
) -> str:
    return f"arn:{partition}:states:{region}:{account}:mapRun:{machine}/{label}:{run_id}"


def machines_like(text: object) -> str:
    """The ARN pattern of every state machine in the account and region of `text` (an IAM
    policy Resource), or of every account and region when `text` names neither."""
    arn = parse(text)
    if arn and arn.region and arn.account:
        return state_machine_arn(arn.region, arn.account, "*", arn.partition)
    return state_machine_arn("*", "*", "*")


# --- EventBridge connections, log groups, IAM roles --------------------------------------------


def connection_name(text: object) -> str:
    """The name of an EventBridge connection's ARN; "" for any other text."""
    arn = parse(text)
    parts = arn.resource_of("events", "connection", "/") if arn else None
    if parts is None or len(parts) != 1:
        return ""
    name, _, run_id = parts[0].partition("/")
    return name if name and run_id else ""


def connection_arn(
    region: str, account: str, name: str, connection_id: str, partition: str = "aws"
) -> str:
    return f"arn:{partition}:events:{region}:{account}:connection/{name}/{connection_id}"


def is_connection_arn(text: object) -> bool:
    """An EventBridge connection's ARN with its region and account (as the filters take)."""
    arn = parse(text)
    return bool(arn and arn.region and _ACCOUNT_ID.fullmatch(arn.account) and connection_name(text))


def log_group_name(text: object) -> str:
    """The name of a CloudWatch Logs log group's ARN (with or without `:*`); "" otherwise."""
    arn = parse(text)
    parts = arn.resource_of("logs", "log-group", ":") if arn else None
    if not parts or not parts[0] or len(parts) > 2 or parts[1:] not in ([], ["*"]):
        return ""
    return parts[0]


def role_account(text: object) -> str:
    """The account of an IAM role's ARN (`arn:aws:iam::ACCOUNT:role/NAME`); "" otherwise."""
    arn = parse(text)
    if not arn or arn.service != "iam" or arn.region or not _ACCOUNT_ID.fullmatch(arn.account):
        return ""
    return arn.account if _ROLE.fullmatch(arn.resource) else ""
