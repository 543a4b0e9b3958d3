"""The alert chart (issue 28): a PNG read at phone width, decoded here with Pillow and checked
pixel by pixel against the layout :func:`plan_chart` gives."""

from __future__ import annotations

import io
import math
import random
import subprocess
import sys
import threading
import unicodedata
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.images import keep_screenshot
from wecom_bot.gateway.graphs.chart import (
    _CJK_FAMILIES,
    _LEGEND_UNITS,
    _SUBTITLE_UNITS,
    _TITLE_UNITS,
    HIGHLIGHT_COLOURS,
    MAX_PNG_BYTES,
    THRESHOLD_COLOUR,
    ChartError,
    ChartPlan,
    ChartRequest,
    Series,
    Threshold,
    _fit,
    _units,
    _y_ticks,
    cjk_font_family,
    compact,
    downsample,
    draw_chart,
    plan_chart,
)

SAMPLE = Path(__file__).parents[2] / "docs" / "graph-sample.png"
START = 1_796_600_000.0  # 2026-12-06 23:33:20 UTC, 07:33:20 in Shanghai
HOUR = 3600.0


def rgb(colour: str) -> tuple[int, int, int]:
    return (int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16))


def decode(png: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG"
    return image.convert("RGB")


def rows_of(image: Image.Image, colour: str, x: int) -> list[int]:
    """The rows of column ``x`` painted exactly ``colour``."""
    column = np.asarray(image)[:, x, :]
    return np.flatnonzero(np.all(column == rgb(colour), axis=1)).tolist()


def count(image: Image.Image, colour: str) -> int:
    """How many pixels of ``image`` are exactly ``colour``."""
    return int(np.all(np.asarray(image) == rgb(colour), axis=2).sum())


def steady(value: float, *, start: float = START, span: float = HOUR, step: float = 15.0):
    return [(start + i * step, value) for i in range(int(span / step) + 1)]


def cpu_alert(others: int = 5, points: int = 240, seed: int = 1) -> ChartRequest:
    """A typical alert: its own series crossing 0.9, a few neighbours below."""
    rng = random.Random(seed)
    step = HOUR / points

    def wave(base: float) -> list[tuple[float, float]]:
        return [
            (START + i * step, base + 0.08 * math.sin(i / 30) + rng.gauss(0, 0.015))
            for i in range(points)
        ]

    own = [(START + i * step, 0.6 + 0.4 * i / points + rng.gauss(0, 0.01)) for i in range(points)]
    series = [
        Series({"__name__": "cpu", "instance": f"web-{k}:9100", "job": "node"}, wave(0.5 + k / 40))
        for k in range(others)
    ]
    series.insert(1, Series({"__name__": "cpu", "instance": "db-1:9100", "job": "node"}, own, True))
    return ChartRequest(
        title="HighCPU 主机 CPU 使用率过高 · db-1:9100",
        subtitle='avg by (instance) (rate(node_cpu_seconds_total{mode!="idle"}[5m])) > 0.9',
        series=series,
        start=START,
        end=START + HOUR,
        timezone="Asia/Shanghai",
        threshold=Threshold(">", 0.9),
        firing_at=START + 0.75 * HOUR,
    )


def test_importing_the_module_loads_neither_matplotlib_nor_numpy() -> None:
    probe = (
        "import sys, wecom_bot.gateway.graphs.chart\n"
        "print(' '.join(m for m in ('matplotlib', 'numpy', 'PIL') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.split() == []


def test_a_font_with_chinese_glyphs_is_found_on_this_machine() -> None:
    family = cjk_font_family()
    assert family in _CJK_FAMILIES
    assert plan_chart(cpu_alert()).cjk_family == family


def test_chinese_is_drawn_with_its_own_glyphs_not_boxes() -> None:
    """Missing glyphs are all the same box: two titles with different characters would give
    the same pixels. They differ here; the same title twice gives the same pixels."""

    def title_strip(title: str) -> bytes:
        request = ChartRequest(title, "", [], START, START + HOUR, "UTC")
        plan = plan_chart(request)
        image = decode(draw_chart(request))
        return image.crop((0, 0, plan.width, int(plan.plot[1]))).tobytes()

    disk, memory = title_strip("磁盘使用率过高"), title_strip("内存使用率过高")
    assert disk != memory
    assert disk == title_strip("磁盘使用率过高")
    assert plan_chart(ChartRequest("磁盘使用率", "", [], START, START + 1, "UTC")).title == (
        "磁盘使用率"
    )


def test_a_typical_alert_is_a_phone_sized_png_with_every_part_drawn() -> None:
    request = cpu_alert()
    plan = plan_chart(request)
    png = draw_chart(request)
    image = decode(png)
    assert image.size == (plan.width, plan.height)
    assert plan.width >= 600 and len(png) <= MAX_PNG_BYTES
    assert count(image, HIGHLIGHT_COLOURS[0]) > 1000  # the thick line of the alert's series
    assert plan.colours[0] == HIGHLIGHT_COLOURS[0] and plan.drawn[0].highlighted
    for muted in plan.colours[1:]:
        assert muted not in HIGHLIGHT_COLOURS and count(image, muted) > 50
    assert count(image, THRESHOLD_COLOUR) > 200  # the dashed line and its label
    assert plan.threshold_note == "> 0.9"
    assert plan.firing_note == "触发 08:18"  # 23:33:20 + 45 min UTC = 08:18:20 in Shanghai
    assert plan.zone_note == "2026-12-07 · Asia/Shanghai (UTC+8)"
    assert [label for _, label in plan.x_ticks] == ["07:45", "08:00", "08:15", "08:30"]
    assert plan.legend[0] == "instance=db-1:9100"  # job and __name__ are the same everywhere
    assert draw_chart(request) == png  # the same request draws the same picture


def test_the_alert_series_is_drawn_at_the_pixel_of_its_values() -> None:
    """A step from 2 to 8 half-way: a quarter in, the line is at the row of 2; three quarters
    in, at the row of 8 and not at the row of 2."""
    points = [(t, 2.0 if t < START + HOUR / 2 else 8.0) for t, _ in steady(0)]
    request = ChartRequest("Step", "x", [Series({"a": "b"}, points, True)], START, START + HOUR,
                           "UTC")  # fmt: skip
    plan = plan_chart(request)
    image = decode(draw_chart(request))
    colour = HIGHLIGHT_COLOURS[0]
    for fraction, value, other in ((0.25, 2.0, 8.0), (0.75, 8.0, 2.0)):
        x, y = plan.pixel(START + fraction * HOUR, value)
        rows = rows_of(image, colour, round(x))
        assert rows and abs(sum(rows) / len(rows) - y) <= 1.5, (rows, y)
        assert abs(plan.pixel(0, other)[1] - y) > 50
        assert all(abs(row - plan.pixel(0, other)[1]) > 5 for row in rows)


def test_the_y_axis_reaches_a_threshold_far_from_the_data() -> None:
    request = ChartRequest(
        "Latency", "p99 > 100", [Series({"a": "b"}, steady(1.5), True)], START, START + HOUR,
        "UTC", threshold=Threshold(">", 100),
    )  # fmt: skip
    plan = plan_chart(request)
    low, high = plan.y_range
    assert low <= 1.5 and high > 100
    image = decode(draw_chart(request))
    x, y = plan.pixel(START + 0.3 * HOUR, 100)
    assert any(abs(row - y) <= 2 for row in rows_of(image, THRESHOLD_COLOUR, round(x)))


def test_a_low_threshold_shows_the_lowest_others_and_the_hidden_count() -> None:
    others = [Series({"pod": f"p{k:02d}"}, steady(float(k))) for k in range(15)]
    own = Series({"pod": "mine"}, steady(3.5), highlighted=True)
    request = ChartRequest(
        "Free", "free < 1", [*others, own], START, START + HOUR, "UTC",
        threshold=Threshold("<", 1), max_series=5,
    )  # fmt: skip
    plan = plan_chart(request)
    assert [s.labels["pod"] for s in plan.drawn] == ["mine", "p00", "p01", "p02", "p03"]
    assert plan.hidden == 11
    high = ChartRequest("Busy", "", [*others, own], START, START + HOUR, "UTC", max_series=3)
    assert [s.labels["pod"] for s in plan_chart(high).drawn] == ["mine", "p14", "p13"]
    png = draw_chart(request)
    assert len(png) <= MAX_PNG_BYTES


def test_the_legend_names_series_by_the_labels_that_differ_cut_to_length() -> None:
    long = "x" * 80
    drawn = [
        Series({"__name__": "up", "job": "api", "instance": "a:1", "zone": "cn"}, steady(1), True),
        Series({"__name__": "up", "job": "api", "instance": "b:1", "zone": long}, steady(0)),
    ]
    plan = plan_chart(ChartRequest("Up", "up", drawn, START, START + HOUR, "UTC"))
    assert plan.legend[0] == "instance=a:1, zone=cn"
    assert plan.legend[1].startswith("instance=b:1, zone=xxx") and plan.legend[1].endswith("…")
    assert sum(_units(ch) for ch in plan.legend[1]) <= _LEGEND_UNITS
    alone = plan_chart(ChartRequest("Up", "up", drawn[:1], START, START + HOUR, "UTC"))
    assert alone.legend == ()  # one series: the title names it


@pytest.mark.parametrize("series", [[], [Series({"a": "b"}, [(START + 60, math.nan)], True)]])
def test_no_data_is_still_a_picture_that_says_so(series: Sequence[Series]) -> None:
    request = ChartRequest("目标下线", "up == 0", series, START, START + HOUR, "Asia/Shanghai",
                           threshold=Threshold("==", 0), firing_at=START + 600)  # fmt: skip
    plan = plan_chart(request)
    assert plan.no_data
    assert plan.y_range[0] < 0 < plan.y_range[1]  # around the threshold
    image = decode(draw_chart(request))
    assert image.width == plan.width
    left, top, right, bottom = (round(v) for v in plan.plot)
    middle = image.crop(((left + right) // 2 - 80, (top + bottom) // 2 - 40,
                         (left + right) // 2 + 80, (top + bottom) // 2 + 40))  # fmt: skip
    assert count(middle, "#9e9e9e") > 50  # the words 无数据


def test_gaps_and_infinities_do_not_break_the_axis() -> None:
    points = [(t, math.inf if i == 3 else (math.nan if 10 < i < 20 else 5.0))
              for i, (t, _) in enumerate(steady(0))]  # fmt: skip
    request = ChartRequest("Gap", "", [Series({}, points, True)], START, START + HOUR, "UTC")
    plan = plan_chart(request)
    assert plan.y_range[0] < 5 < plan.y_range[1] < 10
    image = decode(draw_chart(request))
    x, _ = plan.pixel(START + 15 * 15, 5.0)  # inside the gap
    assert rows_of(image, HIGHLIGHT_COLOURS[0], round(x)) == []
    x, y = plan.pixel(START + 40 * 15, 5.0)
    assert rows_of(image, HIGHLIGHT_COLOURS[0], round(x))


def test_ten_series_of_ten_thousand_noisy_points_fit_and_keep_a_spike() -> None:
    rng = np.random.default_rng(7)
    count_points, span = 10_000, 7 * 86400.0
    times = START + np.arange(count_points) * span / count_points
    series = []
    for k in range(10):
        values = 1000 * k + rng.random(count_points) * 5000
        if k == 0:
            values[6_543] = 90_000.0  # one sample, one bucket among a thousand
        series.append(Series({"pod": f"api-{k}"}, list(zip(times.tolist(), values.tolist(),
                                                            strict=True)), k == 0))  # fmt: skip
    request = ChartRequest("Burst", "rate(errors[1m]) > 1e5", series, START, START + span,
                           "Asia/Shanghai", threshold=Threshold(">", 1e5))  # fmt: skip
    plan = plan_chart(request)
    png = draw_chart(request)
    assert len(png) <= MAX_PNG_BYTES
    image = decode(png)
    assert image.size == (plan.width, plan.height)
    spike_x, spike_y = plan.pixel(float(times[6_543]), 90_000.0)
    near = [y for x in range(round(spike_x) - 2, round(spike_x) + 3)
            for y in rows_of(image, HIGHLIGHT_COLOURS[0], x)]  # fmt: skip
    assert near and min(near) <= spike_y + 4
    assert [label for _, label in plan.x_ticks][0].count("-") == 1  # dates on a week


def test_downsampling_keeps_each_slice_extremes_and_gaps() -> None:
    times = np.arange(10_000, dtype=np.float64)
    values = np.sin(times / 50)
    values[5_000] = 40.0
    values[7_000:7_100] = np.nan
    out_t, out_v = downsample(times, values, 0.0, 10_000.0, 500)
    assert out_t.size <= 1_000 and np.all(np.diff(out_t) >= 0)
    assert np.nanmax(out_v) == 40.0
    assert np.nanmin(out_v) == values[np.isfinite(values)].min()
    in_gap = (out_t >= 7_000) & (out_t < 7_100)
    assert in_gap.any() and np.all(np.isnan(out_v[in_gap]))
    small_t, small_v = downsample(times[:100], values[:100], 0.0, 100.0, 500)
    assert np.array_equal(small_t, times[:100])
    assert np.array_equal(small_v, values[:100])


def test_numbers_are_compact_and_ticks_distinct() -> None:
    assert [compact(v) for v in (0.9, 1500, 2_250_000, -3e9, 0, 12.5)] == [
        "0.9", "1.5k", "2.25M", "-3G", "0", "12.5",
    ]  # fmt: skip
    assert [label for _, label in _y_ticks(0, 2000)] == ["0", "500", "1k", "1.5k", "2k"]
    assert [label for _, label in _y_ticks(0, 1)] == ["0", "0.2", "0.4", "0.6", "0.8", "1"]
    assert [label for _, label in _y_ticks(-0.3, 0.3)] == ["-0.2", "0", "0.2"]
    crowded = [label for _, label in _y_ticks(1_000_000, 1_000_010)]
    assert crowded[:2] == ["1.000000M", "1.000002M"] and len(set(crowded)) == len(crowded)
    assert len(_y_ticks(1e9, 1e9 + 1e-6)) >= 2  # a range tiny beside its values
    flat = ChartRequest("f", "", [Series({}, [(START, 1e9), (START + 60, 1e9 + 1e-6)], True)],
                        START, START + HOUR, "UTC")  # fmt: skip
    assert [label for _, label in plan_chart(flat).y_ticks] == ["900M", "950M", "1G", "1.05G",
                                                                 "1.1G"]  # fmt: skip
    tiny = [label for _, label in _y_ticks(0.00001, 0.00005)]
    assert len(set(tiny)) == len(tiny) >= 3


def test_the_time_axis_is_in_the_route_zone() -> None:
    def plan(zone: str) -> ChartPlan:
        return plan_chart(ChartRequest("t", "", [], START, START + HOUR, zone,
                                       firing_at=START + 1000))  # fmt: skip

    assert plan("UTC").zone_note == "2026-12-06 – 2026-12-07 · UTC+0"
    assert plan("UTC").firing_note == "触发 23:50"
    assert plan("Asia/Kolkata").zone_note.endswith("Asia/Kolkata (UTC+5:30)")
    assert plan("Asia/Kolkata").firing_note == "触发 05:20"
    assert plan("America/New_York").zone_note.endswith("(UTC-5)")
    assert [t for t, _ in plan("Asia/Kolkata").x_ticks][0] % 900 == 0  # :00 / :15 / :30 / :45


def test_a_long_expression_wraps_on_two_lines_and_is_cut() -> None:
    expression = " + ".join(f'sum(rate(metric_{k}{{job="j"}}[5m]))' for k in range(12))
    plan = plan_chart(ChartRequest("t", expression + "\n  > 5", [], START, START + HOUR, "UTC"))
    assert len(plan.subtitle) == 2 and plan.subtitle[1].endswith("…")
    assert all(sum(_units(ch) for ch in line) <= _SUBTITLE_UNITS for line in plan.subtitle)
    assert plan.subtitle[0].startswith("sum(rate(metric_0")


def test_text_no_font_has_and_dollar_signs_draw_without_warnings() -> None:
    """pytest turns warnings into errors here: a missing glyph or a mathtext parse of ``$``
    would fail the draw."""
    request = ChartRequest('🔥 cost $5 over $x^2$', '{job="$job"} > 1', [], START, START + HOUR,
                           "UTC")  # fmt: skip
    plan = plan_chart(request)
    assert plan.title == "? cost $5 over $x^2$"
    assert decode(draw_chart(request)).width == plan.width


@pytest.mark.parametrize(
    ("build", "words"),
    [
        (lambda: ChartRequest("t", "", [], START, START + HOUR, "Mars/Olympus"), "Mars/Olympus"),
        (lambda: ChartRequest("t", "", [], START, START, "UTC"), "end after it starts"),
        (lambda: ChartRequest("t", "", [], START, START + 1, "UTC", max_series=0), "max_series"),
        (lambda: Threshold("=~", 1), "'=~'"),
        (lambda: Threshold(">", math.nan), "finite"),
        (lambda: ChartRequest("t", "", [], START, START + 1, "UTC", firing_at=math.inf), "firing"),
    ],
)
def test_requests_that_cannot_be_drawn_raise_a_clear_error(build, words: str) -> None:
    with pytest.raises(ChartError, match=words.replace("$", r"\$").replace("^", r"\^")):
        draw_chart(build())


def test_a_picture_over_the_limit_is_reduced_to_256_colours_or_refused() -> None:
    noise = np.random.default_rng(3).integers(0, 256, (900, 900, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noise).save(buffer, format="PNG")
    big = buffer.getvalue()
    assert len(big) > 2_000_000
    reduced = _fit(big, 2_000_000)
    assert len(reduced) <= 2_000_000 and decode(reduced).size == (900, 900)
    small = draw_chart(cpu_alert())
    assert _fit(small, MAX_PNG_BYTES) is small
    with pytest.raises(ChartError, match="image limit"):
        _fit(big, 100_000)


def test_threads_drawing_at_once_draw_what_one_thread_draws() -> None:
    requests = [cpu_alert(seed=seed) for seed in range(4)]
    alone = [draw_chart(r) for r in requests]
    together: dict[int, bytes] = {}

    def draw(i: int) -> None:
        together[i] = draw_chart(requests[i])

    threads = [threading.Thread(target=draw, args=(i,)) for i in range(len(requests))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert [together[i] for i in range(len(requests))] == alone


def test_the_sample_in_the_docs() -> None:
    png = draw_chart(cpu_alert())
    keep_screenshot(SAMPLE, png)
    assert decode(SAMPLE.read_bytes()).size == decode(png).size


HOSTILE = [
    "$x^2$ $\\frac{a}{b}$",  # mathtext: parsed, it would draw a formula or raise
    "$" + "{" * 500,  # an unbalanced formula
    "$\\sqrt{" * 200 + "$",  # a deeply nested one
    "\\$\\\\$",
    "line one\nline two\r\n\tthree",
    "right\u202eto left\u2066isolate\u2069",
    "zero\u200bwidth\ufeffmarks\u00ad",
    "lone surrogate \ud800 here",
    "private use \ue000\U000f0000",
    "🔥🚨👩‍💻 emoji",
    "<@all> **bold** <font color=red>x</font>",
    "宽" * 5_000 + "x" * 50_000,  # far longer than any line
]


@pytest.mark.parametrize("text", HOSTILE, ids=range(len(HOSTILE)))
def test_sender_text_is_written_as_plain_short_lines(text: str) -> None:
    """The title, the expression and label values come from the alert's sender: whatever they
    hold, the chart is drawn (pytest turns any warning into an error here), as plain text,
    without control or format characters, within its length."""
    series = [
        Series({"pod": text, "job": "a"}, steady(1.0), True),
        Series({"pod": "other", "job": text}, steady(2.0)),
    ]
    request = ChartRequest(text, text, series, START, START + HOUR, "UTC")
    plan = plan_chart(request)
    written = [plan.title, *plan.subtitle, *plan.legend]
    for line in written:
        assert not any(unicodedata.category(ch).startswith("C") for ch in line)
        assert "\n" not in line and "\r" not in line
    assert sum(_units(ch) for ch in plan.title) <= _TITLE_UNITS
    assert all(sum(_units(ch) for ch in line) <= _SUBTITLE_UNITS for line in plan.subtitle)
    assert all(sum(_units(ch) for ch in line) <= _LEGEND_UNITS for line in plan.legend)
    if text.startswith("$x^2$"):
        assert plan.title == text  # the dollars stay as written
    png = draw_chart(request)
    assert decode(png).size == (plan.width, plan.height) and len(png) <= MAX_PNG_BYTES


def test_thousands_of_series_draw_the_bounded_few() -> None:
    series = [Series({"pod": f"p{k}"}, steady(float(k % 97), step=360), k == 4_321)
              for k in range(5_000)]  # fmt: skip
    request = ChartRequest("Many", "x", series, START, START + HOUR, "UTC", max_series=10)
    plan = plan_chart(request)
    assert len(plan.drawn) == 10 and plan.hidden == 4_990
    assert plan.drawn[0].labels["pod"] == "p4321"
    assert len(draw_chart(request)) <= MAX_PNG_BYTES
