"""Part 4, storm (issue 18): failed executions arriving over minutes, quota mode on.

The sandbox enforces AWS's token buckets with their refill sped up by `storm_time_scale`, and the
worker's Redis limiter is told the same scale (AWS_QUOTA_TIME_SCALE), so a 10-minute storm runs
in 10 / scale minutes while every call stays within what AWS would allow. One failed execution
of each of three state machines (an HTTP task answered 500, 502 or 503 by the partner API) is
run for real; its history is the template every stored copy repeats, shifted in time. A feeder
thread stores the copies in the sandbox at their start times, spread evenly over the storm, while
a separate process (`python -m bench.storm loop …`, apart from the sandbox's interpreter as a
worker always is) syncs the account every SYNC_INTERVAL_SECONDS, scaled. This process watches
the real pages through Django's test client and the database.

Every `*_s` figure is on the storm's clock: real seconds × time scale, the clock the 10 minutes
and AWS's refill are given in (the worker's own CPU time is stretched by the same factor, so the
scaled run is, if anything, harder than the real one). docs/performance.md explains each figure.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import requests

from bench import storm_logs
from bench.common import REPO, Config, last_json_line, rounded, say

STORM_REGION = storm_logs.REGION  # a high-quota region no other part creates state machines in
STORM_ACCOUNT = "storm"
STATUSES = (500, 502, 503)  # one state machine each: three failure groups
SYNC_INTERVAL_S = 60  # the production default, on the storm clock
# HISTORIES_PER_SYNC, per state machine: what our GetExecutionHistory share refills in one
# interval, spread over the three machines (60 s × 10/s ÷ 3 = 200). A smaller cap would bound
# the reading below the quota (a first try with 100 read 5 histories/s where 10 are allowed);
# no cap would let one sync read every history it listed before listing again.
HISTORIES_PER_SYNC = 200
POLL_S = 0.5  # real seconds between two looks at the pages
# What the logs-on run reports beside the logs-off figures.
LOGS_ON_FIGURES = (
    "first_group_visible_s",
    "all_counted_s",
    "all_classified_s",
    "classified_ratio_vs_floor",
    "history_calls_per_failed_execution",
    "throttled_calls",
    "calls_by_operation",
    "syncs",
    "sync_errors",
)


@dataclass
class Clock:
    """Real time since the first failure's start, turned into storm seconds."""

    scale: float
    start: float = 0.0

    def now(self) -> float:
        return (time.monotonic() - self.start) * self.scale


@dataclass
class Seen:
    first_group_visible_s: float | None = None
    all_counted_s: float | None = None
    all_classified_s: float | None = None
    polls: int = 0
    page_errors: list[str] = field(default_factory=list)


def run_storm(config: Config) -> dict[str, Any]:
    """The storm twice: its machines not logging (every failure read from its history), then
    logging ALL with execution data (read from the log first); the figures are the first run's,
    with the second's under `logs_on` and its history calls per failure beside the first's."""
    figures = _run_once(config, logs=False)
    on = _run_once(config, logs=True)
    figures["history_calls_per_failed_execution_logs_on"] = on["history_calls_per_failed_execution"]
    figures["logs_on"] = {k: on.get(k) for k in LOGS_ON_FIGURES}
    figures["_details"]["syncs_logs_on"] = on["_details"]["syncs"]
    if on.get("error"):
        figures["error"] = "; ".join(
            filter(None, [figures.get("error"), f"logs on: {on['error']}"])
        )
    return figures


def _run_once(config: Config, *, logs: bool) -> dict[str, Any]:
    from bench.world import sfn_client
    from sandbox.server import start_sandbox

    count = config.storm_executions
    scale = config.storm_time_scale
    span_s = config.storm_minutes * 60.0
    sandbox = start_sandbox(http_timeout_seconds=2.0, quota_mode=True, time_scale=scale)
    try:
        sfn = sfn_client(sandbox.endpoint_url, STORM_REGION)
        templates = _templates(sfn, sandbox.partner_url, logs)
        _register(sandbox.endpoint_url)
        requests.delete(f"{sandbox.endpoint_url}/_sandbox/quota", timeout=10).raise_for_status()
        arrivals = [span_s * i / max(1, count - 1) for i in range(count)] if count > 1 else [0.0]
        clock = Clock(scale)
        seen, loop = _watch(sandbox.endpoint_url, templates, arrivals, clock, config)
        quota = requests.get(f"{sandbox.endpoint_url}/_sandbox/quota", timeout=10).json()
    finally:
        sandbox.stop()
        _forget(STORM_REGION)
    return _figures(count, arrivals, scale, seen, loop, quota)


