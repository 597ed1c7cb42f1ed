"""Discovery of a region's state machines: listed, described, redacted and stored.

A machine of another registration of the same AWS account is left to its owner; one whose
description is refused is skipped, and one whose definition is encrypted with a KMS key we may
not use is stored from its metadata, with the problem named (connections/unreadable.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from connections.aws import AwsApi, AwsError, StateMachineDetail, StateMachineSummary
from connections.models import owned_elsewhere
from connections.unreadable import STATE_MACHINE, Unreadable, unreadable
from executions.choices import LoggingLevel, StateMachineType
from executions.history import http_states_from_definition
from executions.models import StateMachine
from executions.sync.step import SyncStep


def discover_machines(step: SyncStep, api: AwsApi, region: str) -> Iterator[StateMachine]:
    """The region's state machines with an HTTP task (or unreadable ones), stored."""
    seen: set[str] = set()  # a listing restarted after an expired token repeats machines
    for page in api.state_machine_pages():
        for item in page:
            step.beat()
            if item.arn in seen:
                continue
            seen.add(item.arn)
            machine = _describe_machine(step, api, region, item)
            if machine is not None:
                yield machine


def _describe_machine(
    step: SyncStep, api: AwsApi, region: str, item: StateMachineSummary
) -> StateMachine | None:
    arn = item.arn
    # Another registration of this AWS account owns it: an upsert by ARN would take it over
    # (and strand its executions). Forms refuse the overlap; this covers rows forced past them.
    owner = StateMachine.objects.filter(arn=arn).exclude(account=step.account)
    owner_name = owner.values_list("account__name", flat=True).first()
    if owner_name is not None:
        step.note_error(owned_elsewhere("state machine", arn, owner_name))
        return None
    detail, problem = _readable_description(step, api, region, item)
    if detail is None:
        return None
    if not http_states_from_definition(detail.definition) and problem is None:
        return None  # no HTTP task: nothing for us here
    # Definitions carry literal headers, bodies and URLs: redacted like any request, with
    # the account's connection secret names; the HTTP states are read from what is stored.
    definition = step.writer.account_redactor().embedded(detail.definition or "")
    http_states = http_states_from_definition(definition)
    defaults: dict[str, Any] = {
        "region": region,
        "name": (detail.name or item.name)[:80],
        "type": detail.type or item.type or StateMachineType.STANDARD,
        "logging_level": detail.logging_level or LoggingLevel.OFF,
        "include_execution_data": detail.include_execution_data,
        "log_group_arn": detail.log_group_arn,
        "kms_key_id": detail.kms_key_id[:2048],
        "read_problem": f"{problem.missing}. {problem.hint}" if problem else "",
    }
    if problem is None and StateMachine.objects.filter(arn=arn).exclude(read_problem="").exists():
        # Readable again: list it from the start, so that the executions stored from the
        # listing only (their histories were unreadable) are read whole.
        defaults["newest_start_seen"] = None
    if problem is None:  # else a definition read before is kept, not replaced by "{}"
        defaults["definition"] = definition
        defaults["http_states"] = {n: i.as_dict() for n, i in http_states.items()}
    # The account is in the lookup, not the defaults: a row of another account is never
    # re-parented (a concurrent one makes this fail on the unique ARN instead).
    machine, _ = StateMachine.objects.update_or_create(
        arn=arn, account=step.account, defaults=defaults
    )
    return machine


def _readable_description(
    step: SyncStep, api: AwsApi, region: str, item: StateMachineSummary
) -> tuple[StateMachineDetail | None, Unreadable | None]:
    """DescribeStateMachine, and what could not be read of it.

    A definition encrypted with a KMS key the reader may not use: the boundary describes it
    again with METADATA_ONLY (everything but the definition); it is kept with the problem.
    Another answer about this one machine (deleted, denied by a policy on its ARN):
    (None, None) after naming it, and it is skipped.
    """
    try:
        detail = api.describe_state_machine(item.arn)
    except AwsError as exc:
        if not exc.about_one_resource:
            raise
        missing = "skipped: its definition, executions and attempts are not read"
        step.note_unreadable(unreadable(STATE_MACHINE, item.name, item.arn, region, exc, missing))
        return None, None
    if detail.definition_error is None:
        return detail, None
    problem = unreadable(
        STATE_MACHINE,
        detail.name or item.name,
        item.arn,
        region,
        detail.definition_error,
        "definition and execution histories unreadable: its executions are listed (status and"
        " times) but its HTTP states, endpoints, connections and attempts are unknown",
        detail.kms_key_id,
    )
    step.note_unreadable(problem)
    return detail, problem
