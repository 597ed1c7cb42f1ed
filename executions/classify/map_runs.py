"""A Map Run's failures together: one bad batch of items, or a broken endpoint (issue 15 item 5).

A Distributed Map fails as a whole with `States.ExceedToleratedFailureThreshold` once more child
executions failed than its ToleratedFailurePercentage/Count allows (reference §8, S20); the
parent's history says no more. What to do depends on how the children failed: all the same way
at one endpoint (a server error, a timeout, credentials) is the endpoint, not the items, and a
redrive after the fix reruns just the failed ones; client-side failures that differ from item to
item are the items' data. Pure: it reads the children's classified attempts as plain rows.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

THRESHOLD_ERROR = "States.ExceedToleratedFailureThreshold"
# Categories that say the item's own data was wrong (the request built from it).
ITEM_CATEGORIES = frozenset(
    {"client_error", "missing_parameter", "missing_header", "invalid_request", "payload_too_large"}
)
ENDPOINT, ITEMS, MIXED = "endpoint", "items", "mixed"


def map_run_failures(rows: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The children's final failures grouped by (method, endpoint, category, subcategory), most
    frequent first, with how many children failed and which way the verdict leans."""
    children: set[str] = set()
    failing: dict[str, tuple[str, str, str, str]] = {}
    for row in rows:
        arn = str(row.get("execution_arn") or "")
        children.add(arn)
        # A retried failure is not the child's fate; its last failure is.
        if row.get("category") and not row.get("caught"):
            failing[arn] = (
                str(row.get("method") or ""),
                str(row.get("endpoint") or ""),
                str(row.get("category") or ""),
                str(row.get("subcategory") or ""),
            )
    groups = Counter(failing.values())
    return {
        "children": len(children),
        "failing_children": len(failing),
        "failures": [
            {"method": m, "endpoint": e, "category": c, "subcategory": s, "children": n}
            for (m, e, c, s), n in groups.most_common()
        ],
        "verdict": _verdict(groups),
    }


def _verdict(groups: Counter[tuple[str, str, str, str]]) -> str | None:
    if not groups:
        return None
    categories = {category for _, _, category, _ in groups}
    if categories <= ITEM_CATEGORIES:
        return ITEMS
    if len(groups) == 1:
        return ENDPOINT
    return MIXED


def map_run_hint(error: str, summary: Mapping[str, Any], map_state: str = "") -> str:
    """What the Map Run's end and its children's failures say to do."""
    state = f"Map state {map_state}" if map_state else "the Map state"
    said = []
    if error == THRESHOLD_ERROR:
        said.append(
            f"the Map Run of {state} stopped because more child executions failed than its "
            "ToleratedFailurePercentage / ToleratedFailureCount allows "
            f"({THRESHOLD_ERROR}); the parent's history says no more — the children's "
            "failures do"
        )
    elif error:
        said.append(f"the Map Run of {state} failed with {error}")
    failing, total = summary.get("failing_children", 0), summary.get("children", 0)
    failures = summary.get("failures") or []
    verdict = summary.get("verdict")
    if verdict == ENDPOINT and failures:
        top = failures[0]
        said.append(
            f"all {failing} failing child execution(s) of {total} failed the same way at "
            f"{top['method']} {top['endpoint']} ({top['category']}: {top['subcategory']}): the "
            "endpoint is the problem, not the items — fix it (or wait it out), then redrive the "
            "parent execution, which reruns only the failed items"
        )
    elif verdict == ITEMS:
        said.append(
            f"{failing} of {total} child executions failed on their own requests (client-side: "
            f"{', '.join(sorted({f['subcategory'] for f in failures}))}): a bad batch of items — "
            "fix those items' data, or raise the tolerated failure threshold if some may fail"
        )
    elif verdict == MIXED:
        said.append(
            f"{failing} of {total} child executions failed in {len(failures)} different ways: "
            "look at each group below"
        )
    elif error and not total:
        said.append("no child execution was given: add their histories to see why items failed")
    return "; ".join(said)
