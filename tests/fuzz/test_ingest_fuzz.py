"""Hypothesis through the whole ingestion path: garbage histories and log events into PostgreSQL.

Each example is a recorded history (tests/fixtures/histories) or a batch of CloudWatch execution
log events, damaged the way a misbehaving API, emulator or partner would: missing fields, wrong
types, huge strings, NUL bytes and lone surrogates, invalid JSON in parameters/output/cause,
unknown event types, events out of order or twice. It goes through the same code as a sync
(StandardReader / ExpressLogReader → HistoryParser → AttemptWriter → PostgreSQL) inside a
savepoint that is rolled back after the example. The promise: no exception escapes, and the
execution is stored, with whatever could not be read listed in its parse problems or in its
attempts' problems; nothing needs the sync's last-resort "one bad execution" error path.

`HYPOTHESIS_PROFILE=ci` runs 10,000 examples per test (the acceptance bar); without it, 300.
"""

from __future__ import annotations

import copy
import json
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import count
from types import SimpleNamespace
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connections.aws import HistoryPage, ListedExecution, LogPage
from connections.models import AwsAccount
from executions.columns import pg_safe
from executions.history import HistoryParser, http_states_from_definition
from executions.models import Execution, HttpAttempt, StateMachine
from executions.rows import attempt_key
from executions.sync import ExpressLogReader, StandardReader, SyncStep, begin_sync
from tests.factories import AwsAccountFactory
from tests.history_corpus import EVENT_TYPES, FIXTURES, HISTORIES, LOG_EVENTS

pytestmark = pytest.mark.django_db

_QUICK = settings(
    max_examples=300,
    deadline=None,
    database=None,  # no .hypothesis directory in the repository
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
        # The database fixture is set up once per test; each example rolls its own work back.
        HealthCheck.function_scoped_fixture,
    ],
)
settings.register_profile("stepscope-ingest-fuzz", _QUICK)
settings.register_profile("stepscope-ingest-fuzz-ci", _QUICK, max_examples=10_000)
PROFILE = settings.get_profile(
    "stepscope-ingest-fuzz-ci"
    if os.environ.get("HYPOTHESIS_PROFILE") == "ci"
    else "stepscope-ingest-fuzz"
)

REGION = "us-east-1"
MACHINE_ARN = "arn:aws:states:us-east-1:123456789012:stateMachine:fuzz"
EXPRESS_ARN = "arn:aws:states:us-east-1:123456789012:stateMachine:fuzz-express"
TERMINAL = ["SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"]


UNKNOWN_TYPES = ["TaskFooed", "", "taskscheduled", "Task Scheduled", "ExecutionExploded"]
DETAIL_FIELDS = [
    "parameters",
    "output",
    "error",
    "cause",
    "name",
    "resourceType",
    "resource",
    "timeoutInSeconds",
    "outputDetails",
    "redriveCount",
    "index",
]

# ------------------------------------------------------------------------------ strategies

# Strings PostgreSQL refuses or that stress every text path: NUL, lone surrogates (valid in
# Python and in JSON escapes, not in UTF-8), control characters, emoji, RTL, huge repeats.
NASTY_UNITS = ["\x00", "\ud800", "\udfff", "\ud83d", "\x1b[31m", "é", "😀", "\u202e", "\\", '"']


@dataclass(frozen=True)
class Huge:
    """`unit * n`, built only when the example runs: Hypothesis keeps what its strategies
    return, and ten thousand kept megabytes would exhaust the memory."""

    unit: str
    n: int


@dataclass(frozen=True)
class AsJson:
    """`value` as JSON text, built when the example runs (it may hold Huge strings)."""

    value: Any


def materialize(value: Any) -> Any:
    """The example as the API would send it: markers replaced by their strings."""
    if isinstance(value, Huge):
        return value.unit * value.n
    if isinstance(value, AsJson):
        return json.dumps(materialize(value.value), allow_nan=True)
    if isinstance(value, dict):
        return {materialize(k): materialize(v) for k, v in value.items()}
    if isinstance(value, list):
        return [materialize(v) for v in value]
    return value