# --- the state machines and their template histories -------------------------------------------


@dataclass(frozen=True)
class Template:
    machine: Any  # moto's StateMachine
    events: list[dict[str, Any]]
    duration: timedelta
    error: str | None
    cause: str | None
    # Logs on: where the machine logs, and the template's log records (the sandbox wrote them
    # as the execution ran), each `event_timestamp` made relative to its start.
    target: Any = None  # sandbox.logs.LoggingTarget
    records: list[dict[str, Any]] = field(default_factory=list)


def _templates(sfn: Any, partner_url: str, logs: bool) -> list[Template]:
    """One real failed execution per state machine; the backend is emptied of them after."""
    from bench.world import _backend, _parse_iso

    arns = []
    for status in STATUSES:
        definition = {
            "StartAt": "Call",
            "States": {
                "Call": {
                    "Type": "Task",
                    "Resource": "arn:aws:states:::http:invoke",
                    "Parameters": {
                        "ApiEndpoint": f"{partner_url}/status/{status}",
                        "Method": "GET",
                    },
                    "End": True,
                }
            },
        }
        extra: dict[str, Any] = {}
        if logs:
            extra["loggingConfiguration"] = storm_logs.logging_configuration(sfn, status)
        machine_arn = sfn.create_state_machine(
            name=f"storm-{status}",
            definition=json.dumps(definition),
            roleArn="arn:aws:iam::123456789012:role/stepscope-sandbox-states",
            **extra,
        )["stateMachineArn"]
        arns.append(
            sfn.start_execution(stateMachineArn=machine_arn, name="template")["executionArn"]
        )
    for arn in arns:
        deadline = time.monotonic() + 60
        while sfn.describe_execution(executionArn=arn)["status"] == "RUNNING":
            if time.monotonic() > deadline:
                raise RuntimeError(f"{arn} still running after 60 s")
            time.sleep(0.05)
    templates = []
    for machine in _backend(STORM_REGION).state_machines:
        execution = machine.executions[0]
        if str(execution.status) != "FAILED":
            raise RuntimeError(f"{machine.name}: the template ended {execution.status}")
        events = list(execution.to_history_output()["events"])
        start = _parse_iso(events[0]["timestamp"])
        duration = _parse_iso(events[-1]["timestamp"]) - start
        for event in events:  # relative to the start, so each copy adds its own
            event["timestamp"] = _parse_iso(event["timestamp"]) - start
        template = Template(machine, events, duration, execution.error, execution.cause)
        if logs:
            template = storm_logs.with_records(sfn, template, execution.exec_arn)
        templates.append(template)
        machine.executions = []
    return templates


def _register(endpoint_url: str) -> None:
    from django.contrib.auth import get_user_model

    from bench.ingest import reset_account
    from bench.world import REGION

    # The logs-on run follows the logs-off one on the same names: nothing of it stays stored.
    reset_account(endpoint_url, STORM_ACCOUNT, STORM_REGION)
    user = get_user_model()
    if not user.objects.filter(username="storm-bench").exists():
        user.objects.create_superuser("storm-bench", "storm@example.invalid", None)
    assert STORM_REGION != REGION  # the other parts' machines must not be listed with these


def _store_copy(template: Template, index: int) -> None:
    from moto.core.utils import iso_8601_datetime_with_milliseconds

    from bench.world import _store

    began = datetime.now(UTC)
    events = [
        {**e, "timestamp": iso_8601_datetime_with_milliseconds(began + e["timestamp"])}
        for e in template.events
    ]
    arn = _store(
        template.machine, _name(index), began, began + template.duration, "FAILED",
        template.error, template.cause, events,
    )  # fmt: skip
    if template.target is not None:
        storm_logs.log_copy(template, arn, began)


