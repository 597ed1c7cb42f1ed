"""`manage.py reclassify`: run stored attempts through the current classifier rules again."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from connections.models import AwsAccount
from executions.classify import RULES_VERSION
from executions.history import ParsedAttempt, http_states_from_definition
from executions.ingest import AttemptWriter, refresh_groups
from executions.models import FailureGroup, HttpAttempt, StateMachine

BATCH = 2000


class Command(BaseCommand):
    help = "Reclassify stored HTTP attempts (by default only those classified by older rules)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--all", action="store_true", help="Also attempts already on the current rules."
        )
        parser.add_argument("--account", help="Only this account (name).")

    def handle(self, *args: Any, **opts: Any) -> None:
        accounts = AwsAccount.objects.all()
        if opts.get("account"):
            accounts = accounts.filter(name=opts["account"])
        total = 0
        for account in accounts:
            total += self._account(account, include_current=opts["all"])
        self.stdout.write(f"Reclassified {total} attempt(s) with rules {RULES_VERSION}.")

    def _account(self, account: AwsAccount, include_current: bool) -> int:
        writer = AttemptWriter(account)
        definitions = {
            m.pk: http_states_from_definition(m.definition)
            for m in StateMachine.objects.filter(account=account).only("pk", "definition")
        }
        rows = HttpAttempt.objects.filter(account=account).select_related(
            "endpoint", "connection", "execution"
        )
        if not include_current:
            rows = rows.exclude(classifier_version=RULES_VERSION)
        done, last_id = 0, 0
        while True:
            # Keyset batches: constant memory and no OFFSET scan at a million rows.
            batch = list(rows.filter(id__gt=last_id).order_by("id")[:BATCH])
            if not batch:
                break
            with transaction.atomic():
                for row in batch:
                    writer.use_definition(definitions.get(row.execution.state_machine_id, {}))
                    self._one(writer, row)
                HttpAttempt.objects.bulk_update(
                    batch,
                    [
                        "category",
                        "subcategory",
                        "evidence",
                        "hint",
                        "classifier_version",
                        "failure_group",
                    ],
                )
            last_id = batch[-1].id
            done += len(batch)
            self.stderr.write(f"… {account.name}: {done}")
        _recount_groups(account)
        return done

    def _one(self, writer: AttemptWriter, row: HttpAttempt) -> None:
        parsed = as_parsed(row)
        template = row.endpoint.url_template if row.endpoint else ""
        result = writer.classify(parsed, template, before=row.occurred_at)
        row.category = result.category or ""
        row.subcategory = result.subcategory[:64]
        row.evidence = result.evidence
        row.hint = result.hint
        row.classifier_version = result.rules_version
        row.failure_group = (
            writer.group_for(row, result) if row.is_failure and result.category else None
        )


def as_parsed(row: HttpAttempt) -> ParsedAttempt:
    """A stored (redacted) attempt in the parser's shape, for the classifier."""
    return ParsedAttempt(
        state_name=row.state_name,
        attempt_number=row.attempt_number,
        entered_event_id=row.entered_event_id,
        scheduled_event_id=row.scheduled_event_id,
        closed_event_id=row.closed_event_id,
        scheduled_at=row.scheduled_at,
        closed_at=row.closed_at,
        duration_ms=row.duration_ms,
        method=row.method,
        url=row.url,
        connection_arn=row.connection_arn,
        request_headers=row.request_headers or {},
        request_query=row.request_query,
        request_body=row.request_body,
        status_code=row.status_code,
        response_headers=row.response_headers or {},
        response_body=row.response_body,
        error=row.error,
        cause=row.cause,
        outcome=row.outcome,
        caught=row.caught,
        final_attempt=row.final_attempt,
        redrive_count=row.redrive_count,
        branch_path=row.branch_path,
        closed_event_type=row.closed_event_type,
        timeout_seconds=row.timeout_seconds,
        response_truncated=row.response_truncated,
    )


def _recount_groups(account: AwsAccount) -> None:
    refresh_groups(FailureGroup.objects.filter(account=account).values_list("pk", flat=True))
