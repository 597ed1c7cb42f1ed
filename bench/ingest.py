"""Part 1, ingest: the worker's sync into PostgreSQL against plain boto3 reading the same histories.

Order within one run: an untimed floor (a warm-up), `ingest_pairs` interleaved pairs (floor, then the sync of a freshly
registered account), so that load from outside the bench that comes and goes hits both
halves of a pair alike; the ratio is the median of the pairs' ratios, in wall and in CPU
time. Then a second sync over unchanged data, then the memory measurement in a fresh
`sync_account` process on an account holding one long history.
"""

from __future__ import annotations

import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.common import REPO, Config, last_json_line, rounded, say
from bench.world import ACCESS_KEY, REGION, RSS_REGION, SECRET_KEY, World

MAIN_ACCOUNT = "bench"
RSS_ACCOUNT = "bench-rss"
WORKER_TIMEOUT = 900


def run_worker(*args: str, timeout: int = WORKER_TIMEOUT) -> dict[str, Any]:
    """`python -m bench.worker ARGS` with this process's environment; its JSON result."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.worker", *args],
        cwd=REPO,
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-15:]
        raise RuntimeError(f"bench.worker {args[0]} exited {done.returncode}: " + "\n".join(tail))
    return last_json_line(done.stdout)


def register_accounts(endpoint_url: str) -> None:
    """Both bench accounts, through the same command an operator uses."""
    for name, region in ((MAIN_ACCOUNT, REGION), (RSS_ACCOUNT, RSS_REGION)):
        register_account(endpoint_url, name, region)


def register_account(endpoint_url: str, name: str, region: str) -> None:
    from django.core.management import call_command

    with tempfile.NamedTemporaryFile("w", suffix=".txt") as secret, io.StringIO() as out:
        secret.write(SECRET_KEY)
        secret.flush()
        call_command(
            "register_account",
            name=name,
            account_id="123456789012",
            region=region,
            access_key_id=ACCESS_KEY,
            secret_access_key_file=secret.name,
            endpoint_url=endpoint_url,
            stdout=out,
        )


def reset_account(endpoint_url: str, name: str, region: str) -> None:
    """Forget everything a sync stored for the account (the delete cascades), then register
    it again: the next sync is a first sync over the same sandbox, as the pair before it."""
    from connections.models import AwsAccount

    AwsAccount.objects.filter(name=name).delete()
    register_account(endpoint_url, name, region)


def run_ingest(world: World, config: Config, workdir: Path) -> dict[str, Any]:
    register_accounts(world.endpoint_url)
    arns = workdir / "arns.json"
    arns.write_text(json.dumps([e.arn for e in world.executions]))
    # The floor reads through the account's AwsApi, as the sync does (same client settings,
    # decoding, rate limiter); plain boto3 runs first, as the warm-up, for reference only.
    fetch_args = ("fetch", MAIN_ACCOUNT, REGION, str(arns))
    say(f"ingest: {len(world.executions)} histories, {world.events:,} events")
    # Untimed as a pair: the first pair's floor should not read a cold sandbox.
    plain = run_worker("fetch-plain", world.endpoint_url, REGION, str(arns))
    pairs: list[tuple[dict[str, Any], dict[str, Any]]] = []
    for number in range(1, config.ingest_pairs + 1):
        if number > 1:
            reset_account(world.endpoint_url, MAIN_ACCOUNT, REGION)
        floor = run_worker(*fetch_args)
        sync = run_worker("sync", MAIN_ACCOUNT)
        say(
            f"ingest: pair {number}/{config.ingest_pairs}: floor {floor['seconds']:.1f} s, "
            f"sync {sync['seconds']:.1f} s ({sync['seconds'] / floor['seconds']:.2f}x)"
        )
        pairs.append((floor, sync))
    say("ingest: second sync over unchanged data")
    second = run_worker("sync", MAIN_ACCOUNT)
    say(f"ingest: memory of one {world.rss_execution.events:,}-event history")
    memory = run_worker("rss", RSS_ACCOUNT)
    return summarise(world, pairs, second, memory, plain)


def summarise(
    world: World,
    pairs: list[tuple[dict[str, Any], dict[str, Any]]],
    second: dict[str, Any],
    memory: dict[str, Any],
    plain: dict[str, Any],
) -> dict[str, Any]:
    ratios = [float(s["seconds"]) / float(f["seconds"]) for f, s in pairs]
    cpu_ratios = [float(s["cpu_seconds"]) / float(f["cpu_seconds"]) for f, s in pairs]
    # The median pair by wall ratio gives the reported sync (its summary and times).
    floor, first = sorted(pairs, key=lambda p: float(p[1]["seconds"]) / float(p[0]["seconds"]))[
        len(pairs) // 2
    ]
    summary = first["summary"]
    added = int(summary.get("executions_added", 0))
    seconds = float(first["seconds"])
    calls: dict[str, int] = dict(summary.get("api_calls", {}))
    per_execution = {op: rounded(n / max(added, 1)) for op, n in sorted(calls.items())}
    per_execution["total"] = rounded(sum(calls.values()) / max(added, 1))
    notes = []
    if added != len(world.executions):
        notes.append(
            f"the sync added {added} executions of the {len(world.executions)} stored; "
            "the ratio compares different work"
        )
    if summary.get("status") != "ok":
        notes.append(f"sync status {summary.get('status')}: {summary.get('errors', [])[:3]}")
    return {
        "executions_per_s": rounded(added / seconds),
        "events_per_s": rounded(floor["events"] / seconds),
        "ratio_vs_fetch": rounded(statistics.median(ratios)),
        # Each pair's sync over the floor timed just before it, and the same in CPU time of
        # the two worker processes (PostgreSQL's and the sandbox's CPU not counted).
        "ratio_vs_fetch_pairs": [rounded(r) for r in ratios],
        "cpu_ratio_vs_fetch": rounded(statistics.median(cpu_ratios)),
        "cpu_ratio_vs_fetch_pairs": [rounded(r) for r in cpu_ratios],
        "api_calls_per_execution": per_execution,
        "resync_get_history_calls": int(
            second["summary"].get("api_calls", {}).get("GetExecutionHistory", 0)
        ),
        "rss_growth_mb_25k": rounded(float(memory["growth_mb"])),
        "executions": added,
        "events": int(floor["events"]),
        "attempts_added": int(summary.get("attempts_added", 0)),
        "ingest_seconds": rounded(seconds),
        "fetch_seconds": [rounded(float(f["seconds"])) for f, _ in pairs],
        "ingest_seconds_pairs": [rounded(float(s["seconds"])) for _, s in pairs],
        "ingest_cpu_seconds_pairs": [rounded(float(s["cpu_seconds"])) for _, s in pairs],
        "fetch_cpu_seconds": [rounded(float(f["cpu_seconds"])) for f, _ in pairs],
        "fetch_calls": int(floor["calls"]),
        # Plain boto3 (default settings, no rate limiter), once, before the pairs.
        "plain_fetch_seconds": rounded(float(plain["seconds"])),
        "plain_fetch_cpu_seconds": rounded(float(plain["cpu_seconds"])),
        "api_calls": calls,
        "resync_api_calls": dict(second["summary"].get("api_calls", {})),
        "resync_seconds": rounded(float(second["seconds"])),
        "rss": {k: rounded(v) if isinstance(v, float) else v for k, v in memory.items()},
        "rss_history_events": world.rss_execution.events,
        "sync_status": summary.get("status"),
        "sync_errors": list(summary.get("errors", []))[:5],
        "world": world.describe(),
        "notes": notes,
    }
