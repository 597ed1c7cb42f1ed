"""Re-redact stored rows once a connection's secret parameter names are learned or grow.

An attempt is redacted when it is written, with the names known then. A connection seen for the
first time after its attempts were stored (described late, or not describable before), or one
whose parameters became secret later, leaves rows redacted without its names: they are
redacted again here, in place, right after discovery stored the new names.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from django.db import transaction

from connections.models import AwsAccount, Connection, secret_parameter_names
from executions.models import Execution, FailureGroup, HttpAttempt
from executions.redaction import Redactor, default_redactor, secret_name_set

SecretNames = dict[str, frozenset[str]]
BATCH = 500
# Texts scrubbed as they are; the URL and the response body have their own scrubbers.
_PLAIN_TEXTS = ("error", "cause", "hint", "state_error", "state_cause", "state_hint", "aborted_by")
_ATTEMPT_TEXTS = ("url", "response_body", *_PLAIN_TEXTS)
_ATTEMPT_VALUES = (
    "request_headers",
    "request_query",
    "request_body",
    "response_headers",
    "evidence",
)


def secret_names_by_connection(account: AwsAccount) -> SecretNames:
    """The secret names each connection's stored rows were redacted with (lower-cased), by ARN.

    A connection described before secrecy was recorded (no "secret" list) had its rows written
    with no connection names at all: it counts as none, so that the discovery that records its
    secret names redacts those rows again (an upgraded installation keeps no echoed secret).
    """
    rows = Connection.objects.filter(account=account).values_list(
        "arn", "invocation_parameter_names"
    )
    return {
        arn: secret_name_set(secret_parameter_names(names))
        if isinstance(names, dict) and "secret" in names
        else frozenset()
        for arn, names in rows
    }


def rescrub_new_secret_names(
    account: AwsAccount, before: Mapping[str, frozenset[str]], base: Redactor | None = None
) -> int:
    """Re-redact the stored attempts (and their executions' causes, and groups) of every
    connection that has secret names it did not have in `before`; returns the attempts done."""
    base = base or default_redactor()
    grown = {
        arn: names
        for arn, names in secret_names_by_connection(account).items()
        if names - before.get(arn, frozenset())
    }
    done = 0
    for arn, names in grown.items():
        done += _rescrub_connection(account, arn, base.with_secret_names(names))
    return done


def _rescrub_connection(account: AwsAccount, arn: str, redactor: Redactor) -> int:
    attempts = HttpAttempt.objects.filter(account=account, connection_arn=arn)
    fields = ("pk", "execution_id", *_ATTEMPT_TEXTS, *_ATTEMPT_VALUES)
    done, last_pk = 0, 0
    while True:
        batch = list(attempts.filter(pk__gt=last_pk).order_by("pk").only(*fields)[:BATCH])
        if not batch:
            break
        for attempt in batch:
            attempt.url = redactor.url(attempt.url)
            attempt.response_body = redactor.embedded(attempt.response_body)
            for name in _PLAIN_TEXTS:
                setattr(attempt, name, redactor.text(getattr(attempt, name)))
            for name in _ATTEMPT_VALUES:
                setattr(attempt, name, redactor.value(getattr(attempt, name)))
        with transaction.atomic():
            HttpAttempt.objects.bulk_update(batch, [*_ATTEMPT_TEXTS, *_ATTEMPT_VALUES])
            _rescrub_executions({a.execution_id for a in batch}, redactor)
        done += len(batch)
        last_pk = batch[-1].pk
    _rescrub_groups(account, arn, redactor)
    return done


def _rescrub_executions(ids: Iterable[int], redactor: Redactor) -> None:
    executions = list(Execution.objects.filter(pk__in=list(ids)).only("pk", "error", "cause"))
    for execution in executions:
        execution.error = redactor.text(execution.error)[:256]
        execution.cause = redactor.text(execution.cause)
    Execution.objects.bulk_update(executions, ["error", "cause"])


def _rescrub_groups(account: AwsAccount, arn: str, redactor: Redactor) -> None:
    groups = list(
        FailureGroup.objects.filter(account=account, connection_arn=arn).only(
            "pk", "title", "hint", "error"
        )
    )
    for group in groups:
        group.title = redactor.text(group.title)[:500]
        group.hint = redactor.text(group.hint)
        group.error = redactor.text(group.error)[:256]
    FailureGroup.objects.bulk_update(groups, ["title", "hint", "error"])
