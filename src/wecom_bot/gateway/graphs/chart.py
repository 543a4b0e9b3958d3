"""One alert's chart as a PNG, drawn to be read at phone width.

:func:`draw_chart` takes a :class:`ChartRequest` (the series of a range query, the window, the
threshold, the firing moment, the route's time zone) and returns PNG bytes that fit WeCom's
image limit. The layout is computed before anything is drawn, by :func:`plan_chart`, so a
caller or a test can tell where a value lands in the picture. matplotlib (its Agg canvas, no
pyplot, no global setting changed) and numpy are imported on the first call, never when this
module is imported.

Choices a reader of the picture relies on:

- the alert's own series (``highlighted``) are thick and coloured, the others thin and muted;
  at most ``max_series`` are drawn: every highlighted one first, then the others ranked by their
  highest value (lowest for a ``<``/``<=`` threshold, the side that fires), and the legend says
  ``+k more`` for the rest;
- the y axis always includes the threshold, drawn dashed with its operator and value, the side
  that fires lightly shaded;
- the time axis is in the request's zone, named under the axis with its UTC offset;
- no data at all (no series, or nothing finite in the window) still gives a picture, with the
  title, the threshold and the firing moment and the words "无数据" (``no data`` without a CJK
  font): the group learns the query came back empty rather than nothing;
- a CJK font is used when one is installed (Noto/Source Han/WenQuanYi…); without one, or for
  a character no font has (an emoji), the character is written ``?`` instead of a box.
"""

from __future__ import annotations

import io
import math
import threading
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from wecom_bot import limits

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    FloatArray = npt.NDArray[np.float64]

OPERATORS: Final = (">", ">=", "<", "<=", "==", "!=")
WIDTH: Final = 1080
"""Pixels; WeCom shows an image at phone width, which this fills at 3× density."""
DPI: Final = 100
MAX_PNG_BYTES: Final = limits.IMAGE_MAX_BYTES

# Pixel geometry, from the top of the picture down.
_PAD_TOP, _TITLE_LINE, _SUBTITLE_LINE, _GAP = 16, 46, 32, 14
_PLOT_HEIGHT: Final = 450
_LEFT, _RIGHT = 128, 36
_TICKS_BELOW, _ZONE_LINE, _LEGEND_ROW, _PAD_BOTTOM = 40, 38, 36, 16
_TITLE_PX, _TEXT_PX, _TICK_PX, _NOTE_PX, _NO_DATA_PX = 34, 24, 24, 22, 44
_TITLE_UNITS, _SUBTITLE_UNITS, _SUBTITLE_LINES, _LEGEND_UNITS = 58, 82, 2, 40
"""Text budgets in display units: a CJK character counts two, anything else one."""

HIGHLIGHT_COLOURS: Final = ("#1565c0", "#6a1b9a", "#00838f", "#2e7d32", "#ad1457", "#4e342e")
"""The alert's own series, in order; exact colours a test can look for in the picture."""
_OTHER_BASES: Final = (
    "#7f7f7f",
    "#8c564b",
    "#1f77b4",
    "#9467bd",
    "#bcbd22",
    "#17becf",
    "#e377c2",
    "#2ca02c",
    "#ff7f0e",
)
THRESHOLD_COLOUR: Final = "#c62828"
FIRING_COLOUR: Final = "#ef6c00"
_HIGHLIGHT_WIDTH_PX, _OTHER_WIDTH_PX = 5.0, 2.2

_CJK_FAMILIES: Final = (
    "Noto Sans CJK SC",
    "Noto Sans SC",
    "Source Han Sans SC",
    "Source Han Sans CN",
    "WenQuanYi Micro Hei",
    "WenQuanYi Zen Hei",
    "Noto Sans CJK JP",
    "Droid Sans Fallback",
    "AR PL UKai CN",
    "AR PL UMing CN",
    "Microsoft YaHei",
    "PingFang SC",
    "SimHei",
)
_LATIN_FAMILY: Final = "DejaVu Sans"  # shipped inside matplotlib: always there
_X_STEPS: Final = (
    10,
    15,
    30,
    60,
    120,
    300,
    600,
    900,
    1800,
    3600,
    7200,
    10800,
    21600,
    43200,
    86400,
    172800,
    604800,
)