huge = st.builds(
    Huge,
    st.sampled_from(["x", "\x00", "\ud800", "é", "{", "Bearer abcdefghijklmnop ", "<a>"]),
    st.sampled_from([10, 5_000, 100_000, 1_000_000]),
)
nasty_text = st.one_of(
    st.text(max_size=30),
    st.lists(st.sampled_from(NASTY_UNITS), min_size=1, max_size=6).map("".join),
    st.builds(lambda a, b: f"{a}\x00{b}\ud800", st.text(max_size=8), st.text(max_size=8)),
    huge,
)
invalid_json = st.sampled_from(
    [
        "{",
        "[1,",
        '{"ApiEndpoint": ',
        "NaN",
        '{"StatusCode": NaN, "ResponseBody": Infinity}',
        '{"StatusCode": 1e999}',
        '{"a": "\\ud800"}',
        '{"a": "\\u0000"}',
        "\x00",
        "null",
        '"just a string"',
        "[]",
        "9" * 400,
        "[" * 5000 + "]" * 5000,
    ]
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    nasty_text,
    invalid_json,
)
junk = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(nasty_text, inner, max_size=4)
    ),
    max_leaves=10,
)


@st.composite
def http_parameters(draw: st.DrawFn) -> Any:
    """Parameters of an HTTP TaskScheduled: a JSON text (as AWS sends) with hostile content."""
    params = {
        "ApiEndpoint": draw(st.one_of(nasty_text, st.just("https://api.example.com/v1/x"), junk)),
        "Method": draw(st.one_of(st.sampled_from(["GET", "POST", "delete"]), junk)),
        "Headers": draw(st.one_of(st.dictionaries(nasty_text, nasty_text, max_size=3), junk)),
        "QueryParameters": draw(junk),
        "RequestBody": draw(junk),
        "InvocationConfig": {"ConnectionArn": draw(st.one_of(nasty_text, junk))},
    }
    for key in draw(st.lists(st.sampled_from(sorted(params)), max_size=3)):
        params.pop(key, None)
    as_text = AsJson(params)
    return draw(st.one_of(st.just(as_text), st.just(params), invalid_json, junk))


@st.composite
def http_output(draw: st.DrawFn) -> Any:
    output = {
        "StatusCode": draw(st.one_of(st.integers(-5, 100_000), junk)),
        "StatusText": draw(nasty_text),
        "Headers": draw(st.one_of(st.dictionaries(nasty_text, junk, max_size=3), junk)),
        "ResponseBody": draw(junk),
    }
    return draw(st.one_of(st.just(AsJson(output)), st.just(output), junk))


def detail_value(name: str) -> st.SearchStrategy[Any]:
    if name == "parameters":
        return http_parameters()
    if name == "output":
        return http_output()
    if name in ("error", "cause"):
        return st.one_of(nasty_text, invalid_json, junk)
    return junk


ACTIONS = [
    "drop_key",
    "wrong_type",
    "bad_detail",
    "unknown_type",
    "retype",
    "duplicate",
    "delete",
    "swap",
    "same_id",
    "bad_id",
    "replace",
]


def _details(event: dict[str, Any]) -> dict[str, Any] | None:
    return next(
        (
            v
            for k, v in event.items()
            if isinstance(k, str) and k.endswith("EventDetails") and isinstance(v, dict)
        ),
        None,
    )


@st.composite
def damaged(draw: st.DrawFn, events: list[Any]) -> list[Any]:
    """The events after 0–8 damages; each damage is one of ACTIONS at a random position."""
    events = copy.deepcopy(events)
    for _ in range(draw(st.integers(0, 8), label="damages")):
        if not events:
            break
        i = draw(st.integers(0, len(events) - 1), label="at")
        event = events[i]
        action = draw(st.sampled_from(ACTIONS), label="action")
        if action == "delete":
            del events[i]
        elif action == "duplicate":
            events.insert(i, copy.deepcopy(event))
        elif action == "swap":
            j = draw(st.integers(0, len(events) - 1))
            events[i], events[j] = events[j], events[i]
        elif action == "replace":
            events[i] = draw(junk)
        elif isinstance(event, dict):
            _damage_event(draw, event, action, events)
    return events


