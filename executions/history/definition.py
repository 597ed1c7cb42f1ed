"""What a state machine definition says statically about its HTTP Task states."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from executions.history.events import as_list, load_json

HTTP_RESOURCE_SUFFIX = ":states:::http:invoke"

_MAX_DEFINITION_DEPTH = 40
_MAX_HANDLERS = 50  # Retry/Catch entries read per state


@dataclass(frozen=True, slots=True)
class Retrier:
    """One entry of a state's `Retry`, with AWS's defaults for what it leaves out."""

    error_equals: tuple[str, ...]
    max_attempts: int = 3
    interval_seconds: float = 1
    backoff_rate: float = 2.0
    jitter: str = ""


@dataclass(frozen=True, slots=True)
class Catcher:
    """One entry of a state's `Catch`: the errors it takes and the state it goes to."""

    error_equals: tuple[str, ...]
    next: str


# States.ALL covers every error but these (reference §2); States.TaskFailed all but the timeout.
_NOT_IN_ALL = frozenset({"States.Runtime", "States.DataLimitExceeded"})


def covers(error_equals: tuple[str, ...], error: str) -> bool:
    """Whether a Retry/Catch entry's ErrorEquals matches `error`."""
    if error in error_equals:
        return True
    if "States.ALL" in error_equals and error not in _NOT_IN_ALL:
        return True
    return (
        "States.TaskFailed" in error_equals
        and error not in _NOT_IN_ALL
        and error != "States.Timeout"
    )


@dataclass(frozen=True, slots=True)
class HttpStateInfo:
    """What the state machine definition says statically about one HTTP Task state."""

    name: str
    endpoint: str | None
    method: str | None
    connection_arn: str | None
    # Lower-cased names from the static Headers block (an addition beyond the shared contract):
    # a state that fails before its TaskScheduled still shows which headers it would send.
    header_names: frozenset[str] = frozenset()
    # What the state does when a call fails (issue 15 item 7): hints never advise a Retry
    # the state already has.
    retriers: tuple[Retrier, ...] = ()
    catchers: tuple[Catcher, ...] = ()
    timeout_seconds: int | None = None

    def retrier_for(self, error: str) -> tuple[int, Retrier] | None:
        """The first Retry entry that matches `error` (the one AWS applies), with its index."""
        return next(
            ((i, r) for i, r in enumerate(self.retriers) if covers(r.error_equals, error)), None
        )

    def catcher_for(self, error: str) -> tuple[int, Catcher] | None:
        return next(
            ((i, c) for i, c in enumerate(self.catchers) if covers(c.error_equals, error)), None
        )

    def as_dict(self) -> dict[str, Any]:
        """As stored on StateMachine.http_states (JSON)."""
        return {
            "endpoint": self.endpoint,
            "method": self.method,
            "connection_arn": self.connection_arn,
            "header_names": sorted(self.header_names),
        }


def http_states_from_definition(
    definition: str | bytes | Mapping[str, Any] | None,
) -> dict[str, HttpStateInfo]:
    """Find every `http:invoke` Task state, including inside Parallel branches and Map states.

    Values that are computed at run time (`ApiEndpoint.$`, JSONata `{% %}`) come back as None.
    Never raises: an unreadable definition yields {}.
    """
    document = load_json(definition) if isinstance(definition, str | bytes) else definition
    found: dict[str, HttpStateInfo] = {}
    if isinstance(document, Mapping):
        _walk_states(document, found, 0)
    return found


def _walk_states(machine: Mapping[str, Any], found: dict[str, HttpStateInfo], depth: int) -> None:
    states = machine.get("States")
    if depth > _MAX_DEFINITION_DEPTH or not isinstance(states, Mapping):
        return
    for name, state in states.items():
        if not isinstance(name, str) or not isinstance(state, Mapping):
            continue
        if is_http_resource(state.get("Resource")):
            found[name] = _state_info(name, state)
        for branch in as_list(state.get("Branches")):
            if isinstance(branch, Mapping):
                _walk_states(branch, found, depth + 1)
        for key in ("Iterator", "ItemProcessor"):
            child = state.get(key)
            if isinstance(child, Mapping):
                _walk_states(child, found, depth + 1)