class ChartError(ValueError):
    """The request cannot be drawn (a bad window, operator, zone), or the picture cannot be
    made to fit WeCom's image limit. The message says which."""


@dataclass(frozen=True)
class Series:
    """One series of a range query."""

    labels: Mapping[str, str]
    """Its labels, with or without ``__name__``."""
    points: Sequence[tuple[float, float]]
    """``(unix seconds, value)`` sorted by time; NaN (or ±inf) is a gap."""
    highlighted: bool = False
    """The alert's own series: drawn first, thick and coloured."""


@dataclass(frozen=True)
class Threshold:
    """The comparison of the alert's expression, e.g. ``> 0.9``."""

    op: str
    value: float

    def __post_init__(self) -> None:
        if self.op not in OPERATORS:
            raise ChartError(f"threshold operator {self.op!r} is not one of {' '.join(OPERATORS)}")
        if not math.isfinite(self.value):
            raise ChartError(f"threshold value {self.value!r} is not a finite number")


@dataclass(frozen=True)
class ChartRequest:
    """What to draw; see the module's docstring for how each part shows."""

    title: str
    """One line, e.g. the alertname and the alert's identity; cut with … when long."""
    subtitle: str
    """E.g. the PromQL expression: wrapped on two lines at most, then cut with …."""
    series: Sequence[Series]
    start: float
    """Unix seconds, the window's start."""
    end: float
    """Unix seconds, the window's end."""
    timezone: str
    """IANA name of the zone the time axis is written in, e.g. ``Asia/Shanghai``."""
    threshold: Threshold | None = None
    firing_at: float | None = None
    """The alert's ``startsAt``: a vertical marker when inside the window."""
    max_series: int = 10

    def __post_init__(self) -> None:
        if not (math.isfinite(self.start) and math.isfinite(self.end) and self.start < self.end):
            raise ChartError(
                f"the window must end after it starts (start {self.start}, end {self.end})"
            )
        if self.max_series < 1:
            raise ChartError(f"max_series must be at least 1, not {self.max_series}")
        if self.firing_at is not None and not math.isfinite(self.firing_at):
            raise ChartError(f"firing_at {self.firing_at!r} is not a finite time")


@dataclass(frozen=True)
class ChartPlan:
    """Where everything goes, computed before drawing: the picture's size, the plot area in
    PNG pixels (y down), the data limits, the series drawn and the legend."""

    width: int
    height: int
    plot: tuple[float, float, float, float]
    """Left, top, right, bottom of the plot area, in pixels of the PNG."""
    x_range: tuple[float, float]
    y_range: tuple[float, float]
    drawn: tuple[Series, ...]
    """Highlighted first (in the request's order), then the others by rank."""
    hidden: int
    """Series not drawn (``+k more`` in the legend)."""
    legend: tuple[str, ...]
    """One entry per drawn series (empty when one series is drawn and none hidden)."""
    title: str
    subtitle: tuple[str, ...]
    x_ticks: tuple[tuple[float, str], ...]
    y_ticks: tuple[tuple[float, str], ...]
    zone_note: str
    firing_note: str | None
    threshold_note: str | None
    no_data: bool
    cjk_family: str | None
    colours: tuple[str, ...] = field(default=())
    """The colour of each drawn series, in the order of ``drawn``."""

    def pixel(self, t: float, value: float) -> tuple[float, float]:
        """The PNG pixel (x right, y down) where the point ``(t, value)`` is drawn."""
        left, top, right, bottom = self.plot
        (x0, x1), (y0, y1) = self.x_range, self.y_range
        return (
            left + (t - x0) / (x1 - x0) * (right - left),
            bottom - (value - y0) / (y1 - y0) * (bottom - top),
        )


def draw_chart(request: ChartRequest) -> bytes:
    """The request's chart as PNG bytes, at most :data:`MAX_PNG_BYTES` long.

    Raises :class:`ChartError` for a request that cannot be drawn (unknown zone…); an empty
    or all-NaN result is drawn as "no data", not raised. Safe to call from several threads:
    each call has its own figure and canvas and changes no matplotlib setting."""
    plan, arrays = _prepare(request)
    return _fit(_render(request, plan, arrays), MAX_PNG_BYTES)


