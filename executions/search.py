"""Free-text search: executions by name or ARN, attempts by error, cause, URL or response text.

One recipe for the executions page and the API. Matching is a case-insensitive substring
(`ILIKE '%text%'`), which pg_trgm's GIN indexes answer (att_fail_text over the failing attempts'
four text columns, exec_arn_trgm over execution ARNs; migration 0011). Django's `icontains`
compiles to `UPPER(col) LIKE UPPER(...)`, which no trigram index on the column serves, hence
the lookup below. An execution's name is the last part of its ARN, so the ARN index answers
both. Full-text search was measured against this (docs/performance.md) and left out: it finds
words, not the ARN fragments, URL paths and ids an on-call engineer pastes.
"""

from __future__ import annotations

from typing import Any, TypeVar

from django.db.models import BooleanField, F, Lookup, Q, QuerySet, Subquery
from django.db.models.sql.compiler import SQLCompiler

from executions.models import ATTEMPT_TEXT_FIELDS, Execution

# Fewer characters make no trigram: the index could not help and every failing attempt would
# be read. The forms ask for at least this many.
MIN_SEARCH_LENGTH = 3
# With a search, lists count exactly up to this many matches, then show the planner's estimate
# (docs/performance.md: counting 5,000 matches of a common word cost 0.4 s at 1M attempts).
SEARCH_EXACT_COUNT_LIMIT = 500

QS = TypeVar("QS", bound=QuerySet[Any])


def like_pattern(text: str) -> str:
    """`text` as a LIKE substring pattern, its own wildcards taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


class ContainsText(Lookup):  # type: ignore[type-arg]
    """`lhs ILIKE rhs` on PostgreSQL (trigram-indexable); LIKE on SQLite, which is already
    case-insensitive for ASCII. The rhs is a pattern from `like_pattern`."""

    lookup_name = "contains_text"
    output_field = BooleanField()

    def as_sql(self, compiler: SQLCompiler, connection: Any) -> tuple[str, list[Any]]:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        op = "ILIKE" if connection.vendor == "postgresql" else "LIKE"
        return f"{lhs} {op} {rhs} ESCAPE '\\'", [*lhs_params, *rhs_params]


class InArrayOf(Lookup):  # type: ignore[type-arg]
    """`lhs = ANY(ARRAY(subquery))`: unlike `IN (subquery)` inside an OR, PostgreSQL can answer
    it with an index scan (the subquery runs once, as an InitPlan) and OR it with the trigram
    index's bitmap."""

    lookup_name = "in_array_of"
    output_field = BooleanField()

    def as_sql(self, compiler: SQLCompiler, connection: Any) -> tuple[str, list[Any]]:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = compiler.compile(self.rhs)
        if connection.vendor == "postgresql":
            return f"{lhs} = ANY(ARRAY{rhs})", [*lhs_params, *rhs_params]
        return f"{lhs} IN {rhs}", [*lhs_params, *rhs_params]

    def get_prep_lookup(self) -> Any:
        return self.rhs  # a Subquery, taken as it is


def execution_text_q(text: str) -> Q:
    """Executions whose name or ARN contains `text`."""
    return Q(ContainsText(F("arn"), like_pattern(text)))


def attempt_text_q(text: str) -> Q:
    """Attempts whose own error, cause, URL or response contains `text`."""
    pattern = like_pattern(text)
    q = Q()
    for name in ATTEMPT_TEXT_FIELDS:
        q |= Q(ContainsText(F(name), pattern))
    return q


def search_attempts(qs: QS, text: str, accounts: list[int]) -> QS:
    """Attempts that match `text` themselves or belong to an execution whose name or ARN does
    (within `accounts`, so the inner query stays on the visible rows)."""
    executions = Execution.objects.filter(account_id__in=accounts).filter(execution_text_q(text))
    by_execution = InArrayOf(F("execution_id"), Subquery(executions.values("pk")))
    return qs.filter(attempt_text_q(text) | Q(by_execution))


def search_executions(qs: QS, text: str, attempts: QuerySet[Any]) -> QS:
    """Executions whose name or ARN matches, or with one of `attempts` (failing, scoped) whose
    text does."""
    matching = attempts.filter(attempt_text_q(text)).values("execution_id")
    return qs.filter(execution_text_q(text) | Q(InArrayOf(F("pk"), Subquery(matching))))
