"""DescribeMapRun on a sandbox that also holds executions with no interpreter (the bench's
world puts finished executions with a given history in the backend): moto asked each one's
interpreter and answered 500; the run is found, an unknown run is ResourceNotFound."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.sandbox.support import Aws, unique
from tests.sandbox.test_map_runs import _machine


def test_describe_map_run_skips_executions_without_an_interpreter(
    aws: Aws, partner_url: str, basic_connection: str
) -> None:
    from moto.stepfunctions.parser.backend.execution import Execution
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    _, machine_arn = _machine(aws, basic_connection)
    parent = aws.execute(machine_arn, {"items": [{"url": f"{partner_url}/basic"}]})
    run_arn = parent.details(parent.of_type("MapRunStarted")[0])["mapRunArn"]
    parts = machine_arn.split(":")
    backend: Any = stepfunctions_parser_backends[parts[4]][parts[3]]
    machine: Any = backend.describe_state_machine(machine_arn)
    name = unique("given")
    # Never started: exec_worker stays None, as for the bench's executions with a given history.
    given: Any = Execution  # moto's stubs type it for the other backend's classes
    machine.executions.insert(
        0,
        given(
            name=name,
            sm_type=machine.sm_type,
            role_arn=machine.roleArn,
            exec_arn=f"{machine_arn.replace(':stateMachine:', ':execution:')}:{name}",
            account_id=parts[4],
            region_name=parts[3],
            state_machine=machine,
            start_date=parent.events[0]["timestamp"],
            cloud_watch_logging_session=None,
            activity_store={},
            input_data="{}",
        ),
    )

    try:
        assert aws.sfn.describe_map_run(mapRunArn=run_arn)["status"] == "SUCCEEDED"
        with pytest.raises(ClientError) as missing:
            aws.sfn.describe_map_run(mapRunArn=run_arn[:-4] + "0000")
        assert missing.value.response["Error"]["Code"] == "ResourceNotFound"
        assert missing.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    finally:
        # The session sandbox is shared: an execution never started breaks other suites'
        # ListExecutions (it has no status).
        machine.executions.pop(0)