def plan_chart(request: ChartRequest) -> ChartPlan:
    """The layout :func:`draw_chart` would draw, without drawing it (it still looks the fonts
    up with matplotlib's font manager, to know whether Chinese can be written)."""
    return _prepare(request)[0]


# -- fonts -------------------------------------------------------------------------------


_font_lock = threading.Lock()
_fonts: dict[str, tuple[str | None, frozenset[int]]] = {}


def cjk_font_family() -> str | None:
    """The name of an installed font family with Chinese glyphs, or None (looked up once)."""
    return _font_setup()[0]


def _font_setup() -> tuple[str | None, frozenset[int]]:
    """The CJK family (or None) and the code points the fonts used can draw."""
    with _font_lock:
        if "setup" not in _fonts:
            from matplotlib import font_manager

            by_name = {entry.name: entry.fname for entry in font_manager.fontManager.ttflist}
            family = next((name for name in _CJK_FAMILIES if name in by_name), None)
            paths: list[str] = [str(font_manager.findfont(_LATIN_FAMILY))]
            if family is not None:
                paths.append(by_name[family])
            covered: set[int] = set()
            for path in paths:
                covered.update(font_manager.get_font(path).get_charmap())
            if family is not None and ord("触") not in covered:
                family = None  # a name we know but a file without the glyphs
            _fonts["setup"] = (family, frozenset(covered))
        return _fonts["setup"]


def _families() -> list[str]:
    family = _font_setup()[0]
    return [family, _LATIN_FAMILY] if family else [_LATIN_FAMILY]


def _drawable(text: str, covered: frozenset[int]) -> str:
    """``text`` with every character no font has written ``?`` (matplotlib would draw a box
    and warn), control characters dropped."""
    out = []
    for ch in text:
        if unicodedata.category(ch).startswith("C"):
            continue
        out.append(ch if ord(ch) in covered or ch.isspace() else "?")
    return "".join(out)


# -- text ----------------------------------------------------------------------------------


def _units(ch: str) -> int:
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def _cut(text: str, budget: int) -> str:
    """``text`` cut to ``budget`` display units, ending with … when cut."""
    if sum(_units(ch) for ch in text) <= budget:
        return text
    out, used = [], 0
    for ch in text:
        if used + _units(ch) > budget - 1:
            break
        out.append(ch)
        used += _units(ch)
    return "".join(out).rstrip() + "…"


def _wrap(text: str, budget: int, lines: int) -> tuple[str, ...]:
    """``text`` on at most ``lines`` lines of ``budget`` units, broken after a space, comma or
    operator near the end of a line when there is one; the last line cut with …."""
    rest, out = text, list[str]()
    while rest and len(out) < lines - 1:
        if sum(_units(ch) for ch in rest) <= budget:
            break
        used, end = 0, 0
        for i, ch in enumerate(rest):
            if used + _units(ch) > budget:
                break
            used += _units(ch)
            end = i + 1
        breaks = [i + 1 for i in range(max(0, end - 20), end) if rest[i] in " ,)}+-*/"]
        cut = breaks[-1] if breaks else end
        out.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest:
        out.append(_cut(rest, budget))
    return tuple(out)


def _label_text(labels: Mapping[str, str], keys: Sequence[str]) -> str:
    return _cut(", ".join(f"{k}={labels.get(k, '')}" for k in keys), _LEGEND_UNITS)


def _legend(drawn: Sequence[Series]) -> list[str]:
    """Each drawn series named by the labels that tell it from the others."""
    keys = sorted({k for s in drawn for k in s.labels})
    varying = [k for k in keys if len({s.labels.get(k, "") for s in drawn}) > 1]
    if not varying:
        varying = [k for k in keys if k != "__name__"] or keys
    return [_label_text(s.labels, varying) or "{}" for s in drawn]


# -- numbers -------------------------------------------------------------------------------

_UNITS: Final = ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"))


def _unit(magnitude: float) -> tuple[float, str]:
    return next(((scale, suffix) for scale, suffix in _UNITS if magnitude >= scale), (1.0, ""))


def compact(value: float) -> str:
    """``value`` in at most four significant digits with a k/M/G/T suffix: 1.5k, 0.9, 2.25M."""
    scale, suffix = _unit(abs(value))
    text = f"{value / scale:.4g}"
    return ("0" if text == "-0" else text) + suffix


