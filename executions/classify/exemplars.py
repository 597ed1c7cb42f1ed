"""Which failed executions are alike, and the order their histories are read in a storm.

Pure (stdlib only). A storm is mostly one failure repeated (one broken endpoint) with a few rarer
ones beside it; histories are metered hardest (GetExecutionHistory), so the sync reads one
exemplar of each kind first, then the kinds in turn, so that a rarer failure is explained after
a handful of calls rather than after the whole storm. The kind is the execution's own error and
its cause with the parts that differ between two instances of one failure (request ids, times,
long numbers) blanked: two 500s from one endpoint with different request ids are alike.
"""

from __future__ import annotations

import re
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable, Sequence
from typing import TypeVar

T = TypeVar("T")

# A cause can be 32 KiB (a response body); its beginning tells the kind, and the key stays small.
CAUSE_KEY_CHARS = 300
# Only this much of a cause is read: every blank is shorter than what it replaces, so the key's
# 300 characters come from the cause's first ones, and third-party text of any length costs the
# same (a cause echoes the API's response body).
CAUSE_SCAN_CHARS = 4 * CAUSE_KEY_CHARS

_BLANKS: tuple[tuple[re.Pattern[str], str], ...] = (
    # UUIDs (request ids, execution names, trace ids' parts), with or without dashes.
    (re.compile(r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"),
     "<id>"),
    # ISO 8601 times and HTTP dates ("Mon, 07 Dec 2026 22:47:43 GMT").
    (re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d(?::\d\d(?:\.\d+)?)?(?:Z|[+-]\d\d:?\d\d)?"), "<time>"),
    (re.compile(r"\b[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d(?: [A-Z]{2,4})?"),
     "<time>"),
    # Long hex runs (trace ids, hashes).
    (re.compile(r"\b[0-9a-fA-F]{12,}\b"), "<id>"),
)  # fmt: skip
# Any token mixing letters and digits at length: matched as a run, then judged, since a pattern
# that looks ahead for the digit from every word boundary is quadratic in a long word.
_LONG_TOKEN = re.compile(r"\b[A-Za-z0-9_-]{16,}\b")
_HAS_DIGIT = re.compile(r"\d")
_HAS_LETTER = re.compile(r"[A-Za-z]")
# Numbers of four digits or more (counters, epoch times, byte counts); 500 stays 500.
_LONG_NUMBER = re.compile(r"\d{4,}")
_SPACE = re.compile(r"\s+")


def _blank_mixed(token: re.Match[str]) -> str:
    text = token.group()
    return "<id>" if _HAS_DIGIT.search(text) and _HAS_LETTER.search(text) else text


def normalised_cause(cause: str) -> str:
    """The cause with what differs between instances of one failure blanked, white space
    collapsed, cut to CAUSE_KEY_CHARS. Never raises; "" for an empty cause."""
    text = cause[:CAUSE_SCAN_CHARS] if isinstance(cause, str) else ""
    for pattern, blank in _BLANKS:
        text = pattern.sub(blank, text)
    text = _LONG_NUMBER.sub("<n>", _LONG_TOKEN.sub(_blank_mixed, text))
    return _SPACE.sub(" ", text).strip()[:CAUSE_KEY_CHARS]


def likeness_key(error: str, cause: str) -> tuple[str, str]:
    """What two failed executions share when they failed the same way."""
    return (error if isinstance(error, str) else "", normalised_cause(cause))


def exemplars_first(items: Sequence[T], key: Callable[[T], Hashable | None]) -> list[T]:
    """`items` (failures, in the order they would otherwise be read) reordered by breadth: one of
    each key first (in the order each key first appears), then the keys in turn, one item a round,
    until all are taken. Items whose key is None (unknown: not described, or described without
    an error) are a kind of their own, last in each round, in their given order; when no key is
    known the order is unchanged. Within a key the given order stays."""
    kinds: OrderedDict[Hashable, deque[T]] = OrderedDict()
    unknown: deque[T] = deque()
    for item in items:
        k = key(item)
        if k is None:
            unknown.append(item)
        else:
            kinds.setdefault(k, deque()).append(item)
    queues = [*kinds.values(), unknown] if unknown else list(kinds.values())
    ordered: list[T] = []
    while queues:
        for queue in queues:
            ordered.append(queue.popleft())
        queues = [queue for queue in queues if queue]
    return ordered