def _damage_event(draw: st.DrawFn, event: dict[str, Any], action: str, events: list[Any]) -> None:
    keys = sorted(event, key=repr)  # keys may be Huge markers as well as strings
    if action == "drop_key" and keys:
        event.pop(draw(st.sampled_from(keys)))
    elif action == "wrong_type" and keys:
        event[draw(st.sampled_from(keys))] = draw(junk)
    elif action == "unknown_type":
        event["type"] = draw(st.sampled_from(UNKNOWN_TYPES))
    elif action == "retype":
        event["type"] = draw(st.sampled_from(EVENT_TYPES))
    elif action == "same_id":
        other = events[draw(st.integers(0, len(events) - 1))]
        if isinstance(other, dict):
            event["id"] = other.get("id")
    elif action == "bad_id":
        event[draw(st.sampled_from(["id", "previousEventId"]))] = draw(
            st.one_of(st.integers(-(2**70), 2**70), scalars)
        )
    elif action == "bad_detail":
        details = _details(event)
        if details is None:
            details = {}
            event[
                f"{str(event.get('type', 'x'))[:1].lower()}{str(event.get('type', ''))[1:]}EventDetails"
            ] = details
        name = draw(st.sampled_from(DETAIL_FIELDS))
        details[name] = draw(detail_value(name))


@st.composite
def log_events(draw: st.DrawFn) -> list[dict[str, Any]]:
    """CloudWatch events (botocore-typed envelopes) whose messages are damaged log records."""
    records: list[Any] = [json.loads(e["message"]) for e in LOG_EVENTS]
    records = draw(damaged(records))
    events = []
    for n, record in enumerate(records):
        message: Any = AsJson(record)
        if draw(st.integers(0, 9)) == 0:
            message = draw(st.one_of(invalid_json, nasty_text))
        raw: dict[str, Any] = {
            "logStreamName": "states/fuzz/0",
            "timestamp": draw(st.integers(0, 2**41), label="timestamp"),
            "message": message,
            "ingestionTime": 1793614500000,
            "eventId": draw(st.sampled_from([f"e{n}", "e0", ""]), label="eventId"),
        }
        for key in draw(st.lists(st.sampled_from(["timestamp", "message", "eventId"]), max_size=2)):
            raw.pop(key, None)
        events.append(raw)
    return events


# ------------------------------------------------------------------------------ the harness


@dataclass
class RecordedAws:
    """Stands in for AwsApi at the AWS boundary, serving generated pages as AWS would.

    The sandbox cannot be made to answer with garbage, and everything after the AWS call (the
    readers, the parser, the writer, the database) is the real code.
    """

    responses: dict[str, list[Any]]
    calls: Counter[str] = field(default_factory=Counter)

    def _recorded(self, operation: str) -> Iterator[Any]:
        for page in self.responses.get(operation, []):
            self.calls[operation] += 1
            yield page

    def execution_pages(
        self, state_machine_arn: str = "", *, map_run_arn: str = ""
    ) -> Iterator[list[ListedExecution]]:
        # A fuzzed parent's Map Run has no children: the recorded listing is the machine's.
        return iter([]) if map_run_arn else self._recorded("ListExecutions")

    def history_pages(self, execution_arn: str) -> Iterator[HistoryPage]:
        return self._recorded("GetExecutionHistory")

    def log_pages(self, log_group_name: str, start_ms: int) -> Iterator[LogPage]:
        return self._recorded("FilterLogEvents")

    def describe_execution(self, arn: str) -> ListedExecution:
        raise AssertionError("no DescribeExecution expected while fuzzing")

    def client(self, service: str) -> Any:
        # connections.aws.maps names the client's method it calls through `_call` below.
        return SimpleNamespace(describe_map_run=None)

    # DescribeMapRun (connections.aws.maps goes through the boundary's `_call`): a fuzzed
    # parent's Map Run is there.
    def _call(self, operation: str, call: Any, **params: Any) -> dict[str, Any]:
        self.calls[operation] += 1
        return {"mapRunArn": params["mapRunArn"], "status": "FAILED"}


@dataclass
class Harness:
    account: AwsAccount
    standard: StateMachine
    express: StateMachine
    run_id: int
    serial: Iterator[int] = field(default_factory=count)

    def standard_execution(self, events: list[Any], page_size: int, status: str) -> Execution:
        arn = f"arn:aws:states:{REGION}:123456789012:execution:fuzz:ex-{next(self.serial)}"
        start = datetime(2026, 11, 2, 10, 15, tzinfo=UTC)
        item = ListedExecution(
            arn=arn,
            name=arn.rsplit(":", 1)[-1],
            status=status,
            start_date=start,
            stop_date=start + timedelta(seconds=30),
            redrive_count=0,
        )
        pages = [{"events": events[i : i + page_size]} for i in range(0, len(events), page_size)]
        step = SyncStep(self.run_id)
        states = http_states_from_definition(self.standard.definition)
        history = [HistoryPage(events=page["events"], next_token=None) for page in pages]
        aws = RecordedAws({"ListExecutions": [[item]], "GetExecutionHistory": history})
        StandardReader(step, aws, self.standard, states).run()  # type: ignore[arg-type]
        assert step.summary.errors == [], step.summary.errors
        execution = Execution.objects.get(arn=arn)
        assert_stored_cleanly(execution)
        assert_every_attempt_stored_or_flagged(execution, pages, states)
        return execution

    def express_executions(self, events: list[dict[str, Any]]) -> None:
        step = SyncStep(self.run_id)
        aws = RecordedAws({"FilterLogEvents": [LogPage(events=events, next_token=None)]})
        ExpressLogReader(step, aws, self.express, {}).run()  # type: ignore[arg-type]
        assert step.summary.errors == [], step.summary.errors
        for execution in Execution.objects.filter(state_machine=self.express):
            assert_stored_cleanly(execution)