def _nice_step(span: float, count: int) -> float:
    raw = span / count
    magnitude = 10.0 ** math.floor(math.log10(raw))
    return next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw * (1 - 1e-9))


def _y_ticks(low: float, high: float) -> tuple[tuple[float, str], ...]:
    """About five round ticks inside ``[low, high]``, each written compactly (0 500 1k 1.5k);
    when that makes two alike, all with the decimals the step needs (1.0002M 1.0004M)."""
    step = _nice_step(high - low, 5)
    first = math.ceil(low / step - 1e-9)
    values = [(first + i) * step for i in range(int((high - low) / step) + 2)]
    values = [0.0 if abs(v) < step * 1e-9 else v for v in values if v <= high + step * 1e-9]
    labels = [compact(v) for v in values]
    if len(set(labels)) < len(labels):
        scale, suffix = _unit(max(abs(v) for v in values))
        exact = step / scale
        fits = (d for d in range(12) if abs(round(exact, d) - exact) <= 1e-9 * exact)
        decimals = next(fits, 12)  # a range tiny beside its values: as many as make sense
        labels = [f"{v / scale:.{decimals}f}{suffix}" for v in values]
    return tuple(zip(values, labels, strict=True))


def _y_range(
    values: Sequence[tuple[float, float]], threshold: Threshold | None
) -> tuple[float, float]:
    """The data's range (each pair a series' min and max) and the threshold, with margins."""
    points = [v for pair in values for v in pair]
    if threshold is not None:
        points.append(threshold.value)
    if not points:
        return 0.0, 1.0
    low, high = min(points), max(points)
    if high - low <= 1e-9 * max(abs(low), abs(high)):  # flat, or flat but for float noise
        pad = abs(low) * 0.1 or 1.0
        return low - pad, high + pad
    margin = (high - low) * 0.08
    bottom = low - margin
    if low >= 0 > bottom:  # a count or a ratio: start at 0 rather than below it
        bottom = 0.0
    return bottom, high + margin


# -- time ----------------------------------------------------------------------------------


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ChartError(
            f"unknown time zone {name!r}: use an IANA name such as Asia/Shanghai or UTC"
        ) from exc


