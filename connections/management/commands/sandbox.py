"""`manage.py sandbox serve|run`: the local AWS sandbox (see sandbox/ and docs/sandbox.md)."""

from __future__ import annotations

import signal
import threading
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Serve the local AWS sandbox (moto + HTTP Tasks + partner API) or run a workload on it."

    def add_arguments(self, parser: ArgumentParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        serve = actions.add_parser("serve", help="serve the AWS endpoint and the partner API")
        serve.add_argument("--host", default="127.0.0.1")
        serve.add_argument("--port", type=int, default=4566)
        serve.add_argument("--partner-port", type=int, default=0, help="0 picks a free port")
        serve.add_argument(
            "--http-timeout",
            type=float,
            default=60.0,
            help="HTTP Task time cap in seconds (AWS: 60)",
        )
        serve.add_argument(
            "--quota-mode",
            action="store_true",
            help="enforce AWS's API quotas (token buckets per account, region and API)",
        )
        serve.add_argument(
            "--time-scale",
            type=float,
            default=1.0,
            help="in quota mode, refill the buckets this many times faster than AWS (e.g. 10)",
        )
        run = actions.add_parser("run", help="create the demo account and run executions")
        run.add_argument("--endpoint-url", required=True)
        run.add_argument("--region", default="us-east-1")
        run.add_argument("--executions", type=int, default=100)
        run.add_argument("--seed", type=int, default=0)
        run.add_argument("--partner-url", default=None, help="default: asked from the sandbox")
        run.add_argument("--concurrency", type=int, default=48)
        day = actions.add_parser(
            "day", help="create the demo account and run the demo's day (see sandbox.day)"
        )
        day.add_argument("--endpoint-url", required=True)
        day.add_argument("--region", default="us-east-1")
        day.add_argument("--per-hour", type=int, default=8, help="everyday executions an hour")
        day.add_argument("--concurrency", type=int, default=48)

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "serve":
            self._serve(options)
        elif options["action"] == "day":
            self._day(options)
        else:
            self._run(options)

    def _serve(self, options: dict[str, Any]) -> None:
        from sandbox.server import start_sandbox

        try:
            sandbox = start_sandbox(
                host=options["host"],
                port=options["port"],
                partner_port=options["partner_port"],
                http_timeout_seconds=options["http_timeout"],
                quota_mode=options["quota_mode"],
                time_scale=options["time_scale"],
            )
        except (OSError, ValueError) as exc:
            raise CommandError(f"cannot start the sandbox: {exc}") from exc
        self.stdout.write(f"AWS endpoint: {sandbox.endpoint_url}")
        self.stdout.write(f"Partner API:  {sandbox.partner_url}")
        self.stdout.write(
            "Region us-east-1, account 123456789012, any credentials (testing/testing)"
        )
        if options["quota_mode"]:
            self.stdout.write(
                f"Quota mode: AWS's API quotas, refilled x{options['time_scale']:g} "
                "(counts: GET /_sandbox/quota)"
            )
        self.stdout.flush()
        stopping = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stopping.set())
        try:
            while not stopping.wait(1.0):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            sandbox.stop()

    def _run(self, options: dict[str, Any]) -> None:
        import requests

        from sandbox.scenarios import run

        try:
            summary = run(
                endpoint_url=options["endpoint_url"],
                region=options["region"],
                executions=options["executions"],
                seed=options["seed"],
                partner_url=options["partner_url"],
                concurrency=options["concurrency"],
                progress=lambda line: self.stderr.write(line),
            )
        except requests.RequestException as exc:
            raise CommandError(f"no sandbox at {options['endpoint_url']}: {exc}") from exc
        self.stdout.write(summary.table())

    def _day(self, options: dict[str, Any]) -> None:
        import requests

        from sandbox import day

        if not 1 <= options["per_hour"] <= 100:
            raise CommandError("--per-hour must be between 1 and 100")
        try:
            summary = day.run(
                endpoint_url=options["endpoint_url"],
                region=options["region"],
                per_hour=options["per_hour"],
                concurrency=options["concurrency"],
            )
        except requests.RequestException as exc:
            raise CommandError(f"no sandbox at {options['endpoint_url']}: {exc}") from exc
        if not summary.executions:
            self.stdout.write("the day is already on this sandbox: nothing started")
        else:
            self.stdout.write(summary.table())