def assert_stored_cleanly(execution: Execution) -> None:
    """Stored, readable back, and problems (if any) are sentences."""
    execution.refresh_from_db()
    assert all(isinstance(p, str) and p for p in execution.parse_problems)
    for attempt in HttpAttempt.objects.filter(execution=execution):
        assert all(isinstance(p, str) and p for p in attempt.problems)
        assert len(attempt.response_body) <= int(django_settings.STEPSCOPE["MAX_RESPONSE_CHARS"])
        assert "\x00" not in attempt.url + attempt.cause + attempt.response_body


def assert_every_attempt_stored_or_flagged(
    execution: Execution, pages: list[dict[str, Any]], states: Any
) -> None:
    """The same pages parsed on their own: every finished attempt is stored under its key, or
    (two attempts claiming one event) the one kept says another was dropped; the execution
    keeps the parser's problems."""
    parser = HistoryParser(states)
    parsed = [a for page in pages for a in parser.feed(page["events"])]
    parsed.extend(parser.finish())
    keys = [attempt_key(a) for a in parsed if a.outcome != "in_progress"]
    stored = HttpAttempt.objects.filter(execution=execution)
    assert set(stored.values_list("key_event_id", flat=True)) == set(keys)
    dropped = sum("was dropped" in p for a in stored for p in a.problems)
    assert dropped == len(keys) - len(set(keys))
    assert execution.parse_problems == pg_safe(parser.problems[:50])


@pytest.fixture
def harness(db: None) -> Harness:
    account = AwsAccountFactory.create(name="fuzz")
    definition = next((d.get("definition") for d in HISTORIES if d.get("definition")), None)
    standard = StateMachine.objects.create(
        account=account,
        region=REGION,
        arn=MACHINE_ARN,
        name="fuzz",
        type="STANDARD",
        definition=json.dumps(definition) if isinstance(definition, dict) else definition or "",
    )
    express = StateMachine.objects.create(
        account=account,
        region=REGION,
        arn=EXPRESS_ARN,
        name="fuzz-express",
        type="EXPRESS",
        log_group_arn=f"arn:aws:logs:{REGION}:123456789012:log-group:fuzz:*",
    )
    run = begin_sync(account, "fuzz")  # readers work only for the run holding the account
    assert run is not None
    return Harness(account, standard, express, run.pk)


def rolled_back(example: Any) -> None:
    """Run one example in a savepoint that is rolled back, whatever happens."""
    with transaction.atomic():
        try:
            example()
        finally:
            transaction.set_rollback(True)


@PROFILE
@given(data=st.data())
def test_damaged_histories_are_stored_or_flagged_never_raised(harness: Harness, data: Any) -> None:
    document = data.draw(st.sampled_from(HISTORIES), label="fixture")
    events = data.draw(damaged(document["events"]), label="events")
    page_size = data.draw(st.integers(1, 40), label="page size")
    status = data.draw(st.sampled_from(TERMINAL), label="status")
    rolled_back(lambda: harness.standard_execution(materialize(events), page_size, status))


@PROFILE
@given(events=log_events())
def test_damaged_log_events_are_stored_or_flagged_never_raised(
    harness: Harness, events: list[dict[str, Any]]
) -> None:
    rolled_back(lambda: harness.express_executions(materialize(events)))


@PROFILE
@given(events=st.lists(junk, max_size=20), page_size=st.integers(1, 10))
def test_arbitrary_json_as_a_history_is_stored_or_flagged(
    harness: Harness, events: list[Any], page_size: int
) -> None:
    rolled_back(lambda: harness.standard_execution(materialize(events), page_size, "FAILED"))