def is_http_resource(resource: object) -> bool:
    """`arn:aws:states:::http:invoke` in any partition (aws, aws-cn, aws-us-gov)."""
    return (
        isinstance(resource, str)
        and resource.startswith("arn:")
        and resource.endswith(HTTP_RESOURCE_SUFFIX)
    )


def _state_info(name: str, state: Mapping[str, Any]) -> HttpStateInfo:
    # JSONPath states use Parameters, JSONata states use Arguments; the keys are the same.
    params = state.get("Parameters")
    if not isinstance(params, Mapping):
        params = state.get("Arguments")
    failures: dict[str, Any] = {
        "retriers": tuple(_retriers(state.get("Retry"))),
        "catchers": tuple(_catchers(state.get("Catch"))),
        "timeout_seconds": _number(state.get("TimeoutSeconds"), int),
    }
    if not isinstance(params, Mapping):
        return HttpStateInfo(name=name, endpoint=None, method=None, connection_arn=None, **failures)
    method = _static_text(params, "Method")
    headers = params.get("Headers")
    return HttpStateInfo(
        name=name,
        endpoint=_static_text(params, "ApiEndpoint"),
        method=method.upper() if method else None,
        connection_arn=connection_arn(params, _static_text),
        header_names=_header_names(headers) if isinstance(headers, Mapping) else frozenset(),
        **failures,
    )


def _error_equals(entry: Mapping[str, Any]) -> tuple[str, ...]:
    return tuple(e for e in as_list(entry.get("ErrorEquals")) if isinstance(e, str))


def _retriers(value: object) -> list[Retrier]:
    found = []
    for entry in as_list(value)[:_MAX_HANDLERS]:
        if isinstance(entry, Mapping) and _error_equals(entry):
            jitter = entry.get("JitterStrategy")
            found.append(
                Retrier(
                    _error_equals(entry),
                    max_attempts=_number(entry.get("MaxAttempts"), int, 3),
                    interval_seconds=_number(entry.get("IntervalSeconds"), float, 1.0),
                    backoff_rate=_number(entry.get("BackoffRate"), float, 2.0),
                    jitter=jitter if isinstance(jitter, str) else "",
                )
            )
    return found


def _catchers(value: object) -> list[Catcher]:
    return [
        Catcher(_error_equals(entry), str(entry.get("Next") or ""))
        for entry in as_list(value)[:_MAX_HANDLERS]
        if isinstance(entry, Mapping) and _error_equals(entry)
    ]


def _number(value: object, kind: Callable[[Any], Any], default: Any = None) -> Any:
    # A JSONata `{% %}` or a junk value keeps AWS's default.
    if isinstance(value, bool) or not isinstance(value, int | float):
        return default
    return kind(value)


def _header_names(headers: Mapping[str, Any]) -> frozenset[str]:
    # "X-Api-Key.$" is the same header with a JSONPath value.
    return frozenset(str(k).removesuffix(".$").lower() for k in headers if isinstance(k, str) and k)


def _static_text(params: Mapping[str, Any], key: str) -> str | None:
    value = params.get(key)
    if isinstance(value, str) and value and not value.lstrip().startswith("{%"):
        return value
    return None


def connection_arn(
    params: Mapping[str, Any], read: Callable[[Mapping[str, Any], str], str | None]
) -> str | None:
    """The ConnectionArn of a task's Parameters/Arguments, read with `read` (static or as sent)."""
    # InvocationConfig is the recommended spelling; Authentication is the original one.
    for key in ("InvocationConfig", "Authentication"):
        block = params.get(key)
        if type(block) is dict or isinstance(block, Mapping):
            arn = read(block, "ConnectionArn")
            if arn:
                return arn
    return None


def state_calling(http_states: Mapping[str, HttpStateInfo], url: object) -> str:
    """The HTTP state a call without its TaskStateEntered belongs to, if the definition tells:
    its only HTTP state, or the only one whose static ApiEndpoint is `url` ("" otherwise)."""
    if len(http_states) == 1:
        return next(iter(http_states))
    matches = [n for n, info in http_states.items() if url and info.endpoint == url]
    return matches[0] if len(matches) == 1 else ""
