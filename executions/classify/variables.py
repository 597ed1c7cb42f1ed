"""A failing call whose URL or header came from a workflow variable: say which, and where
it was assigned, because that is where the wrong value was made (issue 15 item 4)."""

from __future__ import annotations

from executions.history import ParsedAttempt, is_failing_outcome


def variable_evidence(attempt: ParsedAttempt) -> dict[str, dict[str, str]]:
    """{"built_from_variables": {part: "$name (assigned by State)"}}, for failures only."""
    if not attempt.variable_sources or not is_failing_outcome(attempt.outcome):
        return {}
    return {"built_from_variables": dict(sorted(attempt.variable_sources.items()))}


def variable_note(attempt: ParsedAttempt) -> str:
    """The hint's addition: which request parts a variable supplied."""
    if not attempt.variable_sources or not is_failing_outcome(attempt.outcome):
        return ""
    parts = "; ".join(
        f"the {part} came from {source}"
        for part, source in sorted(attempt.variable_sources.items())
    )
    return f"{parts}: check what that state assigned (the execution page lists it)"
