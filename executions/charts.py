"""Server-rendered SVG charts: pure geometry, no Django models, no database.

Views aggregate counts in SQL and hand them here; templates draw the returned shapes as
`<svg>` with `<title>` tooltips. Keeping geometry pure makes it testable without a browser
and keeps every chart the same: one bucketing rule, one colour and one pattern per category.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from executions.choices import CATEGORY_COLOURS, Category

MINUTE = "minute"
HOUR = "hour"
DAY = "day"
_STEPS = {MINUTE: timedelta(minutes=1), HOUR: timedelta(hours=1), DAY: timedelta(days=1)}
# Above these spans the next coarser unit is used; both keep a chart under ~180 bars, which
# still leaves a few pixels per bar at the default width.
MAX_MINUTE_SPAN = timedelta(hours=3)
MAX_HOUR_SPAN = timedelta(days=7)

UNCATEGORISED = ""


# --- Category styles --------------------------------------------------------------------------


@dataclass(frozen=True)
class CategoryStyle:
    """How one category is drawn everywhere: colour, a pattern (so colour is not the only cue)."""

    value: str
    label: str
    colour: str
    ink: str  # pattern strokes: black or white, whichever contrasts with the colour
    pattern_size: int
    paths: tuple[str, ...] = ()  # SVG path data, stroked with `ink`
    circles: tuple[tuple[float, float, float], ...] = ()  # (cx, cy, r), filled with `ink`

    @property
    def pattern_id(self) -> str:
        return f"pat-{self.value or 'none'}"

    @property
    def fill(self) -> str:
        return f"url(#{self.pattern_id})"


# One distinct texture per category. Solid fills are used once (client errors); every other
# texture differs in orientation or shape, so two adjacent segments never look alike in greyscale.
_Shapes = tuple[int, tuple[str, ...], tuple[tuple[float, float, float], ...]]
_PATTERNS: dict[str, _Shapes] = {
    Category.TIMEOUT: (6, ("M-1,1 l2,-2 M0,6 l6,-6 M5,7 l2,-2",), ()),
    Category.AUTH: (6, ("M0,0 L6,6 M6,0 L0,6",), ()),
    Category.PERMISSIONS: (6, (), ((3, 3, 1.2),)),
    Category.MISSING_HEADER: (5, ("M0,2.5 H5",), ()),
    Category.MISSING_PARAMETER: (5, ("M2.5,0 V5",), ()),
    Category.RATE_LIMITED: (6, ("M-1,5 l2,2 M0,0 l6,6 M5,-1 l2,2",), ()),
    Category.CLIENT_ERROR: (6, (), ()),
    Category.SERVER_ERROR: (6, (), ((1.5, 1.5, 0.9), (4.5, 4.5, 0.9))),
    Category.NETWORK: (6, ("M0,4 L3,1 L6,4",), ()),
    Category.PAYLOAD_TOO_LARGE: (8, (), ((4, 4, 2.2),)),
    Category.INVALID_REQUEST: (6, ("M0,0 H3 V3 H0 Z M3,3 H6 V6 H3 Z",), ()),
    Category.UNKNOWN: (8, ("M0,8 L8,0",), ()),
}


def _ink_for(colour: str) -> str:
    """Black or white strokes, by the colour's relative luminance (WCAG formula)."""
    hex_colour = colour.lstrip("#")
    if len(hex_colour) != 6:
        return "#000000"
    channels = [int(hex_colour[i : i + 2], 16) / 255 for i in (0, 2, 4)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    luminance = 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]
    return "#000000" if luminance > 0.25 else "#FFFFFF"


def _style(value: str, label: str, colour: str) -> CategoryStyle:
    size, paths, circles = _PATTERNS.get(value, (8, ("M0,8 L8,0",), ()))
    return CategoryStyle(value, label, colour, _ink_for(colour), size, paths, circles)


CATEGORY_STYLES: dict[str, CategoryStyle] = {
    c.value: _style(c.value, c.label, CATEGORY_COLOURS[c]) for c in Category
}
# Attempts not (yet) classified still get drawn, in a neutral grey without texture.
UNCATEGORISED_STYLE = CategoryStyle(UNCATEGORISED, "Not classified", "#DDDDDD", "#000000", 6)
# Stacking order: the fixed vocabulary order, so a category sits at the same height everywhere.
CATEGORY_ORDER: tuple[str, ...] = (*(c.value for c in Category), UNCATEGORISED)