# ------------------------------------------------------------------------------ named cases

RETRIES = json.loads((FIXTURES / "retries_503_then_success.json").read_text())
MEGABYTE = 1_000_000


def _http_events(events: list[dict[str, Any]], event_type: str) -> list[dict[str, Any]]:
    return [e for e in events if e["type"] == event_type and "http" in json.dumps(e)]


def _hostile_history(value: str) -> list[Any]:
    """A real history with `value` in a URL, a header, a body, a response and an error/cause.

    Megabytes go to the cause and the response only: Step Functions caps a request at 256 KiB,
    and a megabyte in every JSON column of every attempt makes a slow test and nothing more."""
    events: list[Any] = copy.deepcopy(RETRIES["events"])
    small = value[:5000]
    for event in _http_events(events, "TaskScheduled"):
        details = event["taskScheduledEventDetails"]
        params = json.loads(details["parameters"])
        params["ApiEndpoint"] += "/" + small[:2000]
        params["Headers"] = {**params.get("Headers", {}), "X-Note": small, small[:50]: "x"}
        params["RequestBody"] = {"note": small, "n": float("nan")}
        details["parameters"] = json.dumps(params)
    for event in _http_events(events, "TaskFailed"):
        event["taskFailedEventDetails"]["cause"] = value
    for event in _http_events(events, "TaskSucceeded"):
        event["taskSucceededEventDetails"]["output"] = json.dumps(
            {"StatusCode": 200, "Headers": {"X-Echo": [small]}, "ResponseBody": value}
        )
    return events


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("nul\x00byte", id="NUL"),
        pytest.param("lone\ud800surrogate\udfff", id="lone-surrogates"),
        pytest.param("\x00\ud83d" * 50, id="mixed"),
        pytest.param("x" * MEGABYTE, id="1MB"),
        pytest.param("\x00" * MEGABYTE, id="1MB-of-NUL"),
        pytest.param("\ud800" * MEGABYTE, id="1MB-of-surrogates"),
    ],
)
def test_nul_bytes_lone_surrogates_and_megabyte_strings_are_stored(
    harness: Harness, value: str
) -> None:
    execution = harness.standard_execution(_hostile_history(value), 1000, "SUCCEEDED")
    attempts = list(HttpAttempt.objects.filter(execution=execution).order_by("key_event_id"))
    assert attempts and all(a.url for a in attempts)
    failed = [a for a in attempts if a.outcome == "failed"]
    succeeded = [a for a in attempts if a.outcome == "succeeded"]
    assert failed and succeeded
    stored = json.dumps([a.request_headers for a in attempts]) + failed[0].cause
    assert "\x00" not in stored + succeeded[0].response_body
    assert not any("\ud800" <= c <= "\udfff" for c in failed[0].cause[:5000])
    if len(value) >= MEGABYTE:
        assert len(failed[0].cause) >= MEGABYTE  # stored whole, not lost
        assert succeeded[0].response_truncated  # the response is capped, and says so


def test_invalid_json_in_parameters_is_stored_with_a_reason(harness: Harness) -> None:
    events = copy.deepcopy(RETRIES["events"])
    scheduled = _http_events(events, "TaskScheduled")[0]
    scheduled["taskScheduledEventDetails"]["parameters"] = '{"ApiEndpoint": "https://x'
    execution = harness.standard_execution(events, 1000, "SUCCEEDED")
    attempt = HttpAttempt.objects.get(execution=execution, key_event_id=scheduled["id"])
    assert any("not valid JSON" in p for p in attempt.problems), attempt.problems


def test_repeated_and_out_of_order_events_are_stored_once_with_a_reason(harness: Harness) -> None:
    events = copy.deepcopy(RETRIES["events"])
    events = events[:6] + events[2:6] + events[6:]  # a page served twice
    execution = harness.standard_execution(events, 4, "SUCCEEDED")
    assert any("repeated or out of order" in p for p in execution.parse_problems)
    once = harness.standard_execution(copy.deepcopy(RETRIES["events"]), 4, "SUCCEEDED")
    assert execution.attempts.count() == once.attempts.count()


def test_unknown_event_types_do_not_stop_the_execution(harness: Harness) -> None:
    events = copy.deepcopy(RETRIES["events"])
    for event in events[3:6]:
        event["type"] = "TaskFooed"
    execution = harness.standard_execution(events, 1000, "FAILED")
    assert execution.pk and execution.attempts.exists()
