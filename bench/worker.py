"""Processes the bench starts, one measurement each, printing one JSON line as their result.

    python -m bench.worker sync ACCOUNT        the ingest worker's sync (executions.sync)
    python -m bench.worker rss ACCOUNT         `manage.py sync_account ACCOUNT`, peak RSS growth
    python -m bench.worker fetch ACCOUNT REGION ARNS    the floor: histories through AwsApi
    python -m bench.worker fetch-plain URL REGION ARNS_FILE   plain boto3 histories (reference)
    python -m bench.worker classify CORPUS ROUNDS       parse + classify against json.loads

Each runs apart from the bench process, which also hosts the sandbox: a worker and the AWS it
reads should not share one interpreter (and its GIL), as they never do in production.
"""

from __future__ import annotations

import cProfile
import gc
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

MB = 1024 * 1024


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    command, args = argv[0], argv[1:]
    handlers: dict[str, Callable[..., dict[str, Any]]] = {
        "sync": sync,
        "rss": rss,
        "fetch": fetch,
        "fetch-plain": fetch_plain,
        "classify": classify,
    }
    if command not in handlers:
        print(f"unknown worker command {command!r}", file=sys.stderr)
        return 2
    result = handlers[command](*args)
    print(json.dumps(result, default=str))
    return 0


# --- ingest ------------------------------------------------------------------------------------


def _django() -> None:
    import django

    django.setup()
    _unthrottle()
    # The garbage collector as a Celery worker sets it (dashboard/celery.py): the floors and the
    # measured steps run in this one process, so both have it.
    from dashboard.worker_gc import tune_worker_gc

    tune_worker_gc()


def _unthrottle() -> None:
    """Keep the shared rate limiter in the path (its Redis round trip is real work per call)
    but with a bucket that never runs dry: the bench measures our code, not AWS's quotas,
    whose ceiling docs/performance.md derives separately."""
    from connections import ratelimit

    ratelimit.quota_for = lambda operation, region: (1e9, 1e9)


def sync(account_name: str) -> dict[str, Any]:
    _django()
    from connections.models import AwsAccount
    from executions.sync import sync_account_by_id

    account = AwsAccount.objects.get(name=account_name)
    _warm_clients(account)
    cpu, start = time.process_time(), time.perf_counter()
    with _profiled(f"sync-{account_name}"):
        summary = sync_account_by_id(account.pk, trigger="bench")
    seconds = time.perf_counter() - start
    # CPU of this process, its prefetch threads included, but not PostgreSQL's or the
    # sandbox's: what other agents' load on the machine does not stretch.
    return {"seconds": seconds, "cpu_seconds": time.process_time() - cpu, "summary": summary}


def _warm_clients(account: Any) -> None:
    """Build the account's botocore clients before the clock starts, as the floor loads its
    client first: a worker process keeps them for CLIENT_TTL_SECONDS across syncs, so loading
    the service models (about 0.4 s of CPU for three services) is not a per-sync cost."""
    from connections.aws.client import cached_client

    for region in account.regions:
        for service in ("stepfunctions", "events", "logs"):
            cached_client(account, region, service)


@contextmanager
def _profiled(name: str) -> Iterator[None]:
    """With BENCH_PROFILE_DIR set, cProfile the block into DIR/NAME-PID.prof (read it with
    `python -m pstats`); the numbers of a profiled run are not comparable with the others."""
    directory = os.environ.get("BENCH_PROFILE_DIR")
    if not directory:
        yield
        return
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        yield
    finally:
        profiler.disable()
        Path(directory).mkdir(parents=True, exist_ok=True)
        profiler.dump_stats(Path(directory) / f"{name}-{os.getpid()}.prof")


def rss(account_name: str) -> dict[str, Any]:
    """Peak resident memory added by one `sync_account` run, above the warmed-up process."""
    _django()
    from django.core.management import call_command
    from django.db import connection

    import executions.sync  # noqa: F401  (the import cost is the process's, not the sync's)

    connection.ensure_connection()
    reset = _reset_peak()
    before = _status_kb("VmHWM" if reset else "VmRSS")
    start = time.perf_counter()
    with _profiled(f"rss-{account_name}"):
        call_command("sync_account", account_name, stdout=_Sink(), stderr=_Sink())
    seconds = time.perf_counter() - start
    peak = _status_kb("VmHWM")
    return {
        "seconds": seconds,
        "baseline_mb": before / 1024,
        "peak_mb": peak / 1024,
        "growth_mb": (peak - before) / 1024,
        "peak_reset": reset,
    }


class _Sink:
    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass


def _reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux ≥ 4.0), so the peak measured is the sync's."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


# --- the floor ---------------------------------------------------------------------------------


def fetch(account_name: str, region: str, arns_file: str) -> dict[str, Any]:
    """The floor: every page of every history through the AWS boundary the sync uses —
    `AwsApi.history_pages` of the registered account, so the same botocore client settings
    (connections/aws/client.py `config()`), the same response decoding, the shared rate
    limiter's Redis round trip per call and the call counting — one history after the other,
    nothing else done with the events."""
    _django()
    from connections.aws import AwsApi
    from connections.models import AwsAccount

    account = AwsAccount.objects.get(name=account_name)
    arns = json.loads(Path(arns_file).read_text())
    api = AwsApi(account, region)
    next(iter(api.history_pages(arns[0])))  # load the service model and the client first
    events = 0
    cpu, start = time.process_time(), time.perf_counter()
    for arn in arns:
        for page in api.history_pages(arn):
            events += len(page.events)
    return {
        "seconds": time.perf_counter() - start,
        "cpu_seconds": time.process_time() - cpu,
        "calls": api.calls["GetExecutionHistory"] - 1,
        "events": events,
    }


