"""The sandbox emits `assignedVariables` as AWS does (issue 15 item 4), and the parser traces a
failing call's URL to the state that assigned it.

moto 5.2.1 cannot evaluate a variable reference in Parameters/Arguments (its JSONata runtime is
absent: "'NoneType' object is not callable"), so the call here carries the assigned value
literally; the parser matches by value, which is what it does for real AWS histories too.
"""

from __future__ import annotations

import json

from executions.classify import classify
from executions.history import HistoryParser
from tests.sandbox.support import Aws, http_task


def test_a_url_equal_to_an_assigned_variable_is_traced_to_its_state(
    aws: Aws, partner_url: str, basic_connection: str
) -> None:
    url = f"{partner_url}/status/404"
    definition = {
        "StartAt": "Config",
        "States": {
            "Config": {"Type": "Pass", "Assign": {"endpoint": url, "retries": 3}, "Next": "Call"},
            "Call": http_task(
                {
                    "ApiEndpoint": url,
                    "Method": "GET",
                    "InvocationConfig": {"ConnectionArn": basic_connection},
                }
            ),
        },
    }
    run = aws.execute(aws.state_machine(definition))
    (exited,) = run.of_type("PassStateExited")
    details = run.details(exited)
    assert {k: json.loads(v) for k, v in details["assignedVariables"].items()} == {
        "endpoint": url,
        "retries": 3,
    }
    assert details["assignedVariablesDetails"] == {"truncated": False}

    parser = HistoryParser()
    (attempt,) = [*parser.feed(run.events), *parser.finish()]
    assert (attempt.url, attempt.status_code) == (url, 404)
    assert attempt.variable_sources == {"url": "$endpoint (assigned by Config)"}
    assert [a.variables for a in parser.variables.assignments] == [{"endpoint": url, "retries": 3}]
    assert "$endpoint (assigned by Config)" in classify(attempt).hint
