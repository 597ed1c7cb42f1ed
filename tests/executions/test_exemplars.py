"""The pure half of "exemplars first" (executions/classify/exemplars.py): which failed executions
are alike (error and normalised cause), and the breadth-first order their histories are read in."""

from __future__ import annotations

import time

from hypothesis import given
from hypothesis import strategies as st

from executions.classify import exemplars_first, likeness_key, normalised_cause
from executions.classify.exemplars import CAUSE_KEY_CHARS, CAUSE_SCAN_CHARS

BODY = (
    '{"error":"InternalServerError","message":"upstream failed","requestId":"%s",'
    '"time":"%s","traceId":"%s","retryAfterMs":%d}'
)


def test_two_500s_from_one_endpoint_with_different_request_ids_are_alike() -> None:
    one = BODY % ("3f2a9c1e-8b7d-4e6f-a5c4-1d2e3f4a5b6c", "2026-12-07T22:47:43.120Z",
                  "1-6755d3a1-9f8e7d6c5b4a39281706f5e4", 12500)  # fmt: skip
    two = BODY % ("0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e", "2026-12-08T01:02:03+01:00",
                  "1-6755d3ff-0a1b2c3d4e5f60718293a4b5", 9000)  # fmt: skip
    assert normalised_cause(one) == normalised_cause(two)
    error = "States.Http.StatusCode.500"
    assert likeness_key(error, one) == likeness_key(error, two)
    assert "3f2a9c1e" not in normalised_cause(one)


def test_a_hostile_cause_costs_what_a_short_one_does() -> None:
    """A cause echoes the third party's response body (up to 32 KiB). The mixed-token pattern
    looked ahead for a digit from every word boundary: "a-a-a-…" took seconds per cause (6 s
    for 32,000 characters here), a describe each, a hundred a machine a sync. Now only the first
    CAUSE_SCAN_CHARS are read, with no look-ahead; the bound below is 1,000 times what it takes."""
    started = time.process_time()
    for hostile in ("a-" * 16_000, ("x" * 15 + "-") * 2_000, "a1" * 16_000):
        assert len(normalised_cause(hostile)) <= CAUSE_KEY_CHARS
    assert time.process_time() - started < 1.0
    # Beyond the part read, the cause does not change its kind.
    body = BODY % ("3f2a9c1e-8b7d-4e6f-a5c4-1d2e3f4a5b6c", "2026-12-07T22:47:43Z", "t", 1)
    padded = body + " " * CAUSE_SCAN_CHARS
    assert normalised_cause(padded + "tail one") == normalised_cause(padded + "tail two")
    assert "req1abcdefgh23456" not in normalised_cause("id req1abcdefgh23456 failed")


def test_what_tells_failures_apart_is_kept() -> None:
    # Status texts (all real AWS gives), short numbers like a status, words of a body.
    assert normalised_cause("Internal Server Error") == "Internal Server Error"
    assert normalised_cause('{"status": 500}') != normalised_cause('{"status": 503}')
    assert normalised_cause("customer not found") != normalised_cause("order not found")
    assert likeness_key("States.Http.StatusCode.500", "Bad") != likeness_key(
        "States.Http.StatusCode.502", "Bad"
    )
    # HTTP dates and white space differ between instances too.
    assert normalised_cause("at Mon, 07 Dec 2026 22:47:43 GMT\n  busy") == normalised_cause(
        "at Tue, 08 Dec 2026 01:00:00 GMT busy"
    )


@given(st.text(max_size=2000))
def test_normalising_never_raises_and_stays_small(cause: str) -> None:
    key = normalised_cause(cause)
    assert len(key) <= 300
    assert normalised_cause(key) == normalised_cause(key)  # deterministic


def test_one_of_each_kind_first_then_the_kinds_in_turn() -> None:
    # Listing order: newest first; "a" is the storm, "b" and "c" rarer kinds.
    items = ["a1", "a2", "b1", "a3", "a4", "c1", "b2", "a5"]
    assert exemplars_first(items, lambda item: item[0]) == [
        "a1", "b1", "c1",  # one exemplar of each kind, in the order kinds first appear
        "a2", "b2",  # breadth: the kinds in turn
        "a3", "a4", "a5",  # then the rest, in their given order
    ]  # fmt: skip


def test_unknown_kinds_keep_their_order_and_take_their_turn() -> None:
    items = ["a1", "?1", "a2", "?2", "a3", "b1"]
    kinds = {"a1": "a", "a2": "a", "a3": "a", "b1": "b"}
    # The unknown ones (not described) are a kind of their own, last in each round.
    assert exemplars_first(items, kinds.get) == ["a1", "b1", "?1", "a2", "?2", "a3"]
    # Nothing known: the listing's order.
    assert exemplars_first(items, lambda _: None) == items
    assert exemplars_first([], kinds.get) == []


@given(st.lists(st.tuples(st.integers(0, 3) | st.none(), st.integers()), max_size=40))
def test_the_order_is_a_permutation_that_keeps_each_kinds_order(
    items: list[tuple[int | None, int]],
) -> None:
    tagged = list(enumerate(items))  # positions make items distinct
    ordered = exemplars_first(tagged, lambda pair: pair[1][0])
    assert sorted(ordered) == tagged
    for kind in {item[0] for item in items}:
        mine = [pair for pair in ordered if pair[1][0] == kind]
        assert mine == [pair for pair in tagged if pair[1][0] == kind]
    kinds = list(dict.fromkeys(pair[1][0] for pair in tagged if pair[1][0] is not None))
    assert [pair[1][0] for pair in ordered[: len(kinds)]] == kinds