def fetch_plain(endpoint_url: str, region: str, arns_file: str) -> dict[str, Any]:
    """Plain boto3 with its default settings, GetExecutionHistory of every page, no rate
    limiter: the old floor, now the warm-up run (reported for reference, not a ratio)."""
    import boto3

    arns = json.loads(Path(arns_file).read_text())
    client = boto3.client(
        "stepfunctions",
        endpoint_url=endpoint_url,
        region_name=region,
        aws_access_key_id="AKIAIOSFODNN7EXAMPLE",
        aws_secret_access_key="bench-secret-access-key-0000000000",
    )
    client.get_execution_history(executionArn=arns[0], maxResults=1)  # load the model first
    calls = events = 0
    cpu, start = time.process_time(), time.perf_counter()
    for arn in arns:
        params: dict[str, Any] = {"executionArn": arn, "maxResults": 1000}
        for _ in range(1000):
            page = client.get_execution_history(**params)
            calls += 1
            events += len(page["events"])
            if not page.get("nextToken"):
                break
            params["nextToken"] = page["nextToken"]
    return {
        "seconds": time.perf_counter() - start,
        "cpu_seconds": time.process_time() - cpu,
        "calls": calls,
        "events": events,
    }


# --- parse + classify --------------------------------------------------------------------------


def classify(corpus_file: str, rounds: str) -> dict[str, Any]:
    """Best of `rounds`, in wall and in CPU time: json.loads of every page alone, with the
    nested JSON strings, json.loads + the parser, and the whole parse + classify."""
    _django()
    from executions.history import http_states_from_definition

    data = json.loads(Path(corpus_file).read_text(encoding="utf-8"))
    corpus = [
        (http_states_from_definition(h["definition"] or None), [p.encode() for p in h["pages"]])
        for h in data["histories"]
    ]
    events = sum(int(h["events"]) for h in data["histories"])
    attempts = _parse_and_classify(corpus)  # warm-up: imports, regex and lru caches
    steps: dict[str, Callable[[], object]] = {
        "json": lambda: _json_only(corpus),
        "nested_json": lambda: _nested_json(corpus),
        "parse": lambda: _parse_and_classify(corpus, classify_attempts=False),
        "parse_classify": lambda: _parse_and_classify(corpus),
    }
    wall = dict.fromkeys(steps, float("inf"))
    cpu = dict.fromkeys(steps, float("inf"))
    for _ in range(max(1, int(rounds))):
        for name, step in steps.items():  # interleaved: each round times every step once
            gc.collect()  # no step pays for the garbage of the one before it
            cpu_start, start = time.process_time(), time.perf_counter()
            step()
            wall[name] = min(wall[name], time.perf_counter() - start)
            cpu[name] = min(cpu[name], time.process_time() - cpu_start)
    with _profiled("classify"):  # after the timed rounds: profiling does not stretch them
        _parse_and_classify(corpus)
    return {
        "histories": len(corpus),
        "pages": sum(len(p) for _, p in corpus),
        "bytes": sum(len(raw) for _, pages in corpus for raw in pages),
        "events": events,
        "attempts": attempts,
        **{f"{name}_seconds": seconds for name, seconds in wall.items()},
        **{f"{name}_cpu_seconds": seconds for name, seconds in cpu.items()},
    }


# Task events whose details carry a JSON document inside a string, and that string's key.
_NESTED = {
    "TaskScheduled": ("taskScheduledEventDetails", "parameters"),
    "TaskSucceeded": ("taskSucceededEventDetails", "output"),
}


def _json_only(corpus: list[tuple[Any, list[bytes]]]) -> None:
    """The floor: json.loads of each page, nothing kept."""
    for _states, pages in corpus:
        for raw in pages:
            json.loads(raw)


def _nested_json(corpus: list[tuple[Any, list[bytes]]]) -> None:
    """json.loads of each page and of the JSON strings inside HTTP task events: the least any
    parser must do to read a request and its response."""
    for _states, pages in corpus:
        for raw in pages:
            for event in json.loads(raw)["events"]:
                nested = _NESTED.get(event.get("type", ""))
                if nested:
                    text = event.get(nested[0], {}).get(nested[1])
                    if isinstance(text, str):
                        json.loads(text)


def _parse_and_classify(
    corpus: list[tuple[Any, list[bytes]]], classify_attempts: bool = True
) -> int:
    """What ingestion does to each page between the network and the database writes
    (without `classify_attempts`: json.loads and the parser only, to split the cost): parse,
    then classify every attempt by the one recipe (`classify_in_context`), with an in-memory
    context of every attempt read, as `classify_history` does."""
    from connections.aws.client import decode_json_body
    from executions.classify import InMemoryContext, classify_in_context
    from executions.history import OUTCOME_IN_PROGRESS, HistoryParser

    read: list[tuple[Any, list[Any]]] = []
    count = 0
    for states, pages in corpus:
        parser = HistoryParser(states)
        # Each page decoded as the AWS boundary decodes a GetExecutionHistory answer.
        attempts = [a for raw in pages for a in parser.feed(_page(decode_json_body, raw))]
        attempts.extend(parser.finish())
        closed = [a for a in attempts if a.outcome != OUTCOME_IN_PROGRESS]
        count += len(closed)
        if classify_attempts:  # kept for the second pass: context is every attempt read
            read.append((states, closed))
    if classify_attempts:
        context = InMemoryContext(a for _, attempts in read for a in attempts)
        for states, attempts in read:
            for attempt in attempts:
                classify_in_context(attempt, context, states.get(attempt.state_name))
    return count


def _page(decode: Callable[[bytes], dict[str, Any] | None], raw: bytes) -> Any:
    page = decode(raw)
    return (page if page is not None else json.loads(raw))["events"]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
