"""Classify one attempt: derive its facts, let the first matching rule decide, say why."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from executions.classify.cause import NO_CAUSE, read_cause
from executions.classify.context import ClassificationContext
from executions.classify.facts import Facts
from executions.classify.handling import failure_handling
from executions.classify.rules import FALLBACK, RULES, RULES_VERSION, STATE_RULES, Rule
from executions.classify.variables import variable_evidence, variable_note
from executions.history import OUTCOME_SUCCEEDED, ParsedAttempt, is_failing_outcome

_NO_CONTEXT = ClassificationContext()  # immutable, so one default serves every call


@dataclass(frozen=True, slots=True)
class Classification:
    category: str | None  # None on success
    subcategory: str
    evidence: dict[str, Any]
    hint: str
    rules_version: str
    rule_id: str


def classify(
    attempt: ParsedAttempt, context: ClassificationContext = _NO_CONTEXT
) -> Classification:
    """The first rule in RULES that matches decides category, subcategory and hint."""
    facts = _facts(attempt, context)
    for rule in _candidates(attempt.outcome, facts.error, facts.status):
        if rule.check is None or rule.check(facts):
            return _result(rule, facts)
    return _result(FALLBACK, facts)  # unreachable: the last rule matches everything


def classify_state_error(
    attempt: ParsedAttempt, context: ClassificationContext = _NO_CONTEXT
) -> Classification | None:
    """The definition error of a state that failed after this (successful) call, if any.

    The call itself stays a success: ResultSelector, ResultPath or OutputPath failed on its
    answer, which is the definition's fault, not the endpoint's (issue 15 item 9).
    """
    if attempt.outcome != OUTCOME_SUCCEEDED or not (attempt.state_error or attempt.state_cause):
        return None
    facts = Facts(
        attempt, context, attempt.state_error, None, read_cause(attempt.state_cause, None)
    )
    facts.decided_by.append("state_error")
    for rule in STATE_RULES:
        if rule.check is None or rule.check(facts):
            return _result(rule, facts)
    return _result(STATE_RULES[-1], facts)


def needs_last_success(attempt: ParsedAttempt) -> bool:
    """Whether the last success's request shape can change this attempt's class (a 4xx).

    Callers skip building the shape otherwise; successes vastly outnumber client errors.
    """
    status = attempt.status_code
    return attempt.outcome != OUTCOME_SUCCEEDED and isinstance(status, int) and 400 <= status < 500


@lru_cache(maxsize=1024)
def _candidates(outcome: str, error: str, status: int | None) -> tuple[Rule, ...]:
    # The same few (outcome, error, status) combinations recur endlessly; the rules whose
    # data admits them are computed once, leaving only the `check` functions per attempt.
    return tuple(rule for rule in RULES if rule.admits(outcome, error, status))


def _facts(attempt: ParsedAttempt, context: ClassificationContext) -> Facts:
    error = attempt.error if isinstance(attempt.error, str) else ""
    status = attempt.status_code if isinstance(attempt.status_code, int) else None
    # Successes are the bulk of history; only failures pay for reading the cause.
    failed = is_failing_outcome(attempt.outcome)
    cause = read_cause(attempt.cause, status) if failed else NO_CAUSE
    return Facts(attempt, context, error, status, cause)


def _result(rule: Rule, facts: Facts) -> Classification:
    hint = rule.hint(facts)
    if rule.category is not None:  # a failure (successes and calls in flight have none)
        handled = failure_handling(facts)  # Retry/Catch from the definition, when known
        if handled:
            hint = f"{hint}; {handled}"
        built = variable_note(facts.attempt) if facts.attempt.variable_sources else ""
        if built:
            hint = f"{hint}; {built}"
    subcategory = rule.subcategory
    if "{" in subcategory:
        subcategory = subcategory.replace("{status}", str(facts.status))
    return Classification(
        category=rule.category,
        subcategory=subcategory,
        evidence=_evidence(rule, facts),
        hint=hint,
        rules_version=RULES_VERSION,
        rule_id=rule.id,
    )


def _evidence(rule: Rule, facts: Facts) -> dict[str, Any]:
    attempt = facts.attempt
    evidence: dict[str, Any] = {
        "decided_by": list(dict.fromkeys((*rule.decided_by, *facts.decided_by))),
        "error": facts.error,
        "status_code": facts.status,
        "outcome": attempt.outcome,
        "closed_event": attempt.closed_event_type,
        "duration_ms": attempt.duration_ms,
        "cause_kind": facts.cause.kind,
    }
    if is_failing_outcome(attempt.outcome):
        evidence["final_attempt"] = attempt.final_attempt
        evidence["caught"] = attempt.caught
    if facts.extra:
        evidence.update(facts.extra)
    if attempt.variable_sources:
        evidence.update(variable_evidence(attempt))
    return evidence
