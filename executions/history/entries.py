"""What the parser keeps while it streams: open Task state entries, forks, and event links."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from executions.history.attempts import ParsedAttempt, parameter
from executions.history.definition import HttpStateInfo, is_http_resource

MAX_BRANCH_PATH = 200  # the column width of HttpAttempt.branch_path


class Entry:
    """One entry into a Task state: its attempts share it until the state is left."""

    __slots__ = ("attempts", "current", "entered_id", "http", "info", "name", "path", "pending")

    def __init__(
        self, name: str, path: str, entered_id: int | None, info: HttpStateInfo | None
    ) -> None:
        self.name = name
        self.path = path
        self.entered_id = entered_id
        self.info = info
        # True/False once a TaskScheduled says which integration this is; the definition
        # settles it earlier when known.
        self.http: bool | None = True if info is not None else None
        self.attempts = 0
        self.current: ParsedAttempt | None = None  # scheduled, not closed yet
        self.pending: ParsedAttempt | None = None  # failed; waiting to see retry / Catch / end


class Fork:
    """A Parallel or Map state that has started branches or iterations."""

    __slots__ = ("key", "name", "next_index", "path")

    def __init__(self, name: str, path: str) -> None:
        self.name = name
        self.path = path
        self.next_index = 0
        self.key = (path, name)


# A link is what a later event needs from the event it names as previousEventId:
# (branch path, open Task state entry or None, state name for *StateEntered else "").
Link = tuple[str, Entry | None, str]
ROOT: Link = ("", None, "")


def child_path(parent: str, segment: str) -> str:
    path = f"{parent}/{segment}" if parent else segment
    return path[-MAX_BRANCH_PATH:]


def segment_state(segment: str) -> str:
    """`Fanout#1` → `Fanout`, `Items[3]` → `Items`: the Parallel/Map state a segment belongs to."""
    if segment.endswith("]"):
        return segment[: segment.rfind("[")]
    return segment.rpartition("#")[0]


def in_fork(path: str, fork: Fork) -> bool:
    """Whether a branch path lies in one of the fork's branches or iterations."""
    if fork.path and not path.startswith(f"{fork.path}/"):
        return False
    rest = path[len(fork.path) + 1 :] if fork.path else path
    return segment_state(rest.partition("/")[0]) == fork.name


def entry_order(entry: Entry) -> int:
    return entry.entered_id or 0


def may_be_http(entry: Entry, details: Mapping[str, Any]) -> bool:
    if entry.http is not None:
        return entry.http
    return details.get("resourceType") == "http"


def is_http_task(details: Mapping[str, Any], entry: Entry) -> bool:
    resource_type = details.get("resourceType")
    if resource_type is not None:
        return resource_type == "http" or is_http_resource(details.get("resource"))
    # includeExecutionData off or an odd emulator: fall back to the definition, then the shape.
    return entry.info is not None or bool(parameter(details, "ApiEndpoint"))
