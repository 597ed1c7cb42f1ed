"""Prometheus metrics at `/metrics`, read from the database and the broker at scrape time.

Every series is derived at scrape time by one collector (prometheus-client's custom collector
API), not counted in the process: gunicorn runs several workers and Celery more, and whichever
worker answers a scrape gives the same numbers, with no multiprocess directory to share and no
counter lost when a worker restarts. Our own registry holds only this collector, so no
per-worker process series (of whichever worker happened to answer) are mixed in.

Counts of things that happen (failing attempts, AWS calls, throttles) are gauges over the last
METRICS_WINDOW_SECONDS (default one hour): each is one range scan of an index bounded by the
window, so a scrape costs the same at 1M attempts as at 1k (docs/performance.md, "/metrics").
Per-connection and per-endpoint series are bounded: the METRICS_TOP_N busiest across all
accounts keep their own labels, the rest are summed per account under "other", so the sums per
account stay exact and the series count is at most N plus one per account.

The alert-delivery and outbox families come from dashboard/alert_metrics.py (fixed labels only).

Access: a bearer token (METRICS_TOKEN / METRICS_TOKEN_FILE), or anonymous only when
METRICS_ANONYMOUS is on; without either, /metrics answers 403 and says so.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import redis
from django.conf import settings
from django.db import DatabaseError
from django.db.models import Count, Max
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from connections.choices import SyncStatus
from connections.models import AwsAccount, Connection, Endpoint, SyncRun
from dashboard.alert_metrics import alert_families
from executions.choices import GroupStatus
from executions.models import FailureGroup, HttpAttempt, StateMachine

log = logging.getLogger("stepscope.metrics")

OTHER = "other"


def _options() -> dict[str, Any]:
    return dict(settings.STEPSCOPE)


def top_n(counts: Counter[tuple[str, ...]], n: int) -> Counter[tuple[str, ...]]:
    """The n largest (account, *labels) keys as they are; the rest summed per account under
    (account, "other", …). Ties break on the labels, so the set is stable between scrapes."""
    kept: Counter[tuple[str, ...]] = Counter()
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    for rank, (key, value) in enumerate(ranked):
        if rank < n:
            kept[key] += value
        else:
            kept[(key[0],) + (OTHER,) * (len(key) - 1)] += value
    return kept


def _ts(value: datetime | None) -> float | None:
    return value.timestamp() if value is not None else None


class StepscopeCollector(Collector):
    def collect(self) -> Iterator[Metric]:
        started = time.monotonic()
        options = _options()
        now = timezone.now()
        since = now - timedelta(seconds=int(options["METRICS_WINDOW_SECONDS"]))
        accounts = {a.pk: a for a in AwsAccount.objects.all()}
        names = {pk: a.name for pk, a in accounts.items()}
        yield from self.attempts(names, since, int(options["METRICS_TOP_N"]))
        yield from self.groups_and_connections(names)
        yield from self.sync(accounts, now)
        yield from self.aws_calls(names, since)
        yield from self.queues(list(options["METRICS_QUEUES"]))
        yield from alert_families(now, since)
        window = GaugeMetricFamily(
            "stepscope_metrics_window_seconds", "The window of the *_in_window gauges."
        )
        window.add_metric([], (now - since).total_seconds())
        yield window
        took = GaugeMetricFamily(
            "stepscope_metrics_scrape_duration_seconds", "Time this scrape spent reading."
        )
        took.add_metric([], time.monotonic() - started)
        yield took

    def attempts(self, names: dict[int, str], since: datetime, n: int) -> Iterator[Metric]:
        # One index-only range scan of att_fail_acct (failing attempts by account and time,
        # covering category, connection and endpoint) feeds all three families.
        rows = (
            HttpAttempt.objects.failing()
            .filter(account__in=list(names), occurred_at__gte=since)
            .values_list("account_id", "category", "connection_id", "endpoint_id")
            .annotate(n=Count("*"))
            .order_by()
        )
        by_category: Counter[tuple[str, str]] = Counter()
        by_connection: Counter[tuple[int, int | None]] = Counter()
        by_endpoint: Counter[tuple[int, int | None]] = Counter()
        for account_id, category, connection_id, endpoint_id, count in rows:
            by_category[(names[account_id], category or "unclassified")] += count
            by_connection[(account_id, connection_id)] += count
            by_endpoint[(account_id, endpoint_id)] += count
        family = GaugeMetricFamily(
            "stepscope_failing_attempts_in_window",
            "Failing HTTP-task attempts that occurred in the window, by account and category.",
            labels=["account", "category"],
        )
        for (account, category), count in sorted(by_category.items()):
            family.add_metric([account, category], count)
        yield family

        connections = {
            c.pk: (c.region, c.name)
            for c in Connection.objects.filter(pk__in={k[1] for k in by_connection if k[1]})
        }
        labelled: Counter[tuple[str, ...]] = Counter()
        for (account_id, connection_id), count in by_connection.items():
            region, name = connections.get(connection_id or 0, ("", "none"))
            labelled[(names[account_id], region, name)] += count
        family = GaugeMetricFamily(
            "stepscope_failing_attempts_by_connection_in_window",
            f"Failing attempts in the window by connection: the {n} busiest, the rest per"
            ' account as "other" ("none": no connection).',
            labels=["account", "region", "connection"],
        )
        for key, count in sorted(top_n(labelled, n).items()):
            family.add_metric(list(key), count)
        yield family

        endpoints = {
            e.pk: f"{e.method} {e.url_template}"[:200]
            for e in Endpoint.objects.filter(pk__in={k[1] for k in by_endpoint if k[1]})
        }
        labelled = Counter()
        for (account_id, endpoint_id), count in by_endpoint.items():
            labelled[(names[account_id], endpoints.get(endpoint_id or 0, "none"))] += count
        family = GaugeMetricFamily(
            "stepscope_failing_attempts_by_endpoint_in_window",
            f"Failing attempts in the window by endpoint (method and URL template): the {n}"
            ' busiest, the rest per account as "other".',
            labels=["account", "endpoint"],
        )
        for key, count in sorted(top_n(labelled, n).items()):
            family.add_metric(list(key), count)
        yield family

    def groups_and_connections(self, names: dict[int, str]) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "stepscope_open_failure_groups",
            "Failure groups open (new or regressed), by account and category.",
            labels=["account", "category"],
        )
        groups = (
            FailureGroup.objects.filter(status=GroupStatus.OPEN)
            .values_list("account_id", "category")
            .annotate(n=Count("*"))
            .order_by("account_id", "category")
        )
        for account_id, category, count in groups:
            family.add_metric([names[account_id], category], count)
        yield family
        family = GaugeMetricFamily(
            "stepscope_connections",
            "EventBridge connections by account, region and last seen state.",
            labels=["account", "region", "state"],
        )
        states = (
            Connection.objects.values_list("account_id", "region", "state")
            .annotate(n=Count("*"))
            .order_by("account_id", "region", "state")
        )
        for account_id, region, state, count in states:
            family.add_metric([names[account_id], region, state or "UNKNOWN"], count)
        yield family

    def sync(self, accounts: dict[int, AwsAccount], now: datetime) -> Iterator[Metric]:
        status = GaugeMetricFamily(
            "stepscope_account_sync_status",
            "1 for the account's current sync status.",
            labels=["account", "status"],
        )
        for account in accounts.values():
            for value in SyncStatus.values:
                status.add_metric([account.name, value], float(account.sync_status == value))
        yield status
        # The newest run that ended OK, per account: one short index scan each.
        last_ok = {
            pk: SyncRun.objects.filter(account=pk, status=SyncStatus.OK)
            .order_by("-started_at")
            .values_list("finished_at", flat=True)
            .first()
            for pk in accounts
        }
        # A region is fresh as of its newest state machine read to the end.
        machines: dict[tuple[int, str], datetime | None] = {
            (account_id, region): newest
            for account_id, region, newest in StateMachine.objects.values_list(
                "account_id", "region"
            )
            .annotate(newest=Max("last_synced_at"))
            .order_by()
        }
        success = GaugeMetricFamily(
            "stepscope_sync_last_success_timestamp_seconds",
            "When the region was last read successfully (its newest state machine read to the"
            " end; without state machines, the account's last OK run).",
            labels=["account", "region"],
        )
        lag = GaugeMetricFamily(
            "stepscope_sync_lag_seconds",
            "Seconds since the region was last read successfully.",
            labels=["account", "region"],
        )
        for pk, account in accounts.items():
            for region in account.regions:
                when = machines.get((pk, region)) or last_ok[pk]
                if when is None:
                    continue  # never read: the status family says so
                success.add_metric([account.name, region], when.timestamp())
                lag.add_metric([account.name, region], max(0.0, (now - when).total_seconds()))
        yield success
        yield lag

    def aws_calls(self, names: dict[int, str], since: datetime) -> Iterator[Metric]:
        calls: dict[tuple[str, str], int] = defaultdict(int)
        throttles: dict[tuple[str, str], int] = defaultdict(int)
        runs = SyncRun.objects.filter(account__in=list(names), started_at__gte=since)
        for account_id, run_calls, run_throttles in runs.values_list(
            "account_id", "api_calls", "throttles"
        ).order_by():
            for operation, count in (run_calls or {}).items():
                calls[(names[account_id], str(operation))] += int(count)
            for operation, count in (run_throttles or {}).items():
                throttles[(names[account_id], str(operation))] += int(count)
        for name, text, data in (
            ("stepscope_aws_api_calls_in_window", "AWS API calls made by syncs", calls),
            ("stepscope_aws_throttles_in_window", "Throttled AWS answers to syncs", throttles),
        ):
            family = GaugeMetricFamily(
                name,
                f"{text} started in the window, by account and operation.",
                labels=["account", "operation"],
            )
            for key, count in sorted(data.items()):
                family.add_metric(list(key), count)
            yield family

    def queues(self, queues: list[str]) -> Iterator[Metric]:
        up = GaugeMetricFamily("stepscope_broker_up", "1 when the broker answered this scrape.")
        depth = GaugeMetricFamily(
            "stepscope_celery_queue_length", "Tasks waiting in the queue.", labels=["queue"]
        )
        client = redis.Redis.from_url(
            settings.CELERY_BROKER_URL, socket_connect_timeout=2, socket_timeout=2
        )
        try:
            with client.pipeline(transaction=False) as pipe:
                for queue in queues:
                    pipe.llen(queue)
                lengths = pipe.execute()
        except redis.RedisError as exc:
            log.warning("metrics: the broker did not answer: %s", exc)
            up.add_metric([], 0)
        else:
            up.add_metric([], 1)
            for queue, length in zip(queues, lengths, strict=True):
                depth.add_metric([queue], int(length))
        finally:
            client.close()
        yield up
        yield depth


def _registry() -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StepscopeCollector())
    return registry


def allowed(request: HttpRequest) -> HttpResponse | None:
    """None when the request may read /metrics, else the answer that says why not."""
    options = _options()
    token = str(options["METRICS_TOKEN"])
    if not token:
        if options["METRICS_ANONYMOUS"]:
            return None
        return HttpResponse(
            "Set METRICS_TOKEN (or METRICS_TOKEN_FILE), or METRICS_ANONYMOUS=1, to enable"
            " /metrics.\n",
            status=403,
            content_type="text/plain",
        )
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode()):
        return None
    response = HttpResponse(
        "A valid bearer token is needed.\n", status=401, content_type="text/plain"
    )
    response["WWW-Authenticate"] = 'Bearer realm="metrics"'
    return response


def metrics_response(request: HttpRequest) -> HttpResponse:
    refused = allowed(request)
    if refused is not None:
        return refused
    try:
        body = generate_latest(_registry())
    except DatabaseError as exc:
        # The scrape fails visibly (`up` stays 1 but the target errors), never with a 500 page.
        log.warning("metrics: the database did not answer: %s", exc)
        return HttpResponse("The database did not answer.\n", status=503, content_type="text/plain")
    response = HttpResponse(body, content_type=CONTENT_TYPE_LATEST)
    response["Cache-Control"] = "no-store"
    # Answered before CommonMiddleware, which would set it: plain clients need no chunking.
    response["Content-Length"] = str(len(response.content))
    return response
