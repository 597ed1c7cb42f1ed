"""Server-rendered SVG for rates and latency over time: pure geometry, no database.

Beside the failure counts (charts.stacked_bars), the connection and endpoint pages draw the
failure *rate* per bucket (failed ÷ finished attempts, 0–100 %) and latency p50/p95 of the
finished attempts per bucket (aborted calls are counted apart: they did not finish), on
the same buckets and x axis as the counts, so the three charts line up.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from executions.charts import Bucketing, Tick, duration_label, floor_to, nice_ceiling, x_ticks

WIDTH, HEIGHT = 760, 140
LEFT, TOP, RIGHT_PAD, BOTTOM_PAD = 44.0, 8.0, 8.0, 24.0


@dataclass(frozen=True)
class BucketStats:
    """One bucket's attempts, as SQL aggregated them."""

    start: datetime
    total: int  # finished attempts (not aborted, not in progress): the rate's denominator
    failed: int
    p50: float | None = None  # milliseconds; None when no attempt in it was timed
    p95: float | None = None
    aborted: int = 0  # cut off, in no rate or latency; said beside them

    @property
    def rate(self) -> float:
        return self.failed / self.total if self.total else 0.0


@dataclass(frozen=True)
class RateBar:
    x: float
    y: float
    width: float
    height: float
    rate: float  # 0–1
    title: str


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    title: str


@dataclass(frozen=True)
class Trends:
    width: int
    height: int
    left: float
    top: float
    plot_width: float
    plot_height: float
    rate_bars: tuple[RateBar, ...]
    rate_ticks: tuple[Tick, ...]
    p50: tuple[Point, ...]
    p95: tuple[Point, ...]
    latency_ticks: tuple[Tick, ...]
    x_ticks: tuple[Tick, ...]
    bucket_unit: str
    total: int  # finished attempts in the window
    failed: int
    aborted: int = 0  # cut off in the window: beside the rate, never in it

    @property
    def bottom(self) -> float:
        return self.top + self.plot_height

    @property
    def right(self) -> float:
        return self.left + self.plot_width

    @property
    def tick_x(self) -> float:
        return self.left - 6

    @property
    def label_y(self) -> float:
        return self.height - 6

    @property
    def has_latency(self) -> bool:
        return bool(self.p95)

    @property
    def p50_points(self) -> str:
        return " ".join(f"{p.x},{p.y}" for p in self.p50)

    @property
    def p95_points(self) -> str:
        return " ".join(f"{p.x},{p.y}" for p in self.p95)


def _round(value: float) -> float:
    return round(value, 2)


def _ms(value: float) -> str:
    return duration_label(value / 1000)


def trends(rows: Iterable[BucketStats], bucketing: Bucketing) -> Trends:
    """Rate bars and latency lines of per-bucket stats; buckets without attempts are gaps."""
    plot_width = WIDTH - LEFT - RIGHT_PAD
    plot_height = HEIGHT - TOP - BOTTOM_PAD
    bottom = TOP + plot_height
    starts = bucketing.starts()
    index = {moment: i for i, moment in enumerate(starts)}
    slot = plot_width / len(starts)
    gap = min(2.0, slot * 0.2)
    shown = [row for row in rows if floor_to(row.start, bucketing.unit) in index]
    stats = {index[floor_to(row.start, bucketing.unit)]: row for row in shown if row.total > 0}
    bars = []
    for i, row in sorted(stats.items()):
        height = row.rate * plot_height
        title = (
            f"{bucketing.range_label(row.start)}: {row.failed} of {row.total} finished "
            f"attempt{'' if row.total == 1 else 's'} failed ({row.rate * 100:.1f}%)"
            + (f"; {row.aborted} aborted, not counted" if row.aborted else "")
        )
        bars.append(
            RateBar(
                _round(LEFT + i * slot + gap / 2),
                _round(bottom - height),
                _round(slot - gap),
                _round(height),
                row.rate,
                title,
            )
        )
    timed = {i: row for i, row in stats.items() if row.p50 is not None and row.p95 is not None}
    ceiling = nice_ceiling(int(max((row.p95 or 0 for row in timed.values()), default=0)) + 1)
    scale = plot_height / ceiling
    p50, p95 = [], []
    for i, row in sorted(timed.items()):
        x = _round(LEFT + (i + 0.5) * slot)
        title = (
            f"{bucketing.range_label(row.start)}: p50 {_ms(row.p50 or 0)}, p95 {_ms(row.p95 or 0)}"
        )
        p50.append(Point(x, _round(bottom - (row.p50 or 0) * scale), title))
        p95.append(Point(x, _round(bottom - (row.p95 or 0) * scale), title))
    rate_ticks = [Tick(_round(bottom - f * plot_height), f"{f * 100:.0f}%") for f in (0, 0.5, 1)]
    latency_ticks = [Tick(_round(bottom - v * scale), _ms(v)) for v in (0, ceiling / 2, ceiling)]
    return Trends(
        width=WIDTH,
        height=HEIGHT,
        left=LEFT,
        top=TOP,
        plot_width=_round(plot_width),
        plot_height=_round(plot_height),
        rate_bars=tuple(bars),
        rate_ticks=tuple(rate_ticks),
        p50=tuple(p50),
        p95=tuple(p95),
        latency_ticks=tuple(latency_ticks),
        x_ticks=tuple(x_ticks(bucketing, starts, LEFT, slot)),
        bucket_unit=bucketing.unit,
        total=sum(r.total for r in stats.values()),
        failed=sum(r.failed for r in stats.values()),
        aborted=sum(r.aborted for r in shown),
    )
