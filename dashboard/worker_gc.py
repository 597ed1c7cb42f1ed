"""The garbage collector's settings in the Celery worker processes.

A sync allocates millions of short-lived containers (decoded history pages, events, attempts)
while the process also holds a large heap of long-lived ones (Django, botocore's models, the
rules). With Python's defaults (a collection every 700 allocations, older generations every 10)
each collection walks objects that never die: the classify pass took 4.8× json.loads of the same
bytes with the defaults and 2.4–2.9× with the setting below (docs/performance.md, "The worker's
garbage collector"). Two changes, as CPython's gc documentation advises for forking servers:

- `gc.freeze()` once the worker is set up moves every object alive then to a permanent
  generation that collections skip (and, before the prefork pool forks, keeps the children's
  collections from writing to the parent's pages);
- a higher first threshold (`WORKER_GC_THRESHOLD`, default 50000,10,10): cycles among the
  short-lived objects are still freed, a little later. Reference counting frees the rest at once
  either way, so memory grows by at most the garbage of 50,000 allocations between collections.

`WORKER_GC_THRESHOLD=python` keeps Python's own settings (no freeze). Checked by stepscope.E011;
at run time a bad value falls back to the default so a worker never stops on it.
"""

from __future__ import annotations

import gc
import logging

from django.conf import settings

log = logging.getLogger(__name__)

DEFAULT_THRESHOLD = (50_000, 10, 10)
PYTHON_DEFAULTS = "python"


def parse_threshold(raw: str) -> tuple[tuple[int, int, int] | None, str]:
    """(the three thresholds, or None for Python's own; a problem, or "")."""
    text = raw.strip().lower()
    if not text:
        return DEFAULT_THRESHOLD, ""
    if text == PYTHON_DEFAULTS:
        return None, ""
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 3 or not all(p.isdigit() and int(p) > 0 for p in parts):
        return DEFAULT_THRESHOLD, (
            f"WORKER_GC_THRESHOLD {raw!r} is not three positive integers (gen0,gen1,gen2) "
            f"nor {PYTHON_DEFAULTS!r}"
        )
    first, second, third = (int(p) for p in parts)
    return (first, second, third), ""


def threshold_problem() -> str:
    return parse_threshold(str(settings.STEPSCOPE.get("WORKER_GC_THRESHOLD", "")))[1]


def tune_worker_gc(**_: object) -> None:
    """Freeze what is alive and raise the thresholds (a Celery signal handler, hence **_)."""
    threshold, problem = parse_threshold(str(settings.STEPSCOPE.get("WORKER_GC_THRESHOLD", "")))
    if problem:
        log.warning("%s: the default %s applies", problem, DEFAULT_THRESHOLD)
    if threshold is None:
        return
    gc.collect()
    gc.freeze()
    gc.set_threshold(*threshold)
    log.info("worker gc: %d objects frozen, threshold %s", gc.get_freeze_count(), threshold)
