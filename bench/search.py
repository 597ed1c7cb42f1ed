"""Search at scale: the pages' free-text search over the dashboard seed (1M attempts), and the
pg_trgm index it uses against a PostgreSQL full-text index over the same columns.

    DATABASE_URL=postgres://…/some_scratch_db .venv/bin/python -m bench.search [--quick] [--reuse]

The database named must be migrated and scratch: it is flushed and seeded (bench/seed.py). Pages
are asked in-process (Django's test client, logged in), `REQUESTS` times each after a warm-up;
the two index kinds are compared on the same core query (first page of matching failing
attempts, newest first) with EXPLAIN ANALYZE, medians of `REQUESTS` runs. Prints JSON.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from typing import Any
from urllib.parse import urlencode

REQUESTS = 9
# executions.models.FAILING, in the order of NOT_FAILING_OUTCOMES (the partial indexes' predicate).
FAILING_SQL = "outcome NOT IN ('succeeded', 'in_progress', 'aborted')"
TEXT = "coalesce(error,'') || ' ' || coalesce(cause,'') || ' ' || url || ' ' || response_body"
FTS_INDEX = (
    f"CREATE INDEX att_fail_fts ON executions_httpattempt USING gin "
    f"(to_tsvector('simple', {TEXT})) WHERE {FAILING_SQL}"
)
CORE = (
    "SELECT id FROM executions_httpattempt WHERE "  # noqa: S608
    f"{FAILING_SQL} AND account_id = ANY(%s) AND ({{match}}) "
    "ORDER BY occurred_at DESC, id DESC LIMIT 51"
)
TRIGRAM_MATCH = " OR ".join(f"{c} ILIKE %s" for c in ("error", "cause", "url", "response_body"))
FTS_MATCH = f"to_tsvector('simple', {TEXT}) @@ websearch_to_tsquery('simple', %s)"


def _median_ms(samples: list[float]) -> float:
    return round(statistics.median(samples) * 1000, 1)


def _p95_ms(samples: list[float]) -> float:
    ordered = sorted(samples)
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))] * 1000, 1)


def time_pages(user_id: int, terms: dict[str, str]) -> dict[str, Any]:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_HOST="127.0.0.1")  # settings' ALLOWED_HOSTS, not "testserver"
    client.force_login(get_user_model().objects.get(pk=user_id))
    results: dict[str, Any] = {}
    for label, term in terms.items():
        for page, path, extra in (
            ("executions", "/executions/", {}),
            ("attempts", "/executions/", {"view": "attempts"}),
            ("api executions", "/api/v1/executions/", {}),
        ):
            query = {**extra, "q": term} if term else extra  # "": the page unfiltered
            url = f"{path}?{urlencode(query)}"
            client.get(url)  # warm-up
            samples = []
            for _ in range(REQUESTS):
                started = time.perf_counter()
                with CaptureQueriesContext(connection) as queries:
                    response = client.get(url)
                samples.append(time.perf_counter() - started)
                assert response.status_code == 200, (url, response.status_code)
            results[f"{page} q={label}"] = {
                "p50_ms": _median_ms(samples),
                "p95_ms": _p95_ms(samples),
                "queries": len(queries),
            }
    return results


def _explain_ms(cursor: Any, sql: str, params: list[Any]) -> float:
    cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", params)
    return float(cursor.fetchone()[0][0]["Execution Time"])


def compare_indexes(accounts: list[int], terms: dict[str, str]) -> dict[str, Any]:
    from django.db import connection

    out: dict[str, Any] = {}
    with connection.cursor() as cursor:
        started = time.perf_counter()
        cursor.execute(FTS_INDEX)
        fts_build = time.perf_counter() - started
        cursor.execute("ANALYZE executions_httpattempt")
        cursor.execute("SELECT pg_relation_size('att_fail_text'), pg_relation_size('att_fail_fts')")
        trigram_size, fts_size = cursor.fetchone()
        out["index_mb"] = {"trigram": trigram_size // 2**20, "full_text": fts_size // 2**20}
        out["full_text_build_s"] = round(fts_build, 1)
        for label, term in terms.items():
            pattern = f"%{term}%"
            trigram = [
                _explain_ms(cursor, CORE.format(match=TRIGRAM_MATCH), [accounts] + [pattern] * 4)
                for _ in range(REQUESTS)
            ]
            fts = [
                _explain_ms(cursor, CORE.format(match=FTS_MATCH), [accounts, term])
                for _ in range(REQUESTS)
            ]
            cursor.execute(CORE.format(match=TRIGRAM_MATCH), [accounts] + [pattern] * 4)
            found_trigram = len(cursor.fetchall())
            cursor.execute(CORE.format(match=FTS_MATCH), [accounts, term])
            found_fts = len(cursor.fetchall())
            out[label] = {
                "trigram_ms": statistics.median(trigram),
                "full_text_ms": statistics.median(fts),
                "rows_trigram": found_trigram,
                "rows_full_text": found_fts,
            }
        cursor.execute("DROP INDEX att_fail_fts")
    return out


def main(argv: list[str]) -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")
    import django

    django.setup()
    from bench.common import FULL, QUICK
    from bench.dashboard import seed
    from connections.models import AwsAccount

    config = QUICK if "--quick" in argv else FULL
    started = time.perf_counter()
    if "--reuse" in argv:  # the rows an earlier run seeded
        from django.contrib.auth import get_user_model

        user_id, rows = get_user_model().objects.get(username="bench").pk, {}
    else:
        seeded = seed(config)
        user_id, rows = seeded.user_id, seeded.rows
    seed_s = time.perf_counter() - started
    from executions.models import Execution

    newest = Execution.objects.filter(has_failed_attempt=True).order_by("-start_date").first()
    oldest = Execution.objects.filter(has_failed_attempt=True).order_by("start_date").first()
    assert newest and oldest
    terms = {
        "none (baseline)": "",
        "new-execution-name": newest.name,
        "old-execution-name": oldest.name,
        "common-cause": "Service Unavailable",
        "no-match": "zqxv-nothing",
    }
    accounts = list(AwsAccount.objects.values_list("pk", flat=True))
    result = {
        "seed_s": round(seed_s, 1),
        "rows": rows,
        "terms": terms,
        "pages": time_pages(user_id, terms),
        "indexes": compare_indexes(accounts, {k: v for k, v in terms.items() if v}),
        "load": os.getloadavg(),
    }
    print(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
