"""`manage.py add_alert_rule --name N --events … --webhook URL …`: create or update a rule.

Idempotent by name: running it again with the same options changes nothing. Bad input exits 2
with one line saying what is wrong."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandParser
from django.core.validators import EmailValidator, URLValidator

from alerts import apprise_channel
from alerts.choices import RULE_EVENT_CHOICES, Event
from alerts.forms import MAX_RATE_MINUTES
from alerts.models import AlertRule
from connections.models import AwsAccount, Connection, Endpoint

RULE_EVENTS = [value for value, _ in RULE_EVENT_CHOICES]


class Command(BaseCommand):
    help = "Create or update an alert rule by name."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", required=True)
        parser.add_argument(
            "--events", required=True, help="Comma-separated: " + ",".join(RULE_EVENTS)
        )
        parser.add_argument("--webhook", default="", help="Generic JSON webhook URL.")
        parser.add_argument("--signing-secret-file", default="", help="File with the secret.")
        parser.add_argument("--slack-webhook", default="", help="Slack incoming webhook URL.")
        parser.add_argument(
            "--apprise-file",
            default="",
            help="A file holding apprise URL(s), comma-separated (a secret: not on the command line).",
        )
        parser.add_argument("--email", action="append", default=[], help="Repeatable.")
        parser.add_argument("--account", action="append", default=[], help="Account name.")
        parser.add_argument(
            "--connection", action="append", default=[], help="Connection ARN; repeatable."
        )
        parser.add_argument(
            "--endpoint", action="append", default=[], help="Endpoint URL template; repeatable."
        )
        parser.add_argument("--rate", default="", help="N/M: N failures in M minutes.")
        parser.add_argument("--quiet-period", type=int, default=None, help="Seconds.")
        parser.add_argument("--every-attempt", action="store_true", help="Not final only.")

    def handle(self, *args: Any, **opts: Any) -> None:
        name = opts["name"].strip()
        if not name or len(name) > 100:
            self._fail("--name must be 1 to 100 characters")
        events = [e.strip() for e in opts["events"].split(",") if e.strip()]
        unknown = [e for e in events if e not in RULE_EVENTS]
        if not events or unknown:
            self._fail(
                f"unknown event {unknown[0] if unknown else '(none)'!r}; choose from "
                + ", ".join(RULE_EVENTS)
            )
        rate = self._rate(opts["rate"], Event.RATE in events)
        for flag in ("webhook", "slack_webhook"):
            if opts[flag]:
                try:
                    URLValidator(schemes=["http", "https"])(opts[flag])
                except ValidationError:
                    self._fail(f"--{flag.replace('_', '-')} is not an http(s) URL")
        for address in opts["email"]:
            try:
                EmailValidator()(address)
            except ValidationError:
                self._fail(f"--email {address!r} is not an e-mail address")
        apprise_urls = self._apprise(opts["apprise_file"])
        if not (opts["webhook"] or opts["slack_webhook"] or opts["email"] or apprise_urls):
            self._fail(
                "give at least one channel: --webhook, --slack-webhook, --email or --apprise-file"
            )
        secret = self._secret(opts["signing_secret_file"])
        if secret and not opts["webhook"]:
            self._fail("--signing-secret-file signs the --webhook, which is missing")
        accounts = list(AwsAccount.objects.filter(name__in=opts["account"]))
        missing = sorted(set(opts["account"]) - {a.name for a in accounts})
        if missing:
            self._fail(f"no account named {missing[0]!r}")
        connections, endpoints = self._resources(opts["connection"], opts["endpoint"], accounts)
        if opts["quiet_period"] is not None and opts["quiet_period"] < 0:
            self._fail("--quiet-period must be 0 or more seconds")
        rule, created = AlertRule.objects.get_or_create(name=name)
        rule.events = events
        rule.webhook_url = opts["webhook"]
        rule.signing_secret = secret
        rule.slack_webhook_url = opts["slack_webhook"]
        rule.apprise_url = apprise_urls
        rule.email_to = opts["email"]
        rule.final_attempts_only = not opts["every_attempt"]
        if opts["quiet_period"] is not None:
            rule.quiet_period_seconds = opts["quiet_period"]
        rule.rate_failures, rule.rate_minutes = rate
        rule.save()
        rule.accounts.set(accounts)
        rule.connections.set(connections)
        rule.endpoints.set(endpoints)
        scope = ", ".join(a.name for a in accounts) or "all accounts"
        self.stdout.write(
            f"{'created' if created else 'updated'} alert rule {name!r}: "
            f"{', '.join(events)} on {', '.join(rule.channels)} for {scope}"
        )

    def _rate(self, value: str, wanted: bool) -> tuple[int, int]:
        if not value:
            if wanted:
                self._fail("the rate event needs --rate N/M (N failures in M minutes)")
            return 0, 0
        n, _, m = value.partition("/")
        if not (n.isdigit() and m.isdigit() and int(n) >= 1 and 1 <= int(m) <= MAX_RATE_MINUTES):
            self._fail(f"--rate {value!r}: give N/M, N 1 or more, M 1 to {MAX_RATE_MINUTES}")
        if not wanted:
            self._fail("--rate is for the rate event, which --events does not name")
        return int(n), int(m)

    def _resources(
        self, arns: list[str], templates: list[str], accounts: list[AwsAccount]
    ) -> tuple[list[Connection], list[Endpoint]]:
        """Connections and endpoints by ARN and template, within the rule's accounts."""
        connections = Connection.objects.filter(arn__in=arns)
        endpoints = Endpoint.objects.filter(url_template__in=templates)
        if accounts:
            connections = connections.filter(account__in=accounts)
            endpoints = endpoints.filter(account__in=accounts)
        found_c, found_e = list(connections), list(endpoints)
        scope = "in the rule's accounts" if accounts else "known"
        missing = sorted(set(arns) - {c.arn for c in found_c})
        if missing:
            self._fail(f"--connection {missing[0]!r}: no such connection {scope}")
        missing = sorted(set(templates) - {e.url_template for e in found_e})
        if missing:
            self._fail(f"--endpoint {missing[0]!r}: no such endpoint {scope}")
        return found_c, found_e

    def _secret(self, path: str) -> str:
        if not path:
            return ""
        try:
            secret = Path(path).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            self._fail(f"--signing-secret-file {path!r}: {type(exc).__name__}")
        if len(secret) < 16:
            self._fail("--signing-secret-file: the secret must be at least 16 characters")
        return secret

    def _apprise(self, path: str) -> str:
        if not path:
            return ""
        try:
            urls = Path(path).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            self._fail(f"--apprise-file {path!r}: {type(exc).__name__}")
        problem = apprise_channel.problem(urls)
        if problem:
            self._fail(f"--apprise-file: {problem}")
        return urls

    def _fail(self, message: str) -> None:
        self.stderr.write(f"add_alert_rule: {message}")
        sys.exit(2)
