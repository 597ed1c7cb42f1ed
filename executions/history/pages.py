"""GetExecutionHistory pages saved one after another, joined back into whole histories.

A saved history may be the pages as AWS returned them (`[{"events": [...], "nextToken": …}, …]`),
the AWS CLI's output (one joined document, `NextToken` when `--max-items` cut it), and either in
`reverseOrder` (newest events first). Documents that continue one another are one execution, so
an attempt split across a page break stays one attempt. A document continues the one before it
when that one says more follows (a `nextToken`/`NextToken`) or when its event ids carry on from
the earlier ones (forwards or, for reverseOrder, backwards) without a new ExecutionStarted — and
never when the two name different executions or share an event id.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from executions.history.events import as_int

_TOKEN_KEYS = ("nextToken", "NextToken")


def join_pages(documents: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One document per execution, in order; each joined document keeps every key it was given.

    The events of a joined document stay in the order the pages gave them (the parser's
    callers sort by id); keys other than `events` come from the first page that has them.
    """
    joined: list[dict[str, Any]] = []
    previous: _Page | None = None
    for document in documents:
        page = _Page.of(document)
        if previous is not None and joined and page.continues(previous):
            _absorb(joined[-1], document)
            previous = previous.extended_by(page)
        else:
            joined.append({**document, "events": list(_events(document))})
            previous = page
    return joined


class _Page:
    """What decides whether one document continues another."""

    __slots__ = ("arn", "has_more", "ids", "starts")

    def __init__(self, arn: str, ids: frozenset[int], has_more: bool, starts: bool) -> None:
        self.arn = arn
        self.ids = ids
        self.has_more = has_more
        self.starts = starts  # holds the execution's ExecutionStarted

    @classmethod
    def of(cls, document: Mapping[str, Any]) -> _Page:
        arn = document.get("executionArn")
        ids: set[int] = set()
        starts = False
        for event in _events(document):
            if isinstance(event, Mapping):
                event_id = as_int(event.get("id"))
                if event_id is not None:
                    ids.add(event_id)
                starts = starts or event.get("type") == "ExecutionStarted"
        has_more = any(isinstance(document.get(k), str) and document.get(k) for k in _TOKEN_KEYS)
        return cls(arn if isinstance(arn, str) else "", frozenset(ids), has_more, starts)

    def continues(self, earlier: _Page) -> bool:
        if self.arn and earlier.arn and self.arn != earlier.arn:
            return False
        if self.ids & earlier.ids:
            return False  # two executions both counting from 1, or a page saved twice
        if earlier.has_more:
            return True
        return self._adjacent(earlier)

    def _adjacent(self, earlier: _Page) -> bool:
        if not self.ids or not earlier.ids:
            return False
        forwards = min(self.ids) == max(earlier.ids) + 1 and not self.starts
        # reverseOrder: this page holds the events just before the earlier page's first.
        backwards = max(self.ids) == min(earlier.ids) - 1 and not earlier.starts
        return forwards or backwards

    def extended_by(self, later: _Page) -> _Page:
        return _Page(
            self.arn or later.arn,
            self.ids | later.ids,
            later.has_more,
            self.starts or later.starts,
        )


def _events(document: Mapping[str, Any]) -> list[Any]:
    events = document.get("events")
    return events if isinstance(events, list) else []


def _absorb(target: dict[str, Any], page: Mapping[str, Any]) -> None:
    target["events"].extend(_events(page))
    for key, value in page.items():
        if key != "events" and key not in _TOKEN_KEYS and target.get(key) is None:
            target[key] = value
    for key in _TOKEN_KEYS:  # the joined document says more follows only if its last page did
        target.pop(key, None)
        if page.get(key):
            target[key] = page[key]
