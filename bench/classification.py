"""Part 2, classify: parse + classify of raw history pages against `json.loads` of the same bytes.

The corpus is what the sandbox serves: every template history (one per failure mode and retry
shape the scenarios produced) and one long Map history, as raw GetExecutionHistory pages.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from bench.common import Config, rounded, say
from bench.ingest import run_worker
from bench.world import World, write_corpus


def run_classify(world: World, config: Config, workdir: Path) -> dict[str, Any]:
    corpus = write_corpus(world, workdir)
    if os.environ.get("BENCH_PROFILE_DIR"):  # kept for valgrind or a rerun of the worker
        target = Path(os.environ["BENCH_PROFILE_DIR"])
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(corpus, target / "corpus.json")
    say(f"classify: best of {config.classify_rounds} interleaved rounds")
    result = run_worker("classify", str(corpus), str(config.classify_rounds))
    full, floor = float(result["parse_classify_seconds"]), float(result["json_seconds"])
    return {
        "events_per_s": rounded(result["events"] / full),
        "ratio_vs_json_parse": rounded(full / floor),
        "json_events_per_s": rounded(result["events"] / floor),
        # json.loads + HistoryParser alone: how the ratio splits between parsing and classifying.
        "parse_only_ratio_vs_json_parse": rounded(float(result["parse_seconds"]) / floor),
        # json.loads of pages and of the JSON strings inside task events (parameters, output).
        "nested_json_ratio_vs_json_parse": rounded(float(result["nested_json_seconds"]) / floor),
        "events": result["events"],
        "attempts": result["attempts"],
        "histories": result["histories"],
        "pages": result["pages"],
        "megabytes": rounded(result["bytes"] / 1e6),
        "parse_classify_seconds": rounded(full),
        "parse_seconds": rounded(float(result["parse_seconds"])),
        "json_seconds": rounded(floor),
        # The same, in CPU time of the worker process (best of the rounds): what other load
        # on the machine stretches less than the wall clock.
        "cpu_ratio_vs_json_parse": rounded(
            float(result["parse_classify_cpu_seconds"]) / float(result["json_cpu_seconds"])
        ),
        "cpu_parse_only_ratio_vs_json_parse": rounded(
            float(result["parse_cpu_seconds"]) / float(result["json_cpu_seconds"])
        ),
    }
