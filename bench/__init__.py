"""Benchmarks: ingestion, parse + classify and the dashboard, each as a ratio against its floor.

`python -m bench.run --full` (make bench) or `--quick` (make bench-quick, CI) writes
bench/results.json and prints a table; docs/performance.md explains the numbers.
"""

from __future__ import annotations
