"""TestState for HTTP Tasks, answered as ../shared/docs/aws-http-task-reference.md §5 shows.

moto 5.2.1 carries LocalStack's TestState program but does not route the operation, and it
predates `stateName`, `mock`, `revealSecrets` and the HTTP `request`/`response` inspection
data. So the sandbox answers TestState itself, for one HTTP Task state (the only kind
Stepscope replays), with the same request shaping, connection handling and error names as the
executions (`sandbox.http_call`, `sandbox.eventbridge`, `sandbox.http_task`): what TestState
shows is what an execution would have sent.

Path processing is JSONPath only (InputPath, Parameters `.$` paths, ResultSelector, ResultPath,
OutputPath); intrinsic functions and JSONata `Arguments` are refused with ValidationException.
"""

from __future__ import annotations

import copy
import json
import urllib.parse
from typing import Any, Final, cast

from moto.core.exceptions import AWSError
from moto.stepfunctions.exceptions import InvalidExecutionInput
from moto.stepfunctions.parser.asl.utils.json_path import NoSuchJsonPathError, extract_json

from sandbox import connectivity, eventbridge, http_call
from sandbox.http_call import HttpCall, HttpTaskError

HTTP_RESOURCE: Final = "arn:aws:states:::http:invoke"
INSPECTION_LEVELS: Final = ("INFO", "DEBUG", "TRACE")
REVEAL_ACTION: Final = "states:RevealSecrets"
# What a redacted secret looks like in TRACE data (the reference's example shows `XXXXXXXX`).
MASK: Final = "XXXXXXXX"
# Errors that States.ALL and States.TaskFailed do not match (reference §2).
_UNCATCHABLE: Final = frozenset({"States.Runtime", "States.DataLimitExceeded"})


class InvalidDefinitionError(AWSError):
    TYPE = "InvalidDefinition"
    STATUS = 400


class ValidationError(AWSError):
    TYPE = "ValidationException"
    STATUS = 400


class AccessDeniedError(AWSError):
    TYPE = "AccessDeniedException"
    STATUS = 400


def install(responses: Any) -> None:
    """Route TestState (moto's StepFunctionResponse has no handler for it) to `answer`."""
    from moto.core.responses import ActionResult

    def test_state(self: Any) -> Any:
        request = json.loads(self.body or "{}")
        return ActionResult(answer(request, self.current_account, self.region))

    responses.test_state = test_state


def answer(request: dict[str, Any], account_id: str, region: str) -> dict[str, Any]:
    """The TestState answer for one HTTP Task: status, output/error/cause, nextState, inspectionData."""
    try:
        return _answer(request, account_id, region)
    except (TypeError, ValueError, AttributeError, KeyError) as exc:
        # A malformed field (e.g. MaxAttempts "three") is the caller's error, never a 500.
        raise ValidationError(f"Invalid TestState request: {exc!r}") from exc


def _answer(request: dict[str, Any], account_id: str, region: str) -> dict[str, Any]:
    state = _state_of(request)
    level = request.get("inspectionLevel") or "INFO"
    if level not in INSPECTION_LEVELS:
        raise ValidationError(f"Value '{level}' at 'inspectionLevel' failed to satisfy constraint.")
    reveal = request.get("revealSecrets") is True
    if reveal and not role_may_reveal(request.get("roleArn")):
        raise AccessDeniedError(
            f"User: arn:aws:iam::{account_id}:user/testing is not authorized to perform: "
            f"{REVEAL_ACTION} because no identity-based policy allows the {REVEAL_ACTION} action"
        )
    try:
        state_input = json.loads(request.get("input") or "{}")
    except ValueError as exc:
        raise InvalidExecutionInput(f"Invalid State Machine Execution Input: '{exc}'") from exc

    inspection: dict[str, Any] = {"input": _compact(state_input)}
    secrets: list[str] = []  # what the connection injected, unless revealed
    try:
        effective = _path(state.get("InputPath", "$"), state_input)
        inspection["afterInputPath"] = _compact(effective)
        parameters = _resolve(state.get("Parameters", {}), effective, request)
        inspection["afterParameters"] = _compact(parameters)
        result = _mocked(request["mock"]) if "mock" in request else None
        if result is None:
            result = _invoke(parameters, region, reveal, inspection, secrets)
        inspection["result"] = _compact(result)
        selected = (
            _resolve(state["ResultSelector"], result, request)
            if "ResultSelector" in state
            else result
        )
        inspection["afterResultSelector"] = _compact(selected)
        placed = _place(state, state_input, selected)
        inspection["afterResultPath"] = _compact(placed)
        output = _path(state.get("OutputPath", "$"), placed)
    except HttpTaskError as failure:
        answer = _on_error(state, state_input, failure, request, inspection)
    else:
        answer = {"status": "SUCCEEDED", "output": _compact(output)}
        if state.get("Next"):
            answer["nextState"] = state["Next"]
    if level != "INFO":
        if level != "TRACE":
            inspection.pop("request", None)
            inspection.pop("response", None)
        answer["inspectionData"] = inspection
    # A partner may echo what it received: the hidden values stay hidden everywhere.
    return cast(dict[str, Any], json.loads(_redacted(json.dumps(answer), secrets)))


