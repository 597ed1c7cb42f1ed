"""Every error and cause the sandbox can produce classifies to a named category (issue 15 item 8).

The list is read from the sandbox's own code: each `HttpTaskError(error, cause)` it raises,
with its f-string holes filled from SAMPLES. A new raise with a hole (or a computed argument)
that SAMPLES does not know fails `test_the_list_is_read_from_the_sandbox`, so the list cannot
silently fall behind the code.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from executions.classify import classify
from executions.history import ParsedAttempt, status_from_error
from sandbox import eventbridge

SANDBOX = Path(__file__).resolve().parents[2] / "sandbox"
CONN = "arn:aws:events:eu-west-1:111122223333:connection/partner-api/81210c42-8af1-4fdb-9aa9-2b5e7d4b1a10"
# What each f-string hole or computed argument stands for: several values where the value
# decides the class (a status code, a header that is or is not forbidden).
SAMPLES: dict[str, tuple[str, ...]] = {
    "endpoint": ("ftp://api.partner.example/v1",),
    "method": ("TRACE",),
    "name": ("Authorization", "X-Amz-Date", "Host"),
    "array_format": ("NESTED",),
    "content_type": ("image/png", "application/octet-stream"),
    "cap:g": ("60",),
    "_root_cause(exc)": ("[Errno 111] Connection refused", "Name or service not known"),
    "connection_arn": (CONN,),
    "response.status_code": ("400", "401", "403", "404", "407", "408", "409", "413", "429",
                             "500", "502", "503", "504"),
    "http_call.status_text(response)": ("Bad Request",),
    "eventbridge.CONNECTION_NOT_AUTHORIZED_CAUSE": (eventbridge.CONNECTION_NOT_AUTHORIZED_CAUSE,),
    # _from_error wraps moto's own exceptions; moto's wordings for them are listed below.
    "str(ex)": (),
    # TestState: moto's JSONPath wording (as in FROM_MOTO), a ResultPath, a caller's mock.
    "exc.message": ("The JSONPath '$.url' specified for the field 'ApiEndpoint.$' could not be "
                    "found in the input '{}'",),
    "result_path": ("$[0]",),
    "str(error.get('error', ''))": ("States.Http.StatusCode.503",),
    "str(error.get('cause', ''))": ("Service Unavailable",),
}  # fmt: skip
# Failures moto's interpreter raises itself, which the sandbox passes on (moto's wording).
FROM_MOTO = [
    ("States.Timeout", ""),
    (
        "States.DataLimitExceeded",
        "The state/task 'http' returned a result with a size exceeding the maximum number of "
        "bytes service limit.",
    ),
    (
        "States.Runtime",
        "The JSONPath '$.url' specified for the field 'ApiEndpoint.$' could not be found in the "
        "input '{}'",
    ),
    ("States.Runtime", "Invalid path '$.missing' : No results for path: $['missing']"),
]


def _renderings(node: ast.expr) -> list[str]:
    """Every text an argument can take, from SAMPLES for the parts that are not literal."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.JoinedStr):
        texts = [""]
        for part in node.values:
            if isinstance(part, ast.Constant):
                texts = [t + str(part.value) for t in texts]
                continue
            assert isinstance(part, ast.FormattedValue)
            hole = ast.unparse(part.value) + (
                f":{ast.unparse(part.format_spec)[2:-1]}" if part.format_spec else ""
            )
            texts = [t + v for t in texts for v in SAMPLES[hole]]
        return texts
    return list(SAMPLES[ast.unparse(node)])


def sandbox_errors() -> list[tuple[str, str, str]]:
    """(where, error, cause) for every HttpTaskError the sandbox raises."""
    found: list[tuple[str, str, str]] = []
    for path in sorted(SANDBOX.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "HttpTaskError"
            ):
                continue
            error_arg, cause_arg = node.args
            where = f"{path.name}:{node.lineno}"
            for error in _renderings(error_arg):
                found.extend((where, error, cause) for cause in _renderings(cause_arg))
    return found


def test_the_list_is_read_from_the_sandbox() -> None:
    listed = sandbox_errors()
    # Every raise site contributes; these are ones the issue names.
    assert ("States.Runtime", "A string RequestBody cannot be combined with the connection's "
            "body parameters.") in {(e, c) for _, e, c in listed}  # fmt: skip
    assert {e for _, e, _ in listed} >= {
        "States.Http.Socket",
        "States.Http.StatusCode.429",
        "Events.ConnectionResource.AccessDenied",
        "Events.ConnectionResource.ResourceNotFound",
        "Events.ConnectionResource.AuthInProgress",
        "Events.ConnectionResource.InvalidConnectionState",
    }
    assert len({w for w, _, _ in listed}) >= 14


ALL = [(f"{w} {e}", e, c) for w, e, c in sandbox_errors()] + [
    (f"moto {e}", e, c) for e, c in FROM_MOTO
]


@pytest.mark.parametrize(("where", "error", "cause"), ALL, ids=[f"{a[0]}:{a[2][:40]}" for a in ALL])
def test_every_sandbox_failure_has_a_named_category(where: str, error: str, cause: str) -> None:
    failed = ParsedAttempt(
        state_name="CallApi",
        attempt_number=1,
        method="POST",
        url="https://api.partner.example/v1/orders",
        connection_arn=CONN,
        error=error,
        cause=cause,
        status_code=status_from_error(error),
        outcome="timed_out" if error == "States.Timeout" else "failed",
        closed_event_type="TaskTimedOut" if error == "States.Timeout" else "TaskFailed",
    )
    result = classify(failed)
    assert result.category not in (None, "unknown"), (where, result.rule_id, result.hint)
    assert result.hint