def category_style(value: str) -> CategoryStyle:
    return CATEGORY_STYLES.get(value, UNCATEGORISED_STYLE)


def all_styles() -> list[CategoryStyle]:
    """Every style, for the page-wide `<defs>` block and the full legend."""
    return [*CATEGORY_STYLES.values(), UNCATEGORISED_STYLE]


# --- Time buckets -----------------------------------------------------------------------------


def floor_to(moment: datetime, unit: str) -> datetime:
    """Start of the UTC minute/hour/day holding `moment` (the same edges SQL's Trunc uses)."""
    moment = moment.astimezone(UTC)
    if unit == MINUTE:
        return moment.replace(second=0, microsecond=0)
    if unit == HOUR:
        return moment.replace(minute=0, second=0, microsecond=0)
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


@dataclass(frozen=True)
class Bucketing:
    """Adaptive buckets for a window: minutes for short windows, then hours, then days."""

    unit: str
    start: datetime  # the window as asked (bucket edges are floored from it)
    end: datetime

    @property
    def step(self) -> timedelta:
        return _STEPS[self.unit]

    @property
    def first(self) -> datetime:
        return floor_to(self.start, self.unit)

    def starts(self) -> list[datetime]:
        first, step = self.first, self.step
        count = max(1, math.ceil((self.end - first) / step))
        return [first + i * step for i in range(count)]

    @property
    def span(self) -> tuple[datetime, datetime]:
        """The time the buckets cover (first edge to last edge)."""
        starts = self.starts()
        return starts[0], starts[-1] + self.step

    def label(self, moment: datetime) -> str:
        moment = moment.astimezone(UTC)
        if self.unit == MINUTE:
            return moment.strftime("%H:%M")
        if self.unit == HOUR:
            return moment.strftime("%d %b %H:00")
        return moment.strftime("%d %b")

    def range_label(self, start: datetime) -> str:
        end = start + self.step
        if self.unit == DAY:
            return start.astimezone(UTC).strftime("%Y-%m-%d") + " UTC"
        fmt = "%Y-%m-%d %H:%M"
        return f"{start.astimezone(UTC).strftime(fmt)}–{end.astimezone(UTC).strftime('%H:%M')} UTC"


def choose_bucketing(start: datetime, end: datetime) -> Bucketing:
    if end <= start:
        raise ValueError("the window must end after it starts")
    span = end - start
    if span <= MAX_MINUTE_SPAN:
        unit = MINUTE
    elif span <= MAX_HOUR_SPAN:
        unit = HOUR
    else:
        unit = DAY
    return Bucketing(unit, start.astimezone(UTC), end.astimezone(UTC))


# --- Stacked bars -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Segment:
    y: float
    height: float
    category: str
    label: str
    count: int
    fill: str


@dataclass(frozen=True)
class Bar:
    x: float
    width: float
    start: datetime
    total: int
    segments: tuple[Segment, ...]
    title: str


@dataclass(frozen=True)
class Tick:
    position: float
    label: str
    # SVG text-anchor: a label at the right edge ends there, or half of it is cut off.
    anchor: str = "middle"


@dataclass(frozen=True)
class Band:
    """A shaded stretch of the time axis (e.g. the connection was de-authorized)."""

    x: float
    width: float
    title: str


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    left: float
    top: float
    plot_width: float
    plot_height: float
    bars: tuple[Bar, ...]
    y_ticks: tuple[Tick, ...]
    x_ticks: tuple[Tick, ...]
    bands: tuple[Band, ...]
    total: int
    bucket_unit: str
    legend: tuple[CategoryStyle, ...] = field(default=())

    @property
    def bottom(self) -> float:
        return self.top + self.plot_height

    @property
    def right(self) -> float:
        return self.left + self.plot_width

    @property
    def is_empty(self) -> bool:
        return self.total == 0

    @property
    def tick_x(self) -> float:
        return self.left - 6

    @property
    def label_y(self) -> float:
        return self.height - 6