def _forget(region: str) -> None:
    from moto.logs.models import logs_backends

    from bench.world import _backend

    backend = _backend(region)
    for machine in list(backend.state_machines):
        machine.executions = []
    backend.state_machines.clear()
    groups = logs_backends["123456789012"][region].groups
    for status in STATUSES:  # the logs-on run's; the next run makes them again
        groups.pop(storm_logs.log_group(status), None)


# --- the run: feeder, sync loop, watcher -------------------------------------------------------


def _watch(
    endpoint_url: str,
    templates: list[Template],
    arrivals: list[float],
    clock: Clock,
    config: Config,
) -> tuple[Seen, dict[str, Any]]:
    """Feed the storm, sync it in a worker process, and note when each figure is reached."""
    with tempfile.TemporaryDirectory(prefix="stepscope-storm-") as tmp:
        stop_file = Path(tmp) / "stop"
        # Files, not pipes: a worker logging more than a pipe holds would block on it.
        out_file, err_file = Path(tmp) / "out", Path(tmp) / "err"
        with out_file.open("w") as out, err_file.open("w") as err:
            worker = _start_loop(stop_file, clock.scale, out, err)
        seen = Seen()
        fed: list[BaseException] = []
        try:
            _wait_ready(worker, Path(f"{stop_file}.ready"))
            clock.start = time.monotonic()
            feeder = threading.Thread(
                target=_feed,
                args=(templates, arrivals, clock, fed),
                name="storm-feeder",
                daemon=True,
            )
            feeder.start()
            # A generous guard: three times the quota floor, plus a minute (storm clock).
            limit_s = 3 * quota_floor_s(arrivals, *history_bucket()) + 60
            _poll(seen, len(arrivals), clock, limit_s, feeder, templates[0].machine.name)
            feeder.join(timeout=5)
        finally:
            stop_file.touch()
            try:
                worker.wait(timeout=120 + config.storm_minutes * 60 / clock.scale)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
        if fed:
            raise RuntimeError(f"the storm feeder failed: {fed[0]!r}")
        if worker.returncode != 0:
            tail = err_file.read_text().strip().splitlines()[-15:]
            raise RuntimeError(f"storm sync loop exited {worker.returncode}: " + "\n".join(tail))
        return seen, last_json_line(out_file.read_text())


def _start_loop(stop_file: Path, scale: float, out: IO[str], err: IO[str]) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "AWS_QUOTA_TIME_SCALE": f"{scale:g}",
        "HISTORIES_PER_SYNC": str(HISTORIES_PER_SYNC),
    }
    interval = SYNC_INTERVAL_S / scale
    return subprocess.Popen(
        [sys.executable, "-m", "bench.storm", "loop", STORM_ACCOUNT, str(stop_file), str(interval)],
        cwd=REPO,
        env=env,
        stdout=out,
        stderr=err,
        text=True,
    )


def _wait_ready(worker: subprocess.Popen[str], ready: Path) -> None:
    deadline = time.monotonic() + 120
    while not ready.exists():
        if worker.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("the storm sync loop did not start")
        time.sleep(0.05)


def _feed(
    templates: list[Template], arrivals: list[float], clock: Clock, failed: list[BaseException]
) -> None:
    try:
        for index, due in enumerate(arrivals):
            wait = due / clock.scale - (time.monotonic() - clock.start)
            if wait > 0:
                time.sleep(wait)
            _store_copy(templates[index % len(templates)], index)
    except BaseException as exc:  # the watcher stops at its guard; the run then says why
        failed.append(exc)


def _poll(
    seen: Seen,
    expected: int,
    clock: Clock,
    limit_s: float,
    feeder: threading.Thread,
    first_machine: str,
) -> None:
    from django.contrib.auth import get_user_model
    from django.db import close_old_connections
    from django.test import Client

    client = Client(raise_request_exception=False, HTTP_HOST="127.0.0.1")
    client.force_login(get_user_model().objects.get(username="storm-bench"))
    while clock.now() < limit_s:
        time.sleep(POLL_S)
        close_old_connections()
        seen.polls += 1
        if seen.first_group_visible_s is None and _group_on_page(client, first_machine, seen):
            seen.first_group_visible_s = clock.now()
        fed = not feeder.is_alive()
        if seen.all_counted_s is None and fed and _counted_on_pages(client, seen) >= expected:
            seen.all_counted_s = clock.now()
        if seen.all_classified_s is None and fed and _all_classified(expected):
            seen.all_classified_s = clock.now()
        if None not in (seen.first_group_visible_s, seen.all_counted_s, seen.all_classified_s):
            return
    say(f"storm: stopped watching at {limit_s:.0f} storm-seconds with figures still missing")