def _offset_text(seconds: float) -> str:
    sign = "+" if seconds >= 0 else "-"
    hours, minutes = divmod(int(abs(seconds)) // 60, 60)
    return f"UTC{sign}{hours}" + (f":{minutes:02d}" if minutes else "")


def _x_ticks(start: float, end: float, zone: ZoneInfo) -> tuple[tuple[float, str], ...]:
    """Ticks on round local times (every 5 min, 1 h, 1 d…), at most five (four with dates)."""
    span = end - start
    multi_day = span > 86400
    most = 4 if multi_day else 5
    step = next((s for s in _X_STEPS if span / s <= most), _X_STEPS[-1])
    offset = _local_offset(start, zone)
    first = math.ceil((start + offset) / step) * step - offset
    if multi_day:
        pattern = "%m-%d" if step >= 86400 else "%m-%d %H:%M"
    else:
        pattern = "%H:%M:%S" if step < 60 else "%H:%M"
    ticks: list[tuple[float, str]] = []
    t = float(first)
    while t <= end and len(ticks) < most + 2:
        # A label in the first few percent would run into the y axis' labels.
        if t - start >= 0.04 * span:
            ticks.append((t, datetime.fromtimestamp(t, zone).strftime(pattern)))
        t += step
    return tuple(ticks)


def _local_offset(t: float, zone: ZoneInfo) -> float:
    delta = datetime.fromtimestamp(t, zone).utcoffset()
    return float(delta.total_seconds()) if delta is not None else 0.0


def _zone_note(request: ChartRequest, zone: ZoneInfo) -> str:
    offset = _offset_text(_local_offset(request.end, zone))
    name = request.timezone if request.timezone.upper() != "UTC" else ""
    where = f"{name} ({offset})" if name else offset
    first = datetime.fromtimestamp(request.start, zone).date()
    last = datetime.fromtimestamp(request.end, zone).date()
    if first == last:
        return f"{first.isoformat()} · {where}"
    return f"{first.isoformat()} – {last.isoformat()} · {where}"


# -- plan ----------------------------------------------------------------------------------


def _arrays(series: Series, start: float, end: float) -> tuple[FloatArray, FloatArray]:
    """The series' times and values inside the window, non-finite values as NaN."""
    import numpy as np

    if not series.points:
        empty = np.empty(0, dtype=np.float64)
        return empty, empty
    data = np.asarray(series.points, dtype=np.float64).reshape(-1, 2)
    times, values = data[:, 0], data[:, 1]
    inside = (times >= start) & (times <= end)
    times, values = times[inside], values[inside]
    values = np.where(np.isfinite(values), values, np.nan)
    return times, values


def _extent(values: FloatArray) -> tuple[float, float] | None:
    import numpy as np

    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return None
    return float(finite.min()), float(finite.max())


def _prepare(request: ChartRequest) -> tuple[ChartPlan, list[tuple[FloatArray, FloatArray]]]:
    zone = _zone(request.timezone)
    family, covered = _font_setup()
    arrays = [_arrays(s, request.start, request.end) for s in request.series]
    extents = [_extent(values) for _, values in arrays]
    low_side = request.threshold is not None and request.threshold.op in ("<", "<=")

    def rank(i: int) -> tuple[int, float]:
        extent = extents[i]
        if extent is None:
            return (1, 0.0)
        return (0, extent[0] if low_side else -extent[1])

    highlighted = [i for i, s in enumerate(request.series) if s.highlighted]
    others = sorted((i for i, s in enumerate(request.series) if not s.highlighted), key=rank)
    chosen = (highlighted + others)[: request.max_series]
    drawn = tuple(request.series[i] for i in chosen)
    hidden = len(request.series) - len(chosen)
    present = [e for e in (extents[i] for i in chosen) if e is not None]
    no_data = not present

    legend: tuple[str, ...] = ()
    if len(drawn) > 1 or hidden:
        legend = tuple(_drawable(text, covered) for text in _legend(drawn))
    colours, seen_high, seen_other = [], 0, 0
    for s in drawn:
        if s.highlighted:
            colours.append(HIGHLIGHT_COLOURS[seen_high % len(HIGHLIGHT_COLOURS)])
            seen_high += 1
        else:
            colours.append(_muted(_OTHER_BASES[seen_other % len(_OTHER_BASES)]))
            seen_other += 1

    title = _drawable(_cut(" ".join(request.title.split()), _TITLE_UNITS), covered)
    subtitle = tuple(
        _drawable(line, covered)
        for line in _wrap(" ".join(request.subtitle.split()), _SUBTITLE_UNITS, _SUBTITLE_LINES)
    )
    y_range = _y_range(present, request.threshold)
    multi_day = request.end - request.start > 86400
    firing_note = None
    if request.firing_at is not None and request.start <= request.firing_at <= request.end:
        moment = datetime.fromtimestamp(request.firing_at, zone)
        clock = moment.strftime("%m-%d %H:%M" if multi_day else "%H:%M")
        firing_note = f"{'触发' if family else 'firing'} {clock}"
    threshold_note = None
    if request.threshold is not None:
        threshold_note = f"{request.threshold.op} {compact(request.threshold.value)}"

    legend_rows = 0
    if legend:
        entries = len(legend) + (1 if hidden else 0)
        widest = max(sum(_units(ch) for ch in text) for text in legend)
        legend_rows = math.ceil(entries / (2 if widest <= 30 else 1))
    top = _PAD_TOP + _TITLE_LINE + len(subtitle) * _SUBTITLE_LINE + _GAP
    bottom = top + _PLOT_HEIGHT
    height = bottom + _TICKS_BELOW + _ZONE_LINE + legend_rows * _LEGEND_ROW + _PAD_BOTTOM
    plan = ChartPlan(
        width=WIDTH,
        height=height,
        plot=(float(_LEFT), float(top), float(WIDTH - _RIGHT), float(bottom)),
        x_range=(request.start, request.end),
        y_range=y_range,
        drawn=drawn,
        hidden=hidden,
        legend=legend,
        title=title,
        subtitle=subtitle,
        x_ticks=_x_ticks(request.start, request.end, zone),
        y_ticks=_y_ticks(*y_range),
        zone_note=_zone_note(request, zone),
        firing_note=firing_note,
        threshold_note=threshold_note,
        no_data=no_data,
        cjk_family=family,
        colours=tuple(colours),
    )
    return plan, [arrays[i] for i in chosen]


def _muted(colour: str) -> str:
    """``colour`` blended towards light grey: the series that are not the alert's own."""
    grey = (0xB0, 0xB0, 0xB0)
    rgb = [int(colour[i : i + 2], 16) for i in (1, 3, 5)]
    mixed = [round(c * 0.45 + g * 0.55) for c, g in zip(rgb, grey, strict=True)]
    return "#" + "".join(f"{c:02x}" for c in mixed)


def downsample(
    times: FloatArray, values: FloatArray, start: float, end: float, buckets: int
) -> tuple[FloatArray, FloatArray]:
    """At most ``2 × buckets`` points drawing the same picture: the window cut in ``buckets``
    equal slices (one or two pixels each), each slice kept as its lowest and highest value, so
    a one-sample spike survives. A slice with no finite value keeps one NaN (a gap)."""
    import numpy as np

    if times.size <= 2 * buckets:
        return times, values
    slot = np.clip(((times - start) / (end - start) * buckets).astype(np.int64), 0, buckets - 1)
    starts = np.flatnonzero(np.r_[True, slot[1:] != slot[:-1]])
    stops = np.r_[starts[1:], slot.size]
    finite = np.isfinite(values)
    low = np.minimum.reduceat(np.where(finite, values, np.inf), starts)
    high = np.maximum.reduceat(np.where(finite, values, -np.inf), starts)
    empty = ~np.logical_or.reduceat(finite, starts)
    low[empty], high[empty] = np.nan, np.nan
    # Rising slices draw low then high, falling ones high then low: the line stays continuous.
    rising = values[starts] <= values[stops - 1]
    first = np.where(rising, low, high)
    second = np.where(rising, high, low)
    out_t = np.column_stack((times[starts], times[stops - 1])).ravel()
    out_v = np.column_stack((first, second)).ravel()
    return out_t, out_v


# -- drawing -------------------------------------------------------------------------------


def _render(
    request: ChartRequest, plan: ChartPlan, arrays: Sequence[tuple[FloatArray, FloatArray]]
) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.font_manager import FontProperties
    from matplotlib.lines import Line2D
    from matplotlib.transforms import blended_transform_factory

    families = _families()

    def font(px: float) -> FontProperties:
        return FontProperties(family=families, size=px * 72 / DPI)

    def points(px: float) -> float:
        return px * 72 / DPI

    width, height = plan.width, plan.height
    figure = Figure(figsize=(width / DPI, height / DPI), dpi=DPI, facecolor="white")
    FigureCanvasAgg(figure)
    left, top, right, bottom = plan.plot
    axes = figure.add_axes(
        (left / width, 1 - bottom / height, (right - left) / width, (bottom - top) / height)
    )
    axes.set_xlim(*plan.x_range)
    axes.set_ylim(*plan.y_range)
    axes.set_facecolor("white")
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    for side in ("left", "bottom"):
        axes.spines[side].set_color("#9e9e9e")
    axes.grid(True, color="#e6e6e6", linewidth=points(1.5))
    axes.set_axisbelow(True)
    axes.tick_params(colors="#424242", length=points(6), width=points(1.5))
    axes.set_xticks(
        [t for t, _ in plan.x_ticks],
        [text for _, text in plan.x_ticks],
        fontproperties=font(_TICK_PX),
    )
    axes.set_yticks(
        [v for v, _ in plan.y_ticks],
        [text for _, text in plan.y_ticks],
        fontproperties=font(_TICK_PX),
    )
    axes.set_xlim(*plan.x_range)
    axes.set_ylim(*plan.y_range)

    y = 1 - _PAD_TOP / height
    figure.text(
        left / width,
        y,
        plan.title,
        va="top",
        ha="left",
        color="#212121",
        fontproperties=font(_TITLE_PX),
        parse_math=False,
    )
    y -= _TITLE_LINE / height
    for line in plan.subtitle:
        figure.text(
            left / width,
            y,
            line,
            va="top",
            ha="left",
            color="#616161",
            fontproperties=font(_TEXT_PX),
            parse_math=False,
        )
        y -= _SUBTITLE_LINE / height
    figure.text(
        right / width,
        1 - (bottom + _TICKS_BELOW) / height,
        plan.zone_note,
        va="top",
        ha="right",
        color="#616161",
        fontproperties=font(_NOTE_PX),
        parse_math=False,
    )

    threshold = request.threshold
    if threshold is not None and plan.threshold_note is not None:
        low, high = plan.y_range
        if threshold.op in (">", ">="):
            axes.axhspan(threshold.value, high, color=THRESHOLD_COLOUR, alpha=0.07, linewidth=0)
        elif threshold.op in ("<", "<="):
            axes.axhspan(low, threshold.value, color=THRESHOLD_COLOUR, alpha=0.07, linewidth=0)
        axes.axhline(
            threshold.value,
            color=THRESHOLD_COLOUR,
            linestyle=(0, (6, 4)),
            linewidth=points(3),
            zorder=3,
        )
        axes.text(
            0.995,
            threshold.value,
            plan.threshold_note,
            transform=blended_transform_factory(axes.transAxes, axes.transData),
            ha="right",
            va="bottom",
            color=THRESHOLD_COLOUR,
            fontproperties=font(_TEXT_PX),
            parse_math=False,
            zorder=6,
            bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 2},
        )

    if request.firing_at is not None and plan.firing_note is not None:
        axes.axvline(request.firing_at, color=FIRING_COLOUR, linewidth=points(3), zorder=4)
        late = (request.firing_at - plan.x_range[0]) / (plan.x_range[1] - plan.x_range[0]) > 0.75
        axes.text(
            request.firing_at,
            0.985,
            f" {plan.firing_note} ",
            transform=blended_transform_factory(axes.transData, axes.transAxes),
            ha="right" if late else "left",
            va="top",
            color=FIRING_COLOUR,
            fontproperties=font(_TEXT_PX),
            parse_math=False,
            zorder=6,
            bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1},
        )

    buckets = int(right - left)
    order = sorted(range(len(plan.drawn)), key=lambda i: plan.drawn[i].highlighted)
    lines: dict[int, Line2D] = {}
    for i in order:  # the others first, so the alert's own series are drawn on top of them
        series, (times, values) = plan.drawn[i], arrays[i]
        times, values = downsample(times, values, *plan.x_range, buckets)
        strong = series.highlighted
        (drawn_line,) = axes.plot(
            times,
            values,
            color=plan.colours[i],
            solid_joinstyle="round",
            linewidth=points(_HIGHLIGHT_WIDTH_PX if strong else _OTHER_WIDTH_PX),
            zorder=5 if strong else 2,
        )
        lines[i] = drawn_line
    handles = [lines[i] for i in range(len(plan.drawn))]

    if plan.no_data:
        axes.text(
            0.5,
            0.5,
            "无数据" if plan.cjk_family else "no data",
            transform=axes.transAxes,
            ha="center",
            va="center",
            color="#9e9e9e",
            fontproperties=font(_NO_DATA_PX),
            parse_math=False,
        )

    if plan.legend:
        labels = list(plan.legend)
        if plan.hidden:
            handles.append(Line2D([], [], linestyle="none"))
            labels.append(f"+{plan.hidden} more")
        columns = 2 if max(sum(_units(ch) for ch in t) for t in plan.legend) <= 30 else 1
        legend = figure.legend(
            handles,
            labels,
            loc="upper left",
            ncols=columns,
            frameon=False,
            bbox_to_anchor=(left / width - 0.01, 1 - (bottom + _TICKS_BELOW + _ZONE_LINE) / height),
            prop=font(_TEXT_PX),
            handlelength=1.6,
            labelspacing=0.3,
            columnspacing=1.5,
            borderaxespad=0,
            borderpad=0.2,
        )
        for text in legend.get_texts():
            text.set_parse_math(False)

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def _fit(png: bytes, limit: int) -> bytes:
    """``png`` when within ``limit`` bytes; else the same picture in 256 colours; else an
    error (a chart of a few lines never comes near: this is the guarantee, not the path)."""
    if len(png) <= limit:
        return png
    from PIL import Image

    with Image.open(io.BytesIO(png)) as image:
        smaller = image.convert("RGB").quantize(256)
    buffer = io.BytesIO()
    smaller.save(buffer, format="PNG", optimize=True)
    if buffer.tell() > limit:
        raise ChartError(
            f"the chart is {buffer.tell()} bytes even in 256 colours, over the "
            f"{limit}-byte image limit"
        )
    return buffer.getvalue()
