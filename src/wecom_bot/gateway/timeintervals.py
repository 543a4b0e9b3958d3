"""Time intervals, Alertmanager-style: when a route is active and when it is muted.

Configuration (YAML)::

    time_intervals:
      business_hours:                     # a name holds a list; any matching interval counts
        - weekdays: ["monday:friday"]
          times:
            - {start_time: "09:00", end_time: "18:00"}
          location: Asia/Shanghai         # optional; the gateway's timezone by default
      night_shift:
        - weekdays: ["monday:friday"]
          times:
            - {start_time: "22:00", end_time: "06:00"}   # overnight: into the next morning
      year_end:
        - months: ["december"]
          days_of_month: ["-1"]            # the last day of the month
          years: ["2026:2027"]

Fields of one interval (all optional; an interval without any matches always):
    ``times``
        ``start_time`` inclusive, ``end_time`` exclusive, ``"HH:MM"`` in the interval's
        ``location``; ``"24:00"`` is allowed as an end. A range whose end is before its start
        runs **across midnight**, and belongs to the day it starts on: ``monday:friday``
        with ``22:00``-``06:00`` covers Friday 22:00 to Saturday 06:00, but not Monday 02:00
        (Sunday night was not selected).
    ``weekdays``
        ``"monday"`` or ``"monday:friday"``; a range may wrap (``"friday:monday"``).
    ``days_of_month``
        ``"1:5"``, ``"15"``, ``"-1"`` (the last day), ``"-7:-1"`` (the last week), ``"1:-1"``.
    ``months``
        ``"january:march"`` or ``"1:3"``; a range may wrap (``"november:february"``).
    ``years``
        ``"2026"`` or ``"2026:2027"``.
    ``location``
        an IANA time zone name; times, dates and weekdays are read on that zone's wall clock,
        so ``09:00`` stays ``09:00`` across a daylight-saving change, and a time the clock
        skips (``02:30`` in Berlin on the last Sunday of March) does not occur that day.

YAML 1.1 (PyYAML) reads an unquoted ``17:00`` as the number 1020 (base 60); a number is
therefore accepted for ``start_time``/``end_time`` as minutes after midnight, which is what
base 60 gives. Unquoted ranges of numbers (``1:5``) come out as nonsense numbers and are
rejected with a hint to quote them.

Route semantics (:class:`RouteSchedule`, as in Alertmanager): a route is **muted** while
the moment is inside any of its ``mute_time_intervals``, or outside all of its
``active_time_intervals`` when it has some; otherwise it is **active**. What happens to a
notification that arrives muted is a :class:`MutedAction`.

Changes of state are found by :meth:`TimeInterval.next_change`: the state only changes at
a configured wall-clock minute, at local midnight, or when the zone's UTC offset changes,
so the search jumps from one such candidate to the next instead of walking minutes.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from enum import StrEnum
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..errors import ConfigError

__all__ = [
    "DEFAULT_HORIZON",
    "MutedAction",
    "RouteSchedule",
    "RouteState",
    "TimeInterval",
    "TimeIntervals",
    "TimeRange",
    "load_zone",
    "parse_time_of_day",
]

DEFAULT_HORIZON = timedelta(days=366)
"""How far :meth:`TimeInterval.next_change` looks ahead before answering ``None``."""

RouteState = Literal["active", "muted"]

_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_MONTHS = (
    "january", "february", "march", "april", "may", "june",
    "july", "august", "september", "october", "november", "december",
)  # fmt: skip
_INTERVAL_KEYS = ("times", "weekdays", "days_of_month", "months", "years", "location")
_TIME_KEYS = ("start_time", "end_time")
_CLOCK = re.compile(r"(\d{1,2}):(\d{2})")
_DAY_MINUTES = 24 * 60
_MINUTE_US = 60_000_000
_DAY_US = _DAY_MINUTES * _MINUTE_US
_ONE_DAY = timedelta(days=1)


def _nearest(name: str, options: Iterable[str]) -> str:
    options = list(options)
    close = difflib.get_close_matches(name, options, n=1, cutoff=0.5)
    return f"did you mean {close[0]!r}?" if close else f"known: {', '.join(options)}"


def _reject_unknown(data: Mapping[Any, Any], allowed: Sequence[str], field: str) -> None:
    for key in data:
        if key not in allowed:
            raise ConfigError(f"{field}.{key}: unknown key; {_nearest(str(key), allowed)}")


def _as_list(value: Any, field: str) -> list[Any]:
    if isinstance(value, str | int) and not isinstance(value, bool):
        return [value]
    if not isinstance(value, list | tuple):
        raise ConfigError(f"{field}: must be a list")
    return list(value)


def _aware(moment: datetime) -> datetime:
    if not isinstance(moment, datetime):
        raise TypeError(f"expected a datetime, got {type(moment).__name__}")
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("moment must be timezone-aware (a naive datetime has no instant)")
    return moment.astimezone(UTC)


def zone_setting(
    data: Mapping[str, Any], key: str, default: str | ZoneInfo, field: str
) -> ZoneInfo:
    """The time zone configured under ``data[key]``, else ``default`` (a name or a zone).

    Raises:
        ConfigError: the zone is unknown; the message names ``field.key``.
    """
    if key in data:
        return load_zone(data[key], f"{field}.{key}")
    if isinstance(default, ZoneInfo):
        return default
    return load_zone(default, f"{field}.{key}")


def load_zone(name: Any, field: str) -> ZoneInfo:
    """The IANA time zone ``name``.

    Raises:
        ConfigError: not a string or not a known zone; the message names ``field``.
    """
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{field}: must be an IANA time zone name like Asia/Shanghai")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"{field}: unknown time zone {name!r} (use an IANA name like Asia/Shanghai)"
        ) from None


def parse_time_of_day(value: Any, field: str, *, allow_end_of_day: bool = False) -> int:
    """Parse ``"HH:MM"`` into minutes after midnight.

    Args:
        value: ``"09:30"``, or a number of minutes (what YAML 1.1 makes of an unquoted
            ``09:30``'s cousins such as ``17:00``).
        field: where the value sits in the configuration, for errors.
        allow_end_of_day: accept ``"24:00"`` (1440), the end of the day.

    Raises:
        ConfigError: not a time of day; the message names ``field``.
    """
    top = _DAY_MINUTES if allow_end_of_day else _DAY_MINUTES - 1
    if isinstance(value, int) and not isinstance(value, bool):
        if 0 <= value <= top:
            return value
        raise ConfigError(f'{field}: {value} is not a time of day; write it as "HH:MM"')
    if isinstance(value, str):
        match = _CLOCK.fullmatch(value.strip())
        if match:
            hours, minutes = int(match.group(1)), int(match.group(2))
            total = hours * 60 + minutes
            if minutes < 60 and total <= top:
                return total
    last = "24:00" if allow_end_of_day else "23:59"
    raise ConfigError(f'{field}: {value!r} is not a time of day "HH:MM" (00:00 to {last})')


@dataclass(frozen=True)
class TimeRange:
    """A range of wall-clock minutes: ``start`` inclusive, ``end`` exclusive.

    Attributes:
        start: minutes after midnight, 0-1439.
        end: minutes after midnight, 0-1440; before ``start`` for a range across midnight.
    """

    start: int
    end: int

    @property
    def overnight(self) -> bool:
        """Whether the range runs past midnight into the next day."""
        return self.end < self.start

    def __str__(self) -> str:
        return (
            f"{self.start // 60:02d}:{self.start % 60:02d}-{self.end // 60:02d}:{self.end % 60:02d}"
        )


def _split(item: Any, field: str) -> tuple[str, str]:
    if isinstance(item, int) and not isinstance(item, bool):
        text = str(item)
        return text, text
    if not isinstance(item, str) or not item.strip():
        raise ConfigError(f'{field}: {item!r} is not a value or a range "a:b"')
    first, sep, last = item.strip().partition(":")
    if not sep:
        return first, first
    if not first.strip() or not last.strip() or ":" in last:
        raise ConfigError(f'{field}: {item!r} is not a range "a:b"')
    return first.strip(), last.strip()


def _yaml_hint(item: Any) -> str:
    if isinstance(item, int) and not isinstance(item, bool) and item >= 60:
        return ' (YAML reads an unquoted range like 1:5 as a number: quote it, "1:5")'
    return ""


def _cyclic(first: int, last: int, size: int) -> Iterator[int]:
    """``first`` to ``last`` inclusive on a cycle of ``size`` values numbered from 0."""
    value = first
    while True:
        yield value
        if value == last:
            return
        value = (value + 1) % size


def _parse_weekdays(value: Any, field: str) -> frozenset[int]:
    days: set[int] = set()
    for i, item in enumerate(_as_list(value, field)):
        where = f"{field}[{i}]"
        ends = []
        for name in _split(item, where):
            key = name.lower()
            if key not in _WEEKDAYS:
                raise ConfigError(f"{where}: {name!r} is not a weekday; {_nearest(key, _WEEKDAYS)}")
            ends.append(_WEEKDAYS.index(key))
        days.update(_cyclic(ends[0], ends[1], 7))
    return frozenset(days)


def _parse_months(value: Any, field: str) -> frozenset[int]:
    months: set[int] = set()
    for i, item in enumerate(_as_list(value, field)):
        where = f"{field}[{i}]"
        ends = []
        for name in _split(item, where):
            if name.isdigit() and 1 <= int(name) <= 12:
                ends.append(int(name) - 1)
            elif name.lower() in _MONTHS:
                ends.append(_MONTHS.index(name.lower()))
            else:
                hint = _yaml_hint(item) or (
                    "" if name.isdigit() else f"; {_nearest(name.lower(), _MONTHS)}"
                )
                raise ConfigError(f"{where}: {name!r} is not a month (1-12 or a name){hint}")
        months.update(m + 1 for m in _cyclic(ends[0], ends[1], 12))
    return frozenset(months)


def _parse_days_of_month(value: Any, field: str) -> tuple[tuple[int, int], ...]:
    ranges = []
    for i, item in enumerate(_as_list(value, field)):
        where = f"{field}[{i}]"
        ends = []
        for text in _split(item, where):
            try:
                day = int(text)
            except ValueError:
                day = 0
            if not (1 <= abs(day) <= 31):
                raise ConfigError(
                    f"{where}: {text!r} is not a day of the month "
                    f"(1 to 31, or -1 for the last day to -31){_yaml_hint(item)}"
                )
            ends.append(day)
        first, last = ends
        if first < 0 < last:
            raise ConfigError(
                f"{where}: {item!r} runs from a day counted from the end to one counted from "
                "the start; write it as two ranges"
            )
        if (first > 0) == (last > 0) and first > last:
            raise ConfigError(f"{where}: {item!r} ends before it starts")
        ranges.append((first, last))
    return tuple(ranges)


def _parse_years(value: Any, field: str) -> tuple[tuple[int, int], ...]:
    ranges = []
    for i, item in enumerate(_as_list(value, field)):
        where = f"{field}[{i}]"
        ends = []
        for text in _split(item, where):
            if not text.isdigit() or not 1 <= int(text) <= 9999:
                raise ConfigError(f"{where}: {text!r} is not a year")
            ends.append(int(text))
        if ends[0] > ends[1]:
            raise ConfigError(f"{where}: {item!r} ends before it starts")
        ranges.append((ends[0], ends[1]))
    return tuple(ranges)


def _parse_times(value: Any, field: str) -> tuple[TimeRange, ...]:
    if not isinstance(value, list | tuple):
        raise ConfigError(f"{field}: must be a list of {{start_time, end_time}}")
    ranges = []
    for i, item in enumerate(value):
        where = f"{field}[{i}]"
        if not isinstance(item, Mapping):
            raise ConfigError(f"{where}: must be a mapping with start_time and end_time")
        _reject_unknown(item, _TIME_KEYS, where)
        for key in _TIME_KEYS:
            if key not in item:
                raise ConfigError(f"{where}.{key}: is required")
        start = parse_time_of_day(item["start_time"], f"{where}.start_time")
        end = parse_time_of_day(item["end_time"], f"{where}.end_time", allow_end_of_day=True)
        if start == end:
            raise ConfigError(
                f"{where}.end_time: equals start_time, an empty range "
                "(leave out times to cover whole days)"
            )
        ranges.append(TimeRange(start, end))
    return tuple(ranges)


@dataclass(frozen=True)
class TimeInterval:
    """One interval: times of day on selected days, in one time zone.

    Build it with :meth:`from_config`. ``None`` for a day-level field means "any".

    Attributes:
        times: wall-clock ranges; empty means the whole day.
        weekdays: selected weekdays, 0 = Monday.
        days_of_month: ranges of days, negative counted from the end (-1 = last day).
        months: selected months, 1 = January.
        years: ranges of years, inclusive.
        location: the time zone the interval is read in.
    """

    times: tuple[TimeRange, ...] = ()
    weekdays: frozenset[int] | None = None
    days_of_month: tuple[tuple[int, int], ...] | None = None
    months: frozenset[int] | None = None
    years: tuple[tuple[int, int], ...] | None = None
    location: ZoneInfo = ZoneInfo("UTC")

    @classmethod
    def from_config(
        cls,
        data: Mapping[str, Any],
        *,
        default_location: str | ZoneInfo = "Asia/Shanghai",
        field: str = "time_interval",
    ) -> TimeInterval:
        """Build an interval from its YAML/JSON form (see the module documentation).

        Args:
            data: the mapping with ``times``, ``weekdays``, ``days_of_month``, ``months``,
                ``years`` and ``location``, each optional.
            default_location: the zone when ``location`` is not given (the gateway's).
            field: where the interval sits in the configuration, for errors.

        Raises:
            ConfigError: an unknown key (with the nearest valid one) or a bad value; the
                message names the field, e.g. ``time_intervals.work[0].times[0].start_time``.
        """
        if not isinstance(data, Mapping):
            raise ConfigError(f"{field}: must be a mapping of {', '.join(_INTERVAL_KEYS)}")
        _reject_unknown(data, _INTERVAL_KEYS, field)
        location = zone_setting(data, "location", default_location, field)

        def optional(key: str, parse: Callable[[Any, str], Any]) -> Any:
            value = data.get(key)
            return None if value is None else parse(value, f"{field}.{key}")

        times = optional("times", _parse_times)
        return cls(
            times=times or (),
            weekdays=optional("weekdays", _parse_weekdays),
            days_of_month=optional("days_of_month", _parse_days_of_month),
            months=optional("months", _parse_months),
            years=optional("years", _parse_years),
            location=location,
        )

    def day_selected(self, day: date) -> bool:
        """Whether the day-level fields (weekdays, days of month, months, years) select ``day``."""
        if self.weekdays is not None and day.weekday() not in self.weekdays:
            return False
        if self.months is not None and day.month not in self.months:
            return False
        if self.years is not None and not any(lo <= day.year <= hi for lo, hi in self.years):
            return False
        if self.days_of_month is not None:
            length = _days_in_month(day)
            for first, last in self.days_of_month:
                lo = first if first > 0 else length + 1 + first
                hi = last if last > 0 else length + 1 + last
                if lo <= day.day <= hi:
                    break
            else:
                return False
        return True

    def contains(self, moment: datetime) -> bool:
        """Whether the interval holds at ``moment`` (a timezone-aware datetime).

        Raises:
            ValueError: ``moment`` is naive.
        """
        local = _aware(moment).astimezone(self.location)
        day = local.date()
        if not self.times:
            return self.day_selected(day)
        minute = local.hour * 60 + local.minute
        for span in self.times:
            if not span.overnight:
                if span.start <= minute < span.end and self.day_selected(day):
                    return True
            elif minute >= span.start:
                if self.day_selected(day):
                    return True
            elif minute < span.end and self.day_selected(day - _ONE_DAY):
                return True
        return False

    def next_change(
        self, moment: datetime, *, horizon: timedelta = DEFAULT_HORIZON
    ) -> datetime | None:
        """The first instant after ``moment`` at which :meth:`contains` answers differently.

        Args:
            moment: a timezone-aware datetime.
            horizon: how far to look; beyond it the answer is ``None``.

        Returns:
            The instant (in ``moment``'s time zone), or ``None`` when the state does not
            change within ``horizon``.
        """
        return _next_change(self.contains, self._next_candidate, moment, horizon)

    def _boundaries(self, day: date) -> list[int]:
        """Minutes (0 < m < 1440) of local ``day`` at which the state may change."""
        if not self.times:
            return []
        today = self.day_selected(day)
        yesterday = self.day_selected(day - _ONE_DAY)
        found: set[int] = set()
        for span in self.times:
            if today:
                found.add(span.start)
                if not span.overnight:
                    found.add(span.end)
            if span.overnight and yesterday:
                found.add(span.end)
        return sorted(m for m in found if 0 < m < _DAY_MINUTES)

    def _next_candidate(self, instant: datetime) -> datetime:
        """The next instant after ``instant`` (UTC) at which the state may change.

        Between ``instant`` and the answer the state is constant: no configured minute, no
        local midnight and no change of UTC offset lies strictly between them.
        """
        local = instant.astimezone(self.location)
        now_us = (
            (local.hour * 60 + local.minute) * _MINUTE_US
            + local.second * 1_000_000
            + local.microsecond
        )
        target = next(
            (m * _MINUTE_US for m in self._boundaries(local.date()) if m * _MINUTE_US > now_us),
            _DAY_US,
        )
        candidate = instant + timedelta(microseconds=target - now_us)
        if candidate.astimezone(self.location).utcoffset() != local.utcoffset():
            candidate = _offset_change(instant, candidate, self.location)
        return candidate


def _days_in_month(day: date) -> int:
    following = date(day.year + day.month // 12, day.month % 12 + 1, 1)
    return (following - timedelta(days=1)).day


def _offset_change(after: datetime, before: datetime, zone: tzinfo) -> datetime:
    """The instant in (``after``, ``before``] at which ``zone``'s UTC offset changes.

    Offsets change at whole seconds, so a bisection over whole seconds finds it exactly.
    """
    offset = after.astimezone(zone).utcoffset()
    lo, hi = math.floor(after.timestamp()), math.ceil(before.timestamp())
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if datetime.fromtimestamp(mid, UTC).astimezone(zone).utcoffset() == offset:
            lo = mid
        else:
            hi = mid
    return datetime.fromtimestamp(hi, UTC)


def _next_change(
    contains: Callable[[datetime], bool],
    next_candidate: Callable[[datetime], datetime] | None,
    moment: datetime,
    horizon: timedelta,
) -> datetime | None:
    instant = _aware(moment)
    if next_candidate is None:
        return None
    state = contains(instant)
    limit = instant + horizon
    while True:
        instant = next_candidate(instant)
        if instant > limit:
            return None
        if contains(instant) != state:
            return instant.astimezone(moment.tzinfo)


def _earliest(intervals: Sequence[TimeInterval]) -> Callable[[datetime], datetime] | None:
    if not intervals:
        return None

    def candidate(instant: datetime) -> datetime:
        return min(interval._next_candidate(instant) for interval in intervals)

    return candidate


class TimeIntervals:
    """Named sets of intervals, as configured under ``time_intervals``.

    A name holds a list of :class:`TimeInterval`; the name matches when any of them does.

    Args:
        intervals: name -> intervals.
    """

    def __init__(self, intervals: Mapping[str, Sequence[TimeInterval]] | None = None) -> None:
        self._intervals = {name: tuple(items) for name, items in (intervals or {}).items()}

    @classmethod
    def from_config(
        cls,
        data: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None,
        *,
        default_location: str | ZoneInfo = "Asia/Shanghai",
        field: str = "time_intervals",
    ) -> TimeIntervals:
        """Build the named sets from ``{name: [interval, ...]}``.

        Alertmanager's own form, a list of ``{name: ..., time_intervals: [...]}``, is
        accepted too, so a section can be copied from an Alertmanager configuration.

        Args:
            data: the ``time_intervals`` section (``None`` or empty: no intervals).
            default_location: the zone of intervals without ``location`` (the gateway's).
            field: where the section sits, for errors.

        Raises:
            ConfigError: a malformed name or interval; the message names the field, e.g.
                ``time_intervals.business_hours[0].times[0].start_time: ...``.
        """
        if not data:
            return cls()
        zone = (
            default_location
            if isinstance(default_location, ZoneInfo)
            else load_zone(default_location, "timezone")
        )
        named: dict[str, Any] = {}
        if isinstance(data, Mapping):
            named = dict(data)
        elif isinstance(data, list | tuple):
            for i, entry in enumerate(data):
                where = f"{field}[{i}]"
                if not isinstance(entry, Mapping):
                    raise ConfigError(f"{where}: must be a mapping with name and time_intervals")
                _reject_unknown(entry, ("name", "time_intervals"), where)
                name = entry.get("name")
                if not isinstance(name, str) or not name:
                    raise ConfigError(f"{where}.name: is required")
                if name in named:
                    raise ConfigError(f"{where}.name: {name!r} is defined twice")
                named[name] = entry.get("time_intervals") or []
        else:
            raise ConfigError(f"{field}: must map names to lists of intervals")
        out: dict[str, tuple[TimeInterval, ...]] = {}
        for name, items in named.items():
            where = f"{field}.{name}"
            if not isinstance(name, str) or not name.strip():
                raise ConfigError(f"{field}: {name!r} is not a name")
            if isinstance(items, Mapping):
                items = [items]
            if not isinstance(items, list | tuple):
                raise ConfigError(f"{where}: must be a list of intervals")
            out[name] = tuple(
                TimeInterval.from_config(item, default_location=zone, field=f"{where}[{i}]")
                for i, item in enumerate(items)
            )
        return cls(out)

    @property
    def names(self) -> tuple[str, ...]:
        """The configured names, in configuration order."""
        return tuple(self._intervals)

    def __contains__(self, name: object) -> bool:
        return name in self._intervals

    def __len__(self) -> int:
        return len(self._intervals)

    def get(self, name: str) -> tuple[TimeInterval, ...]:
        """The intervals of ``name``.

        Raises:
            LookupError: no set has that name.
        """
        try:
            return self._intervals[name]
        except KeyError:
            raise LookupError(f"no time interval named {name!r}") from None

    def check_names(self, names: Iterable[str], field: str) -> tuple[str, ...]:
        """Validate references to named sets (a route's ``active_time_intervals`` ...).

        Raises:
            ConfigError: a name is not defined; the message names ``field`` and the nearest
                defined name.
        """
        if isinstance(names, str):
            names = [names]
        checked = []
        for i, name in enumerate(names):
            if name not in self._intervals:
                known = (
                    _nearest(str(name), self._intervals)
                    if self._intervals
                    else "no time_intervals are defined"
                )
                raise ConfigError(f"{field}[{i}]: no time interval named {name!r}; {known}")
            checked.append(name)
        return tuple(checked)

    def contains(self, name: str, moment: datetime) -> bool:
        """Whether any interval of ``name`` holds at ``moment``."""
        return any(interval.contains(moment) for interval in self.get(name))

    def next_change(
        self, name: str, moment: datetime, *, horizon: timedelta = DEFAULT_HORIZON
    ) -> datetime | None:
        """The first instant after ``moment`` at which :meth:`contains` answers differently."""
        intervals = self.get(name)
        return _next_change(
            lambda at: any(i.contains(at) for i in intervals), _earliest(intervals), moment, horizon
        )


class MutedAction(StrEnum):
    """What happens to a notification that arrives while its route is muted.

    Attributes:
        KEEP: recorded and visible in the history and console, not sent.
        DROP: recorded as dropped (so a muted notification is never lost silently).
        DEFER: held and delivered when the route becomes active again.
    """

    KEEP = "keep"
    DROP = "drop"
    DEFER = "defer"

    @classmethod
    def parse(cls, value: Any, field: str = "muted") -> MutedAction:
        """Read the configured value.

        Raises:
            ConfigError: not one of keep, drop, defer (the nearest is named).
        """
        choices = [m.value for m in cls]
        if isinstance(value, cls):
            return value
        if isinstance(value, str) and value.strip().lower() in choices:
            return cls(value.strip().lower())
        hint = _nearest(str(value).lower(), choices) if isinstance(value, str) else ""
        raise ConfigError(
            f"{field}: {value!r} is not one of {', '.join(choices)}; {hint}".rstrip("; ")
        )


class RouteSchedule:
    """When a route delivers: its active and mute intervals.

    The route is muted while inside any ``mute`` interval, or outside every ``active``
    interval when ``active`` names some; otherwise it is active. No names: always active.

    Args:
        active: names of ``active_time_intervals``.
        mute: names of ``mute_time_intervals``.
        intervals: the configured named sets the names refer to.
        muted: what happens to notifications that arrive muted.
        field: where the route sits in the configuration, for errors.

    Raises:
        ConfigError: a name is not defined in ``intervals`` (the nearest one is named).
    """

    def __init__(
        self,
        active: Sequence[str] = (),
        mute: Sequence[str] = (),
        intervals: TimeIntervals | None = None,
        *,
        muted: MutedAction | str = MutedAction.KEEP,
        field: str = "route",
    ) -> None:
        known = intervals or TimeIntervals()
        self.active = known.check_names(active, f"{field}.active_time_intervals")
        self.mute = known.check_names(mute, f"{field}.mute_time_intervals")
        self.muted_action = MutedAction.parse(muted, f"{field}.muted")
        self._active = tuple(i for name in self.active for i in known.get(name))
        self._mute = tuple(i for name in self.mute for i in known.get(name))

    @property
    def always_active(self) -> bool:
        """Whether the route has no intervals at all (it is never muted)."""
        return not self.active and not self.mute

    def is_muted(self, moment: datetime) -> bool:
        """Whether the route is muted at ``moment`` (a timezone-aware datetime)."""
        if any(interval.contains(moment) for interval in self._mute):
            return True
        if self.active:
            return not any(interval.contains(moment) for interval in self._active)
        return False

    def state(self, moment: datetime) -> RouteState:
        """``"active"`` or ``"muted"`` at ``moment``."""
        return "muted" if self.is_muted(moment) else "active"

    def next_change(
        self, moment: datetime, *, horizon: timedelta = DEFAULT_HORIZON
    ) -> datetime | None:
        """The first instant after ``moment`` at which :meth:`state` answers differently.

        Returns:
            The instant, or ``None`` when nothing changes within ``horizon``.
        """
        return _next_change(self.is_muted, _earliest(self._active + self._mute), moment, horizon)

    def resumes_at(
        self, moment: datetime, *, horizon: timedelta = DEFAULT_HORIZON
    ) -> datetime | None:
        """When a notification that arrives at ``moment`` may be delivered.

        Returns:
            ``moment`` itself when the route is active; otherwise the instant the route
            becomes active again, or ``None`` when that is not within ``horizon``.
        """
        if not self.is_muted(moment):
            return moment
        return self.next_change(moment, horizon=horizon)