def nice_ceiling(value: int) -> int:
    """Smallest 1/2/5 × 10ⁿ at or above value, so axis labels are round numbers."""
    if value <= 1:
        return 1
    magnitude: int = 10 ** math.floor(math.log10(value))
    return next(f * magnitude for f in (1, 2, 5, 10) if f * magnitude >= value)


def _round(value: float) -> float:
    return round(value, 2)


def x_ticks(
    bucketing: Bucketing, starts: Sequence[datetime], left: float, slot: float
) -> list[Tick]:
    wanted = 6
    every = max(1, math.ceil(len(starts) / wanted))
    return [
        Tick(_round(left + i * slot), bucketing.label(moment))
        for i, moment in enumerate(starts)
        if i % every == 0
    ]


def _bar(
    start: datetime,
    per_category: Mapping[str, int],
    x: float,
    width: float,
    bottom: float,
    scale: float,
    bucketing: Bucketing,
) -> Bar | None:
    total = sum(per_category.values())
    if total <= 0:
        return None  # empty bucket: drawn as a gap, not as a zero-height bar
    segments = []
    y = bottom
    for category in CATEGORY_ORDER:
        count = per_category.get(category, 0)
        if count <= 0:
            continue
        style = category_style(category)
        height = count * scale
        y -= height
        segments.append(
            Segment(_round(y), _round(height), category, style.label, count, style.fill)
        )
    parts = ", ".join(f"{s.label} {s.count}" for s in reversed(segments))
    noun = "failure" if total == 1 else "failures"
    title = f"{bucketing.range_label(start)}: {total} {noun} — {parts}"
    return Bar(_round(x), _round(width), start, total, tuple(segments), title)