def role_may_reveal(role_arn: Any) -> bool:
    """Whether the role's IAM policies (inline or attached, in moto's IAM) allow RevealSecrets.

    The sandbox has no caller identity, so the permission is modelled on the `roleArn` of the
    TestState request: the operator runs TestState with a role that has it, or without.
    """
    from moto.iam.models import iam_backends

    if not isinstance(role_arn, str) or ":role/" not in role_arn:
        return False
    account = role_arn.split(":")[4]
    try:
        role = iam_backends[account]["global"].get_role(role_arn.rsplit("/", 1)[1])
    except Exception:  # moto raises its own IAMNotFoundException; any failure means no role
        return False
    documents = list(role.policies.values()) + [
        version.document
        for policy in role.managed_policies.values()
        for version in policy.versions
        if version.is_default
    ]
    return any(_allows(document, REVEAL_ACTION) for document in documents)


def _allows(document: Any, action: str) -> bool:
    try:
        policy = (
            json.loads(urllib.parse.unquote(document)) if isinstance(document, str) else document
        )
    except ValueError:
        return False
    statements = policy.get("Statement", [])
    for statement in statements if isinstance(statements, list) else [statements]:
        actions = statement.get("Action", [])
        actions = actions if isinstance(actions, list) else [actions]
        if statement.get("Effect") == "Allow" and any(
            a in ("*", "states:*", action) for a in actions
        ):
            return True
    return False


# --- the state and its paths ----------------------------------------------------------------


def _state_of(request: dict[str, Any]) -> dict[str, Any]:
    try:
        definition = json.loads(request.get("definition") or "")
    except ValueError as exc:
        raise InvalidDefinitionError(f"Invalid State Machine Definition: '{exc}'") from exc
    if not isinstance(definition, dict):
        raise InvalidDefinitionError("Invalid State Machine Definition: not an object")
    name = request.get("stateName")
    if name is not None or "States" in definition:
        state = (definition.get("States") or {}).get(name) if name else None
        if not isinstance(state, dict):
            raise ValidationError(f"State '{name}' does not exist in the definition.")
    else:
        state = definition
    if state.get("Type") != "Task" or state.get("Resource") != HTTP_RESOURCE:
        raise ValidationError(
            f"The sandbox answers TestState for HTTP Tasks only ('{HTTP_RESOURCE}')."
        )
    if "Arguments" in state or state.get("QueryLanguage") == "JSONata":
        raise ValidationError("The sandbox's TestState supports JSONPath states only.")
    return state


def _path(path: Any, data: Any) -> Any:
    if path is None:
        return {}
    try:
        return extract_json(str(path), data)
    except NoSuchJsonPathError as exc:
        raise HttpTaskError("States.Runtime", exc.message) from exc


def _resolve(template: Any, data: Any, request: dict[str, Any]) -> Any:
    """Parameters/ResultSelector: keys ending in `.$` take the value at their path."""
    if isinstance(template, list):
        return [_resolve(item, data, request) for item in template]
    if not isinstance(template, dict):
        return template
    out: dict[str, Any] = {}
    for key, value in template.items():
        if not key.endswith(".$"):
            out[key] = _resolve(value, data, request)
        elif isinstance(value, str) and value.startswith("$$"):
            out[key[:-2]] = _path(value[1:], json.loads(request.get("context") or "{}"))
        elif isinstance(value, str) and value.startswith("$"):
            out[key[:-2]] = _path(value, data)
        else:
            raise ValidationError(
                f"The sandbox's TestState does not evaluate intrinsic functions ('{key}')."
            )
    return out


def _place(state: dict[str, Any], state_input: Any, value: Any) -> Any:
    """ResultPath: `$` replaces the input, null keeps it, `$.a.b` sets that field."""
    result_path = state.get("ResultPath", "$")
    if result_path is None:
        return state_input
    if result_path == "$":
        return value
    if not isinstance(state_input, dict) or not str(result_path).startswith("$."):
        raise HttpTaskError(
            "States.Runtime", f"Invalid path '{result_path}' : No results for path: {result_path}"
        )
    placed = copy.deepcopy(state_input)
    target = placed
    *parents, last = str(result_path)[2:].split(".")
    for part in parents:
        target = target.setdefault(part, {})
    target[last] = value
    return placed


# --- the call -------------------------------------------------------------------------------


def _mocked(mock: Any) -> Any:
    """`mock.result` is the task's result; `mock.errorOutput` its failure. No partner call."""
    if not isinstance(mock, dict) or ("result" in mock) == ("errorOutput" in mock):
        raise ValidationError("mock must have exactly one of 'result' and 'errorOutput'.")
    if "errorOutput" in mock:
        error = mock["errorOutput"] or {}
        raise HttpTaskError(str(error.get("error", "")), str(error.get("cause", "")))
    try:
        return json.loads(mock["result"])
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"mock.result is not valid JSON: {exc}") from exc


