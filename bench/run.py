"""`python -m bench.run --full | --quick | --smoke`: run the benchmarks, write results.json.

Exit status: 0 when every part measured (goals missed or not: they are reported in the table
and in results.json), 1 when the benchmark itself broke (a part raised, a page answered an
error), 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import database
from bench.common import CONFIGS, RESULTS_PATH, Config, evaluate, machine_info, say, stopwatch
from bench.common import table as render_table

PARTS = ("classify", "ingest", "dashboard", "storm")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--full", dest="mode", action="store_const", const="full")
    mode.add_argument("--quick", dest="mode", action="store_const", const="quick")
    mode.add_argument("--smoke", dest="mode", action="store_const", const="smoke")
    parser.add_argument("--only", help=f"comma-separated parts ({', '.join(PARTS)})")
    parser.add_argument(
        "--storm-size",
        type=int,
        help="failed executions of the storm part (default: the mode's; --quick runs none)",
    )
    parser.add_argument("--output", type=Path, default=RESULTS_PATH)
    parser.add_argument("--database", default=database.DEFAULT_NAME, help="bench database name")
    parser.add_argument(
        "--keep-database", action="store_true", help="leave the seeded database for inspection"
    )
    args = parser.parse_args(argv)
    args.mode = args.mode or "quick"
    args.parts = _parts(parser, args.only)
    if args.storm_size is not None and args.storm_size < 1:
        parser.error("--storm-size must be at least 1")
    return args


def _parts(parser: argparse.ArgumentParser, only: str | None) -> tuple[str, ...]:
    if not only:
        return PARTS
    chosen = tuple(p.strip() for p in only.split(",") if p.strip())
    unknown = [p for p in chosen if p not in PARTS]
    if unknown:
        parser.error(f"unknown part(s): {', '.join(unknown)}")
    return tuple(p for p in PARTS if p in chosen)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    config = CONFIGS[args.mode]
    if args.storm_size is not None:
        config = dataclasses.replace(config, storm_executions=args.storm_size)
    database_url = database.bench_database_url(args.database)
    database.configure_environment(database_url)
    results: dict[str, Any] = {"mode": config.mode, "errors": [], "durations_s": {}}
    with stopwatch() as total:
        try:
            say(f"{config.mode} run; database {database.database_name(database_url)}")
            database.recreate_database(database_url)
            database.setup_django()
            run_parts(config, args.parts, results)
        except Exception:
            results["errors"].append(f"setup: {traceback.format_exc()}")
        finally:
            if not args.keep_database:
                _drop_quietly(database_url)
    results["durations_s"]["total"] = round(total(), 1)
    results["machine"] = machine_info(config, database.maintenance_url(database_url))
    results["goals"] = evaluate(results)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
    print(render_table(results), end="")
    print(f"results: {args.output}  ({results['durations_s']['total']} s)")
    return 1 if results["errors"] else 0


def run_parts(config: Config, parts: tuple[str, ...], results: dict[str, Any]) -> None:
    from bench.world import build_world, temp_dir

    world = None
    with temp_dir() as tmp:
        workdir = Path(tmp)
        try:
            if "classify" in parts or "ingest" in parts:
                world = _measured(results, "sandbox", lambda: build_world(config))
            if world is not None and "classify" in parts:
                _part(results, "classify", lambda: _classify(world, config, workdir))
            if world is not None and "ingest" in parts:
                _part(results, "ingest", lambda: _ingest(world, config, workdir))
        finally:
            if world is not None:
                world.close()
    if "dashboard" in parts:
        _part(results, "dashboard", lambda: _dashboard(config))
    if "storm" in parts and config.storm_executions:
        _part(results, "storm", lambda: _storm(config))


def _classify(world: Any, config: Config, workdir: Path) -> dict[str, Any]:
    from bench.classification import run_classify

    return run_classify(world, config, workdir)


def _ingest(world: Any, config: Config, workdir: Path) -> dict[str, Any]:
    from bench.ingest import run_ingest

    return run_ingest(world, config, workdir)


def _dashboard(config: Config) -> dict[str, Any]:
    from bench.dashboard import run_dashboard

    return run_dashboard(config)


def _storm(config: Config) -> dict[str, Any]:
    from bench.storm import run_storm

    return run_storm(config)


def _measured(results: dict[str, Any], name: str, step: Callable[[], Any]) -> Any:
    """Run a preparation step; on failure record it and return None (its parts are skipped)."""
    with stopwatch() as elapsed:
        try:
            return step()
        except Exception:
            results["errors"].append(f"{name}: {traceback.format_exc()}")
            say(f"{name} FAILED (see results.json errors)")
            return None
        finally:
            results["durations_s"][name] = round(elapsed(), 1)


def _part(results: dict[str, Any], name: str, step: Callable[[], dict[str, Any]]) -> None:
    with stopwatch() as elapsed:
        try:
            result = step()
            details = result.pop("_details", None)
            if details is not None:
                results.setdefault("details", {})[name] = details
            results[name] = result
        except Exception:
            results[name] = {"error": traceback.format_exc(limit=3).strip().splitlines()[-1]}
            results["errors"].append(f"{name}: {traceback.format_exc()}")
            say(f"{name} FAILED (see results.json errors)")
        finally:
            results["durations_s"][name] = round(elapsed(), 1)
    for message in _page_errors(results.get(name, {})):
        results["errors"].append(f"{name}: {message}")


def _page_errors(part: dict[str, Any]) -> list[str]:
    return [
        f"{page}: {row['error']}"
        for page, row in part.items()
        if isinstance(row, dict) and row.get("error")
    ]


def _drop_quietly(database_url: str) -> None:
    from django.db import connections

    with contextlib.suppress(Exception):  # Django may not have started
        connections.close_all()
    try:
        database.drop_database(database_url)
    except Exception as exc:
        say(f"could not drop the bench database: {exc}")


if __name__ == "__main__":
    sys.exit(main())
