"""The benchmarks' tiniest configuration, end to end, so the bench code cannot rot.

One `python -m bench.run --smoke` (its own database, sandbox and web server) feeds every test
here; the pure helpers are checked directly.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bench.common import LIST_PAGES, TIMELINE_PAGES, evaluate, percentile
from bench.histories import fanout_definition, map_history
from bench.storm import quota_floor_s
from executions.history import parse_history

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Any]:
    output = tmp_path_factory.mktemp("bench") / "results.json"
    done = subprocess.run(
        [
            sys.executable, "-m", "bench.run", "--smoke", "--output", str(output),
            "--database", f"stepscope_bench_smoke_{os.getpid()}",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )  # fmt: skip
    assert output.exists(), done.stderr[-3000:]
    return done, json.loads(output.read_text())


def test_smoke_run_exits_zero_and_prints_the_table(smoke: Any) -> None:
    done, results = smoke
    assert done.returncode == 0, (results.get("errors"), done.stderr[-3000:])
    assert "Stepscope benchmarks (smoke)" in done.stdout
    assert results["errors"] == []


def test_ingest_measures_every_number_of_the_contract(smoke: Any) -> None:
    ingest = smoke[1]["ingest"]
    for key in ("executions_per_s", "events_per_s", "ratio_vs_fetch", "rss_growth_mb_25k"):
        assert ingest[key] > 0, key
    assert ingest["api_calls_per_execution"]["GetExecutionHistory"] >= 1
    assert ingest["executions"] == ingest["world"]["executions"]
    assert ingest["resync_get_history_calls"] == 0


def test_classify_compares_against_json_parsing_of_the_same_bytes(smoke: Any) -> None:
    classify = smoke[1]["classify"]
    assert classify["events_per_s"] > 0
    assert classify["ratio_vs_json_parse"] >= 1  # parse + classify includes json.loads
    assert classify["attempts"] > 0


def test_dashboard_times_every_page_with_its_query_count(smoke: Any) -> None:
    dashboard = smoke[1]["dashboard"]
    assert set(dashboard) == {*LIST_PAGES, *TIMELINE_PAGES}
    for page, row in dashboard.items():
        assert row["p95_ms"] >= row["p50_ms"] > 0, page
        assert row["queries"] > 0, page
        assert row["ratio_vs_sql"] > 0, page


def test_storm_measures_every_figure_of_the_contract(smoke: Any) -> None:
    storm = smoke[1]["storm"]
    for key in ("first_group_visible_s", "all_counted_s", "classified_ratio_vs_floor"):
        assert storm[key] > 0, key
    assert storm["all_classified_s"] >= storm["quota_floor_s"] > 0
    # Every failure read once, each history one page: the sandbox counted exactly that.
    assert storm["calls_by_operation"]["GetExecutionHistory"] == storm["executions"]
    assert storm["history_calls_per_failed_execution"] == 1.0
    assert storm["throttled_calls"] >= 0 and storm["sync_errors"] == []
    # Logs on: the same storm read from the log first, each failure stored once, and histories
    # asked only for a copy listed before its log lines were written (a race of milliseconds).
    logs_on = storm["logs_on"]
    assert logs_on["sync_errors"] == [] and logs_on["all_classified_s"] > 0
    assert logs_on["calls_by_operation"]["FilterLogEvents"] > 0
    calls_each = logs_on["history_calls_per_failed_execution"]
    assert storm["history_calls_per_failed_execution_logs_on"] == calls_each < 0.5


def test_the_quota_floor_spends_the_bucket_then_its_refill() -> None:
    # 400 calls from the full bucket at once, the other 50 at 20/s.
    assert quota_floor_s([0.0] * 450, 400, 20) == pytest.approx(2.5)
    # A bucket that never runs dry: the last failure's start is the floor.
    assert quota_floor_s([0.0, 10.0], 400, 20) == 10.0
    # Two calls each: the second of each waits for its own token.
    assert quota_floor_s([0.0, 0.0], 1, 1, calls_each=2) == pytest.approx(3.0)


def test_results_name_the_machine_and_judge_every_goal(smoke: Any) -> None:
    results = smoke[1]
    assert results["machine"]["cores"] >= 1
    assert all(goal["met"] is not None for goal in results["goals"])


def test_long_histories_stay_under_the_event_cap_and_parse() -> None:
    definition = fanout_definition(
        "https://partner.example", "arn:aws:events:us-east-1:1:connection/c/u"
    )
    events = map_history(
        target_events=2_000,
        partner_url="https://partner.example",
        connection_arn="arn:aws:events:us-east-1:1:connection/c/u",
        start=datetime(2026, 1, 1, tzinfo=UTC),
    )
    assert 1_980 <= len(events) <= 2_000
    assert [e["id"] for e in events] == list(range(1, len(events) + 1))
    attempts = parse_history(events, definition)
    assert attempts and all(a.outcome != "in_progress" for a in attempts)
    assert any(a.attempt_number > 1 for a in attempts)


def test_goals_compare_measured_values_with_their_limits() -> None:
    rows = {g["goal"]: g for g in evaluate({"ingest": {"ratio_vs_fetch": 1.5}})}
    assert rows["ingest.ratio_vs_fetch"]["met"] is False
    assert rows["classify.ratio_vs_json_parse"]["met"] is None


def test_percentile_interpolates() -> None:
    assert percentile([10.0, 20.0, 30.0, 40.0], 50) == 25.0
    assert percentile([7.0], 95) == 7.0
