"""What the pages show of Distributed Map Runs: a parent's runs with their children's failures
together (executions.classify.map_runs: one bad batch of items, or a broken endpoint), and a
failure group's failures per Map Run."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Q

from executions.classify import map_run_failures, map_run_hint
from executions.models import Execution, FailureGroup, HttpAttempt, MapRun

# The children's final failures read per run (a run may have thousands of children).
MAX_FAILURE_ROWS = 5000
CHILDREN_SHOWN = 20
GROUP_RUNS_SHOWN = 20


def map_run_sections(execution: Execution) -> list[dict[str, Any]]:
    """Per Map Run the parent started: the run, its children's failures grouped with the
    verdict and what to do, and its first children (failing first) to open."""
    runs = MapRun.objects.filter(parent_execution=execution).annotate(
        n_children=Count("children"),
        n_failing=Count("children", filter=~Q(children__status="SUCCEEDED")),
    )
    return [_section(run) for run in runs.order_by("started_at", "id")]


def _section(run: MapRun) -> dict[str, Any]:
    rows = (
        HttpAttempt.objects.filter(execution__map_run=run, final_attempt=True, caught=False)
        .exclude(category="")
        .order_by("occurred_at", "id")
        .values_list(
            "execution__arn", "method", "endpoint__url_template", "url", "category", "subcategory"
        )[:MAX_FAILURE_ROWS]
    )
    summary = map_run_failures(
        {
            "execution_arn": arn,
            "method": method,
            "endpoint": template or url,
            "category": category,
            "subcategory": subcategory,
        }
        for arn, method, template, url, category, subcategory in rows
    )
    children_count = int(getattr(run, "n_children", 0))
    summary["children"] = max(summary["children"], children_count)
    children = list(
        Execution.objects.filter(map_run=run)
        .only("pk", "name", "status", "start_date", "error")
        .order_by("status", "start_date", "id")[:CHILDREN_SHOWN]
    )
    children.sort(key=lambda c: (c.status == "SUCCEEDED", c.start_date, c.pk))
    return {
        "run": run,
        "summary": summary,
        "failing_children": int(getattr(run, "n_failing", 0)),
        "hint": map_run_hint(run.error, summary, run.map_state),
        "children": children,
        "more_children": max(children_count - len(children), 0),
    }


def group_map_runs(group: FailureGroup) -> list[dict[str, Any]]:
    """The group's failures per Map Run: which runs (and parents) they came from, how many
    failures and failing children each."""
    return list(
        HttpAttempt.objects.filter(failure_group_id=group.pk, execution__map_run__isnull=False)
        .values(
            "execution__map_run_id",
            "execution__map_run__label",
            "execution__map_run__status",
            "execution__parent_execution_id",
            "execution__parent_execution__name",
        )
        .annotate(failures=Count("id"), children=Count("execution_id", distinct=True))
        .order_by("-failures", "execution__map_run_id")[:GROUP_RUNS_SHOWN]
    )


def map_run_rows(execution: Execution) -> list[dict[str, Any]]:
    """The same sections as plain rows, for the API."""
    rows = []
    for section in map_run_sections(execution):
        run: MapRun = section["run"]
        summary = section["summary"]
        rows.append(
            {
                **{f: getattr(run, f) for f in MAP_RUN_FIELDS},
                "children": summary["children"],
                "failing_children": section["failing_children"],
                "verdict": summary["verdict"],
                "failures": summary["failures"],
                "hint": section["hint"],
            }
        )
    return rows


MAP_RUN_FIELDS = (
    "id", "arn", "label", "map_state", "status", "error", "cause", "redrive_count", "started_at",
    "stopped_at", "tolerated_failure_percentage", "tolerated_failure_count", "execution_counts",
    "read_problem",
)  # fmt: skip