def _name(index: int) -> str:
    return f"storm-{index:06d}"


def _group_on_page(client: Any, machine: str, seen: Seen) -> bool:
    """The first failure's failure group on the groups page. Every failure of its state machine
    repeats its history, so the group exists once any one of them is read and classified (the
    sync reads newest first: the first failure itself is read last)."""
    from django.urls import reverse

    from executions.models import HttpAttempt

    group = (
        HttpAttempt.objects.filter(
            execution__state_machine__name=machine,
            execution__account__name=STORM_ACCOUNT,
            failure_group__isnull=False,
        )
        .values_list("failure_group_id", flat=True)
        .first()
    )
    if group is None:
        return False
    page = _get(client, reverse("executions:groups"), {}, seen)
    return f'data-group="{group}"' in page


_TOTAL = re.compile(r"data-total><strong>(about )?([\d,]+)</strong>")


def _counted_on_pages(client: Any, seen: Seen) -> int:
    """Failed executions the failing-executions page counts, one state machine at a time (each
    stays under the page's exact-count limit at the default size; an estimate counts as 0)."""
    from django.urls import reverse

    from executions.models import StateMachine

    total = 0
    for pk in StateMachine.objects.filter(account__name=STORM_ACCOUNT).values_list("pk", flat=True):
        query = {"view": "executions", "state_machine": str(pk)}
        match = _TOTAL.search(_get(client, reverse("executions:list"), query, seen))
        if match and not match.group(1):
            total += int(match.group(2).replace(",", ""))
    return total


def _all_classified(expected: int) -> bool:
    from executions.models import Execution

    stored = Execution.objects.filter(account__name=STORM_ACCOUNT)
    return stored.count() >= expected and not stored.awaiting_history().exists()


def _get(client: Any, path: str, query: dict[str, str], seen: Seen) -> str:
    response = client.get(path, query)
    if response.status_code != 200:
        seen.page_errors.append(f"{path} {query}: HTTP {response.status_code}")
        return ""
    return str(response.content.decode())


# --- the figures -------------------------------------------------------------------------------


def history_bucket(share: float | None = None) -> tuple[float, float]:
    """(size, refill per second) of GetExecutionHistory in STORM_REGION at `share` (None: the
    configured AWS_QUOTA_SHARE, what the worker's limiter takes), unscaled."""
    from connections.ratelimit import quota_for, quota_settings

    if share is None:
        share = quota_settings().share_for("GetExecutionHistory")
    size, rate = quota_for("GetExecutionHistory", STORM_REGION)
    return max(1.0, size * share), rate * share


def quota_floor_s(arrivals: list[float], size: float, rate: float, calls_each: int = 1) -> float:
    """The earliest storm second the last history can be read: each execution needs
    `calls_each` GetExecutionHistory calls, none before it started, from a bucket of `size`
    refilled at `rate` (full at the first failure). Served in arrival order, which no order
    beats: every call is one token, so the last one is the same whatever the order."""
    tokens, now = size, 0.0
    for due in arrivals:
        for _ in range(calls_each):
            start = max(now, due)
            tokens = min(size, tokens + (start - now) * rate)
            now = start
            if tokens < 1:
                now += (1 - tokens) / rate
                tokens = 1.0
            tokens -= 1
    return now