def stacked_bars(
    counts: Iterable[tuple[datetime, str, int]],
    bucketing: Bucketing,
    *,
    width: int = 760,
    height: int = 200,
    intervals: Iterable[tuple[datetime, datetime | None, str]] = (),
) -> Chart:
    """Stacked bars of (bucket start, category, count) rows, one slot per bucket.

    Rows outside the buckets are ignored; missing buckets stay gaps. `intervals` are shaded
    behind the bars (open-ended ones run to the end of the window).
    """
    left, top, right_pad, bottom_pad = 44.0, 8.0, 8.0, 24.0
    plot_width, plot_height = width - left - right_pad, height - top - bottom_pad
    starts = bucketing.starts()
    index = {moment: i for i, moment in enumerate(starts)}
    per_bucket: list[dict[str, int]] = [{} for _ in starts]
    for moment, category, count in counts:
        i = index.get(floor_to(moment, bucketing.unit))
        if i is not None:
            key = category if category in CATEGORY_STYLES else UNCATEGORISED
            per_bucket[i][key] = per_bucket[i].get(key, 0) + int(count)
    peak = max((sum(b.values()) for b in per_bucket), default=0)
    ceiling = nice_ceiling(peak)
    scale = plot_height / ceiling
    slot = plot_width / len(starts)
    gap = min(2.0, slot * 0.2)
    bottom = top + plot_height
    bars = [
        bar
        for i, moment in enumerate(starts)
        if (
            bar := _bar(
                moment,
                per_bucket[i],
                left + i * slot + gap / 2,
                slot - gap,
                bottom,
                scale,
                bucketing,
            )
        )
    ]
    used = {c for b in per_bucket for c, n in b.items() if n > 0}
    # A middle line only where it lands on a whole number (not at 2.5 of 5).
    levels = [0, ceiling // 2, ceiling] if ceiling % 2 == 0 else [0, ceiling]
    y_ticks = [Tick(_round(bottom - v * scale), str(v)) for v in levels]
    return Chart(
        width=width,
        height=height,
        left=left,
        top=top,
        plot_width=_round(plot_width),
        plot_height=_round(plot_height),
        bars=tuple(bars),
        y_ticks=tuple(y_ticks),
        x_ticks=tuple(x_ticks(bucketing, starts, left, slot)),
        bands=tuple(shade_intervals(intervals, bucketing, left, plot_width)),
        total=sum(b.total for b in bars),
        bucket_unit=bucketing.unit,
        legend=tuple(category_style(c) for c in CATEGORY_ORDER if c in used),
    )


def shade_intervals(
    intervals: Iterable[tuple[datetime, datetime | None, str]],
    bucketing: Bucketing,
    left: float,
    plot_width: float,
) -> list[Band]:
    """Map time intervals onto the x axis, clipped to the buckets' span."""
    span_start, span_end = bucketing.span
    seconds = (span_end - span_start).total_seconds()
    bands = []
    for start, end, title in intervals:
        clipped_start = max(start, span_start)
        clipped_end = min(end or span_end, span_end)
        if clipped_end <= clipped_start:
            continue
        x0 = left + (clipped_start - span_start).total_seconds() / seconds * plot_width
        x1 = left + (clipped_end - span_start).total_seconds() / seconds * plot_width
        bands.append(Band(_round(x0), _round(max(x1 - x0, 1.0)), title))
    return bands


# --- Sparklines and small bars ----------------------------------------------------------------


@dataclass(frozen=True)
class Sparkline:
    width: int
    height: int
    points: str
    area: str
    peak: int
    total: int
    title: str


def sparkline(
    values: Sequence[int], *, width: int = 120, height: int = 24, title: str = ""
) -> Sparkline:
    """A line through the values (zeros included: a quiet day is data, not a gap)."""
    pad = 1.5
    values = list(values) or [0]
    peak = max(values)
    inner_w, inner_h = width - 2 * pad, height - 2 * pad
    step = inner_w / max(1, len(values) - 1)
    coords = [
        (_round(pad + i * step), _round(pad + inner_h - (v / peak * inner_h if peak else 0)))
        for i, v in enumerate(values)
    ]
    if len(coords) == 1:
        coords.append((_round(width - pad), coords[0][1]))
    points = " ".join(f"{x},{y}" for x, y in coords)
    base = _round(pad + inner_h)
    area = f"M{coords[0][0]},{base} L" + " L".join(f"{x},{y}" for x, y in coords)
    area += f" L{coords[-1][0]},{base} Z"
    return Sparkline(width, height, points, area, peak, sum(values), title)


@dataclass(frozen=True)
class Lane:
    """One attempt on the execution's time axis (a Gantt row)."""

    y: float
    x: float
    width: float
    label: str
    fill: str
    title: str

    @property
    def bar_height(self) -> float:
        return LANE_HEIGHT - 5

    @property
    def text_y(self) -> float:
        return self.y + (LANE_HEIGHT - 5) / 2


LANE_HEIGHT = 18


@dataclass(frozen=True)
class Lanes:
    width: int
    height: int
    left: float
    lanes: tuple[Lane, ...]
    ticks: tuple[Tick, ...]

    @property
    def label_x(self) -> float:
        return self.left - 6

    @property
    def axis_y(self) -> float:
        return self.height - 6


def attempt_lanes(
    items: Sequence[tuple[str, datetime, datetime | None, str, str]],
    *,
    width: int = 760,
    row_height: int = LANE_HEIGHT,
) -> Lanes:
    """Gantt rows of (label, start, end, fill, title); zero-length attempts stay visible (2 px)."""
    left, right_pad = 150.0, 8.0
    plot_width = width - left - right_pad
    if not items:
        return Lanes(width, row_height, left, (), ())
    origin = min(item[1] for item in items)
    finish = max((item[2] or item[1]) for item in items)
    seconds = max((finish - origin).total_seconds(), 1.0)
    lanes = []
    for row, (label, start, end, fill, title) in enumerate(items):
        x0 = left + (start - origin).total_seconds() / seconds * plot_width
        x1 = left + ((end or start) - origin).total_seconds() / seconds * plot_width
        lanes.append(
            Lane(row * row_height + 2, _round(x0), _round(max(x1 - x0, 2.0)), label, fill, title)
        )
    ticks = [
        Tick(
            _round(left + f * plot_width),
            f"+{duration_label(seconds * f)}",
            "end" if f == 1.0 else "middle",
        )
        for f in (0.0, 0.25, 0.5, 0.75, 1.0)
    ]
    return Lanes(width, len(items) * row_height + 20, left, tuple(lanes), tuple(ticks))


def duration_label(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def proportions(counts: Sequence[int], *, width: int = 160) -> list[float]:
    """Bar widths proportional to counts (the largest gets the full width)."""
    peak = max(counts, default=0)
    return [_round(c / peak * width) if peak else 0.0 for c in counts]
