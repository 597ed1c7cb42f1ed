"""SVG chart geometry: adaptive buckets, gaps, stacking, shading, sparklines, category styles."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from executions import charts
from executions.choices import CATEGORY_COLOURS, Category

T0 = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("span", "unit"),
    [
        (timedelta(minutes=30), charts.MINUTE),
        (timedelta(hours=3), charts.MINUTE),
        (timedelta(hours=3, minutes=1), charts.HOUR),
        (timedelta(days=7), charts.HOUR),
        (timedelta(days=7, hours=1), charts.DAY),
        (timedelta(days=90), charts.DAY),
    ],
)
def test_bucket_unit_adapts_to_the_window(span: timedelta, unit: str) -> None:
    assert charts.choose_bucketing(T0, T0 + span).unit == unit


def test_buckets_start_on_utc_boundaries_and_cover_the_window() -> None:
    bucketing = charts.choose_bucketing(T0 + timedelta(minutes=17), T0 + timedelta(hours=24))
    starts = bucketing.starts()
    assert starts[0] == T0
    assert starts[-1] + bucketing.step >= T0 + timedelta(hours=24)
    assert all(b - a == timedelta(hours=1) for a, b in itertools.pairwise(starts))


def test_an_empty_window_is_refused() -> None:
    with pytest.raises(ValueError, match="must end after"):
        charts.choose_bucketing(T0, T0)


def hours(n: int) -> charts.Bucketing:
    """Hourly buckets over n hours (built directly: short spans would choose minutes)."""
    return charts.Bucketing(charts.HOUR, T0, T0 + timedelta(hours=n))


def test_empty_buckets_are_gaps_not_zero_bars() -> None:
    chart = charts.stacked_bars(
        [(T0, "auth", 2), (T0 + timedelta(hours=3), "timeout", 1)], hours(6)
    )
    assert [bar.start for bar in chart.bars] == [T0, T0 + timedelta(hours=3)]
    assert chart.bars[1].x > chart.bars[0].x + 2 * chart.bars[0].width  # a visible gap
    assert chart.total == 3


def test_segments_stack_in_the_fixed_category_order() -> None:
    chart = charts.stacked_bars(
        [(T0, "server_error", 3), (T0, "timeout", 1), (T0, "auth", 2)], hours(4)
    )
    bar = chart.bars[0]
    assert [s.category for s in bar.segments] == ["timeout", "auth", "server_error"]
    # Bottom-up and touching: each segment starts where the one below ends.
    for below, above in zip(bar.segments, bar.segments[1:], strict=False):
        assert above.y + above.height == pytest.approx(below.y, abs=0.02)
    assert bar.segments[0].y + bar.segments[0].height == pytest.approx(chart.bottom)
    assert sum(s.height for s in bar.segments) == pytest.approx(
        6 / 10 * chart.plot_height, abs=0.05
    )


def test_bar_titles_carry_the_counts() -> None:
    chart = charts.stacked_bars([(T0, "auth", 2), (T0, "timeout", 1)], hours(2))
    title = chart.bars[0].title
    assert "3 failures" in title
    assert "Authentication 2" in title and "Timeout 1" in title
    assert "12:00–13:00 UTC" in title


def test_rows_are_counted_in_their_bucket_and_unknown_categories_are_kept() -> None:
    chart = charts.stacked_bars(
        [(T0 + timedelta(minutes=59), "", 1), (T0 + timedelta(minutes=5), "made-up", 2)], hours(2)
    )
    assert len(chart.bars) == 1
    assert chart.bars[0].segments[0].category == charts.UNCATEGORISED
    assert chart.bars[0].total == 3


def test_rows_outside_the_window_are_ignored() -> None:
    chart = charts.stacked_bars([(T0 - timedelta(hours=1), "auth", 5)], hours(2))
    assert chart.bars == ()
    assert chart.is_empty


def test_legend_lists_only_present_categories_in_order() -> None:
    chart = charts.stacked_bars([(T0, "server_error", 1), (T0, "auth", 1)], hours(2))
    assert [s.value for s in chart.legend] == ["auth", "server_error"]


@pytest.mark.parametrize(
    ("value", "ceiling"), [(0, 1), (1, 1), (3, 5), (7, 10), (11, 20), (450, 500)]
)
def test_axis_ceiling_is_a_round_number(value: int, ceiling: int) -> None:
    assert charts.nice_ceiling(value) == ceiling


def test_shaded_intervals_are_clipped_to_the_window() -> None:
    bucketing = hours(10)
    chart = charts.stacked_bars(
        [],
        bucketing,
        intervals=[
            (T0 - timedelta(hours=5), T0 + timedelta(hours=5), "DEAUTHORIZED"),
            (T0 + timedelta(hours=8), None, "still DEAUTHORIZED"),
            (T0 - timedelta(hours=9), T0 - timedelta(hours=8), "long ago"),
        ],
    )
    first, second = chart.bands
    assert first.x == pytest.approx(chart.left)
    assert first.width == pytest.approx(chart.plot_width / 2, abs=0.05)
    assert second.x + second.width == pytest.approx(chart.right, abs=0.05)
    assert [b.title for b in chart.bands] == ["DEAUTHORIZED", "still DEAUTHORIZED"]


def test_sparkline_spans_the_box_and_keeps_zeros() -> None:
    spark = charts.sparkline([0, 4, 0, 2], width=100, height=20)
    points = [tuple(map(float, p.split(","))) for p in spark.points.split()]
    assert len(points) == 4
    assert points[0][0] == pytest.approx(1.5) and points[-1][0] == pytest.approx(98.5)
    assert points[1][1] == pytest.approx(1.5)  # the peak touches the top
    assert points[0][1] == points[2][1] == pytest.approx(18.5)  # zeros on the baseline
    assert spark.total == 6 and spark.peak == 4
    assert spark.area.startswith("M") and spark.area.endswith("Z")


def test_sparkline_of_nothing_is_flat() -> None:
    spark = charts.sparkline([])
    assert spark.peak == 0 and len(spark.points.split()) == 2


def test_every_category_has_its_own_colour_and_texture() -> None:
    styles = [charts.CATEGORY_STYLES[c.value] for c in Category]
    assert [s.colour for s in styles] == [CATEGORY_COLOURS[c] for c in Category]
    textures = {(s.pattern_size, s.paths, s.circles) for s in styles}
    assert len(textures) == len(styles)
    assert len({s.pattern_id for s in charts.all_styles()}) == len(Category) + 1


@pytest.mark.parametrize(("colour", "ink"), [("#000000", "#FFFFFF"), ("#F0E442", "#000000")])
def test_pattern_ink_contrasts_with_the_fill(colour: str, ink: str) -> None:
    assert charts._ink_for(colour) == ink


def test_attempt_lanes_place_attempts_on_one_time_axis() -> None:
    lanes = charts.attempt_lanes(
        [
            ("Call #1", T0, T0 + timedelta(seconds=1), "red", "a"),
            ("Call #2", T0 + timedelta(seconds=3), T0 + timedelta(seconds=4), "red", "b"),
            ("Call #3", T0 + timedelta(seconds=4), None, "red", "c"),
        ]
    )
    first, second, third = lanes.lanes
    assert first.x == pytest.approx(lanes.left)
    assert second.x > first.x + first.width
    assert third.width == 2.0  # no end: still visible
    assert lanes.ticks[-1].label == "+4.0 s"