def _figures(
    count: int,
    arrivals: list[float],
    scale: float,
    seen: Seen,
    loop: dict[str, Any],
    quota: dict[str, Any],
) -> dict[str, Any]:
    rows = [r for r in quota["counts"] if r["region"] == STORM_REGION]
    calls = {r["operation"]: r["answered"] for r in rows}
    throttled = {r["operation"]: r["throttled"] for r in rows if r["throttled"]}
    history_calls = calls.get("GetExecutionHistory", 0)
    floor = quota_floor_s(arrivals, *history_bucket())
    classified = seen.all_classified_s
    result: dict[str, Any] = {
        "executions": count,
        "state_machines": len(STATUSES),
        "storm_minutes": round(arrivals[-1] / 60, 2),
        "time_scale": scale,
        "first_group_visible_s": _maybe(seen.first_group_visible_s),
        # From the last failure's start: the storm's 10 minutes are not the sync's to shorten.
        "all_counted_s": _maybe(
            None if seen.all_counted_s is None else seen.all_counted_s - arrivals[-1]
        ),
        "all_classified_s": _maybe(classified),
        "quota_floor_s": rounded(floor),
        "quota_floor_bucket": list(history_bucket()),  # (size, refill/s) of our share
        "quota_floor_full_quota_s": rounded(quota_floor_s(arrivals, *history_bucket(share=1.0))),
        "classified_ratio_vs_floor": None if classified is None else rounded(classified / floor),
        "history_calls_per_failed_execution": rounded(history_calls / count) if count else None,
        "history_calls_per_failed_execution_logs_on": None,  # run_storm's second run sets it
        "throttled_calls": sum(throttled.values()),
        "throttled_by_operation": throttled,
        "calls_by_operation": calls,
        "syncs": loop.get("syncs"),
        "sync_cpu_s": loop.get("cpu_seconds"),
        "sync_errors": loop.get("errors"),
        "page_polls": seen.polls,
        # Each sync on the storm clock: start, duration, histories read, rows added.
        "_details": {
            "syncs": [
                {**row, "at": rounded(row["at"] * scale), "s": rounded(row["s"] * scale)}
                for row in loop.get("log", [])
            ]
        },
    }
    if seen.page_errors:
        result["error"] = "; ".join(seen.page_errors[:3])
    return result


def _maybe(value: float | None) -> float | None:
    return None if value is None else rounded(value)


# --- the worker process ------------------------------------------------------------------------


def loop(account_name: str, stop_file: str, interval: str) -> dict[str, Any]:
    """Sync the account every `interval` real seconds (as beat would) until `stop_file` exists."""
    import django

    django.setup()
    from bench.worker import _warm_clients
    from connections.models import AwsAccount
    from executions.sync import sync_account_by_id

    account = AwsAccount.objects.get(name=account_name)
    _warm_clients(account)
    every, stop_path, parent = float(interval), Path(stop_file), os.getppid()

    def stop() -> bool:
        # The bench gone (killed before it could write the stop file) ends the loop too.
        return stop_path.exists() or os.getppid() != parent

    # Ready: the storm's clock starts now, not while this process imported Django.
    Path(f"{stop_file}.ready").touch()
    errors: list[str] = []
    log: list[dict[str, Any]] = []  # one row a sync: when (real s after ready), how long, reads
    cpu, ready = time.process_time(), time.monotonic()
    while not stop():
        began = time.monotonic()
        summary: dict[str, Any] = {}
        try:
            summary = sync_account_by_id(account.pk, trigger="bench")
        except Exception as exc:  # the next sync runs all the same, as under beat
            errors.append(f"{type(exc).__name__}: {exc}"[:300])
        calls = summary.get("api_calls", {})
        log.append(
            {
                "at": round(began - ready, 2),
                "s": round(time.monotonic() - began, 2),
                "histories": calls.get("GetExecutionHistory", 0),
                "added": summary.get("executions_added", 0),
            }
        )
        _sleep_until(began + every, stop)
    return {
        "syncs": len(log),
        "errors": errors[:5],
        "cpu_seconds": round(time.process_time() - cpu, 1),
        "log": log,
    }


def _sleep_until(moment: float, stop: Callable[[], bool]) -> None:
    while time.monotonic() < moment and not stop():
        time.sleep(min(0.1, max(0.0, moment - time.monotonic())))


def main(argv: list[str]) -> int:
    if len(argv) != 4 or argv[0] != "loop":
        print("usage: python -m bench.storm loop ACCOUNT STOP_FILE INTERVAL_S", file=sys.stderr)
        return 2
    print(json.dumps(loop(*argv[1:])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
