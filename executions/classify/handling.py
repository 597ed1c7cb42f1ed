"""What the state's Retry and Catch (from its definition) did with a failure, for the hints.

A hint that would advise adding a Retry asks `advise_retry` first, so a Retry the state already
has is never advised again; `failure_handling` adds "retried 3 times (Retry[0]: MaxAttempts 3,
BackoffRate 2) then caught by Catch[0] → NotifyFailure" to every failure's hint (issue 15 item 7).
"""

from __future__ import annotations

from executions.classify.facts import Facts


def advise_retry(f: Facts, add: str, covered: str) -> str:
    """`add` (advice to add a Retry) unless the state's definition shows one covers the error.

    A Retry that already ran (the definition has one for this error, or the history shows a
    retry) is never advised again; `covered` says what is left to do.
    """
    state = f.context.definition_state
    if state is None:
        # The history alone shows a Retry ran: this attempt was retried, or was itself a retry.
        retried = not f.attempt.final_attempt or f.attempt.attempt_number > 1
        return f"a Retry ran; {covered}" if retried else add
    if state.retrier_for(f.error) is None:
        return f"no Retry covers {f.error}: {add}"
    return f"the state's Retry covers it; {covered}"


def failure_handling(f: Facts) -> str:
    """What the state's Retry and Catch did with this failure, read from the definition.

    E.g. "retried 3 times (Retry[0]: MaxAttempts 3, BackoffRate 2) then caught by Catch[0] →
    NotifyFailure". Empty when the definition is unknown or says nothing about this error.
    """
    state = f.context.definition_state
    if state is None:
        return ""
    said: list[str] = []
    found = state.retrier_for(f.error)
    retries = max(f.attempt.attempt_number - 1, 0)
    if found is not None:
        index, retrier = found
        params = (
            f"Retry[{index}]: MaxAttempts {retrier.max_attempts}, "
            f"BackoffRate {retrier.backoff_rate:g}"
        )
        if f.attempt.final_attempt:
            said.append(f"retried {retries} time{'' if retries == 1 else 's'} ({params})")
        else:
            said.append(f"retried by {params}")
        f.extra["retry"] = {
            "index": index,
            "error_equals": list(retrier.error_equals),
            "max_attempts": retrier.max_attempts,
            "interval_seconds": retrier.interval_seconds,
            "backoff_rate": retrier.backoff_rate,
            "retries_before": retries,
        }
    if f.attempt.final_attempt:
        caught = state.catcher_for(f.error)
        if caught is not None and f.attempt.caught:
            index, catcher = caught
            said.append(f"caught by Catch[{index}] → {catcher.next}")
            f.extra["catch"] = {"index": index, "next": catcher.next}
        elif caught is None:
            said.append(f"no Catch covers {f.error or 'it'}")
    if state.timeout_seconds is not None:
        f.extra["timeout_seconds"] = state.timeout_seconds
    text = " then ".join(s for s in said if s)
    if text:
        f.decided_by.append("definition_state")
    return text