def _invoke(
    parameters: Any,
    region: str,
    reveal: bool,
    inspection: dict[str, Any],
    secrets: list[str],
) -> dict[str, Any]:
    from sandbox import http_task  # http_task installs this module

    # Parameters that are not an object have no ApiEndpoint: the same failure as a missing one.
    call = HttpCall.from_parameters(parameters if isinstance(parameters, dict) else {})
    connection = None
    connection_arn = http_task.connection_arn_of(parameters)
    if connection_arn:
        connection = connectivity.usable_connection(connection_arn, denied=False)
        try:
            auth = eventbridge.auth_headers(connection, region)
        except eventbridge.ConnectionNotAuthorizedError as exc:
            raise connectivity.invalid_connection_state() from exc
        call = call.with_connection(eventbridge.invocation_parameters(connection), auth)
        if not reveal:
            secrets.extend(_secret_values(connection, auth))
    url, headers, data = call.prepared(region)
    body_text = (data or b"").decode("utf-8", "replace")
    inspection["request"] = {
        "protocol": urllib.parse.urlsplit(url).scheme,
        "method": call.method,
        "url": _redacted(url, secrets),
        "headers": _redacted(header_string(headers.items()), secrets),
        "body": _redacted(body_text, secrets),
    }
    response, body = http_call.send_prepared(call.method, url, headers, data)
    if connection is not None:
        eventbridge.observe_response(connection, response.status_code)
    inspection["response"] = {
        "protocol": inspection["request"]["protocol"],
        "statusCode": str(response.status_code),
        "statusMessage": http_call.status_text(response),
        "headers": header_string(response.raw.headers.items()),
        "body": body.decode(response.encoding or "utf-8", "replace"),
    }
    if not 200 <= response.status_code < 300:
        raise HttpTaskError(
            f"States.Http.StatusCode.{response.status_code}", http_call.status_text(response)
        )
    return http_call.task_output(response, body)


def header_string(headers: Any) -> str:
    """Headers as TestState writes them: one `[k: v, k: v]` string."""
    return "[" + ", ".join(f"{k}: {v}" for k, v in headers) + "]"


def _secret_values(connection: Any, auth: dict[str, str]) -> list[str]:
    """What the connection injects that TestState hides without revealSecrets."""
    values = []
    for value in auth.values():
        scheme, _, credential = value.partition(" ")
        values.append(credential if scheme in ("Basic", "Bearer") and credential else value)
    http_parameters = connection.auth_parameters.get("InvocationHttpParameters") or {}
    for group in ("HeaderParameters", "QueryStringParameters", "BodyParameters"):
        for item in http_parameters.get(group) or []:
            if item.get("IsValueSecret"):
                values.append(str(item.get("Value", "")))
    return [v for v in values if v]


def _redacted(text: str, secrets: list[str]) -> str:
    # Longest first, so a secret containing another is masked whole; URL-encoded forms too.
    for secret in sorted(secrets, key=len, reverse=True):
        for form in {secret, urllib.parse.quote_plus(secret), urllib.parse.quote(secret)}:
            text = text.replace(form, MASK)
    return text


# --- the outcome ----------------------------------------------------------------------------


def _matches(error_equals: Any, error: str) -> bool:
    names = error_equals if isinstance(error_equals, list) else []
    if error in names:
        return True
    return error not in _UNCATCHABLE and bool({"States.ALL", "States.TaskFailed"} & set(names))


def _on_error(
    state: dict[str, Any],
    state_input: Any,
    failure: HttpTaskError,
    request: dict[str, Any],
    inspection: dict[str, Any],
) -> dict[str, Any]:
    """RETRIABLE while a matching retrier has attempts left, then CAUGHT_ERROR, else FAILED."""
    answer: dict[str, Any] = {"error": failure.error, "cause": failure.cause}
    configuration = request.get("stateConfiguration") or {}
    retry_count = int(configuration.get("retrierRetryCount") or 0)
    for index, retrier in enumerate(state.get("Retry") or []):
        if not _matches(retrier.get("ErrorEquals"), failure.error):
            continue
        if retry_count < int(retrier.get("MaxAttempts", 3)):
            backoff = (
                float(retrier.get("IntervalSeconds", 1))
                * float(retrier.get("BackoffRate", 2.0)) ** retry_count
            )
            if "MaxDelaySeconds" in retrier:
                backoff = min(backoff, float(retrier["MaxDelaySeconds"]))
            inspection["errorDetails"] = {
                "retryIndex": index,
                "retryBackoffIntervalSeconds": int(backoff),
            }
            return {**answer, "status": "RETRIABLE"}
        break
    for index, catcher in enumerate(state.get("Catch") or []):
        if _matches(catcher.get("ErrorEquals"), failure.error):
            inspection["errorDetails"] = {"catchIndex": index}
            caught = {"Error": failure.error, "Cause": failure.cause}
            output = _place({"ResultPath": catcher.get("ResultPath", "$")}, state_input, caught)
            return {
                **answer,
                "status": "CAUGHT_ERROR",
                "nextState": catcher.get("Next"),
                "output": _compact(output),
            }
    return {**answer, "status": "FAILED"}


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))
