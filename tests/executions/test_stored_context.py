"""StoredContext's last-success lookups: primed for a batch, they answer as one at a time.

`prime` learns an endpoint's stored successes for a reclassify batch in a few queries; every
answer must equal the lazy per-lookup one, ties between successes at one time included.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from connections.models import Endpoint
from executions import stored_context
from executions.classification import Classifier, affected_by
from executions.classify import RequestShape
from executions.grouping import FailureGroups
from executions.history import ParsedAttempt
from executions.models import HttpAttempt
from executions.redaction import default_redactor
from executions.resolution import Resolver
from executions.rows import as_parsed
from executions.stored_context import StoredContext
from tests.factories import EndpointFactory, ExecutionFactory, HttpAttemptFactory

pytestmark = pytest.mark.django_db

URL = "https://api.example.com/v1/orders/7"
START = timezone.now() - timedelta(hours=2)


def _at(minutes: int) -> datetime:
    return START + timedelta(minutes=minutes)


def _endpoint_with_history() -> tuple[Endpoint, list[HttpAttempt]]:
    """Successes at minutes 10, 20 (two, the later one with another header), 30, 40, 50,
    each with its own header; 4xx failures in every gap and before the first success."""
    execution = ExecutionFactory.create()
    endpoint = EndpointFactory.create(
        account=execution.account,
        method="POST",
        url_template="https://api.example.com/v1/orders/{id}",
    )
    successes = [(10, "a"), (20, "b"), (20, "c"), (30, "d"), (40, "e"), (50, "f")]
    for minute, header in successes:
        HttpAttemptFactory.create(
            execution=execution, endpoint=endpoint, url=URL, succeeded=True,
            occurred_at=_at(minute), request_headers={f"x-{header}": "1"},
        )  # fmt: skip
    failures = [
        HttpAttemptFactory.create(
            execution=execution,
            endpoint=endpoint,
            url=URL,
            occurred_at=_at(minute),
            status_code=400,
            error="States.Http.StatusCode.400",
            outcome="failed",
        )
        for minute in (45, 5, 25, 15, 20, 55, 35, 10, 50)  # id order is not time order
    ]
    return endpoint, failures


def _context(endpoint: Endpoint) -> StoredContext:
    return StoredContext(endpoint.account, lambda url: endpoint.url_template if url else "")


def _asked(failures: list[HttpAttempt]) -> list[tuple[ParsedAttempt, datetime]]:
    return [(as_parsed(row), row.occurred_at) for row in failures]


def _answers(context: StoredContext, asked: list[tuple[ParsedAttempt, datetime]]) -> list[object]:
    return [context.last_success(parsed, at) for parsed, at in asked]


@pytest.mark.parametrize("limit", [500, 3, 1])
def test_primed_answers_equal_the_lazy_ones(monkeypatch: pytest.MonkeyPatch, limit: int) -> None:
    monkeypatch.setattr(stored_context, "PRIME_LIMIT", limit)
    endpoint, failures = _endpoint_with_history()
    asked = _asked(failures)
    lazy = _answers(_context(endpoint), asked)
    primed_context = _context(endpoint)
    primed_context.prime(asked)
    assert _answers(primed_context, asked) == lazy
    # What they say, spelled out: the last success strictly before, the later of a tie.
    body = {"order": {"id": 123, "amount": 10}}
    shape = {h: RequestShape.from_request({f"x-{h}": "1"}, None, body) for h in "acdef"}
    expected = [shape["e"], None, shape["c"], shape["a"], shape["a"], shape["f"], shape["d"]]
    assert lazy == [*expected, None, shape["e"]]


def test_priming_asks_a_few_queries_where_lazy_lookups_ask_two_per_gap() -> None:
    endpoint, failures = _endpoint_with_history()
    asked = _asked(failures)
    with CaptureQueriesContext(connection) as lazy:
        _answers(_context(endpoint), asked)
    context = _context(endpoint)
    with CaptureQueriesContext(connection) as primed:
        context.prime(asked)
        _answers(context, asked)
    assert len(lazy) >= 12  # six gaps between successes, two queries each
    assert len(primed) <= 3


def test_reclassify_of_a_batch_out_of_time_order_reads_each_endpoint_once() -> None:
    endpoint, failures = _endpoint_with_history()
    classifier = Classifier(
        Resolver(endpoint.account, default_redactor()), FailureGroups(endpoint.account)
    )
    rows = list(
        HttpAttempt.objects.filter(pk__in=[f.pk for f in failures])
        .select_related("endpoint", "connection", "execution")
        .order_by("id")
    )
    with CaptureQueriesContext(connection) as queries:
        classifier.reclassify(rows)
    success_lookups = [q for q in queries if "\"outcome\" = 'succeeded'" in q["sql"]]
    assert len(success_lookups) <= 3, [q["sql"][:120] for q in success_lookups]


def test_many_primed_spans_answer_as_the_lazy_lookups() -> None:
    # Forty successes with a failure after each, asked in a shuffled order: the primed spans are
    # searched by bisection and must name the same success as one query per lookup.
    execution = ExecutionFactory.create()
    endpoint = EndpointFactory.create(
        account=execution.account, method="POST", url_template="https://api.example.com/v1/o/{id}"
    )
    for n in range(40):
        HttpAttemptFactory.create(
            execution=execution,
            endpoint=endpoint,
            url=URL,
            succeeded=True,
            occurred_at=_at(2 * n),
            request_headers={f"x-{n}": "1"},
        )
    order = [(7 * n) % 41 for n in range(41)]  # every index once, out of time order
    failures = [
        HttpAttemptFactory.create(
            execution=execution,
            endpoint=endpoint,
            url=URL,
            occurred_at=_at(2 * n - 1),
            status_code=401,
            error="States.Http.StatusCode.401",
            outcome="failed",
        )
        for n in order
    ]
    asked = _asked(failures)
    primed = _context(endpoint)
    primed.prime(asked)
    with CaptureQueriesContext(connection) as queries:
        answers = _answers(primed, asked)
    assert len(queries) == 0  # each answer came from a primed span
    assert answers == _answers(_context(endpoint), asked)


def _plans_of_attempt_reads(queries: list[dict[str, str]]) -> list[str]:
    """EXPLAIN of every captured query that reads attempts (sequential scans off, so that the
    plan on a test-sized table is the one a table of millions gets)."""
    plans = []
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        for query in queries:
            if 'FROM "executions_httpattempt"' not in query["sql"]:
                continue
            cursor.execute(f"EXPLAIN {query['sql']}")
            plans.append("\n".join(row[0] for row in cursor.fetchall()))
    return plans


def test_last_success_lookups_read_the_success_index_alone() -> None:
    """Each lookup (before, after, primed spans, affected_by's bound) is a probe of
    att_success_endp by the endpoint's id: through att_endpoint_all it read every failure of
    the endpoint too, and joined on the endpoint it sorted every success."""
    endpoint, failures = _endpoint_with_history()
    context = _context(endpoint)
    success = HttpAttempt.objects.filter(endpoint=endpoint, outcome="succeeded").first()
    assert success is not None
    with CaptureQueriesContext(connection) as captured:
        _answers(context, _asked(failures[:1]))
        _context(endpoint).prime(_asked(failures))
        affected_by([success])
    plans = _plans_of_attempt_reads(captured.captured_queries)
    assert len(plans) >= 5, captured.captured_queries
    for plan in plans:
        assert "att_success_endp" in plan, plan
        # Joined on the endpoint's columns, the plan sorted all of the endpoint's successes
        # under its LIMIT 1 (PostgreSQL cannot know only one endpoint matches).
        assert "Sort" not in plan, plan
