"""Who is on call: a rotation of userids, or a schedule file, read on a wall clock.

Two forms (YAML)::

    oncall:                             # a rotation
      users: [alice, bob, carol]
      every: week                       # day | week
      start: 2026-11-23                 # alice's first shift starts this day at the handoff
      handoff: "09:00"                  # the hour shifts change (default 00:00)
      timezone: Asia/Shanghai           # the gateway's timezone by default

    oncall:                             # a schedule file
      schedule_file: oncall.yaml        # relative to the gateway's config file
      handoff: "09:00"

where ``oncall.yaml`` lists shifts by date, both ends inclusive::

    - {from: 2026-11-23, to: 2026-11-29, user: alice}
    - {from: 2026-11-30, to: 2026-12-06, user: bob}

A shift "on day D" runs from D at the handoff time to the next day at the handoff time, on
the wall clock of ``timezone``: it changes at 09:00 local time on both sides of a
daylight-saving switch. Before a rotation's start, and on days no shift of the file covers,
nobody is on call (:meth:`Rotation.current` answers ``None``). The file is read when the
configuration is loaded, so a reload (SIGHUP) picks up its changes.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

import yaml

from ..errors import ConfigError
from .timeintervals import _reject_unknown, parse_time_of_day, zone_setting

__all__ = ["Rotation", "Shift"]

Period = Literal["day", "week"]
_PERIOD_DAYS: dict[str, int] = {"day": 1, "week": 7}
_ROTATION_KEYS = ("users", "every", "start", "handoff", "timezone", "schedule_file")
_ENTRY_KEYS = ("from", "to", "user")
_USERID = re.compile(r"[A-Za-z0-9_.@\-]{1,64}")


def _userid(value: Any, field: str) -> str:
    if value == "@all":
        raise ConfigError(f"{field}: the on-call is one person; @all cannot be on call")
    if not isinstance(value, str) or not _USERID.fullmatch(value):
        raise ConfigError(
            f"{field}: {value!r} is not a WeCom userid (1-64 of letters, digits, _ . @ -)"
        )
    return value


def _date(value: Any, field: str) -> date:
    if isinstance(value, datetime):
        raise ConfigError(f"{field}: give a date (YYYY-MM-DD) without a time; use handoff")
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ConfigError(f"{field}: {value!r} is not a date YYYY-MM-DD")


@dataclass(frozen=True)
class Shift:
    """One entry of a schedule file: ``user`` is on call from ``first`` to ``last``.

    Attributes:
        first: the first day of the shift (it starts at the handoff time).
        last: the last day, inclusive (the shift ends at the handoff time the day after).
        user: the userid on call.
    """

    first: date
    last: date
    user: str


@dataclass(frozen=True)
class Rotation:
    """An on-call rotation, or a schedule of shifts; build it with :meth:`from_config`.

    Exactly one of ``users`` (with ``start``) and ``shifts`` is set.

    Attributes:
        timezone: the wall clock days and the handoff are read on.
        handoff: minutes after midnight at which shifts change.
        users: the rotation, in order.
        every: how long each user's turn lasts.
        start: the day the first user's first turn begins.
        shifts: the schedule, sorted, not overlapping.
        schedule_file: where ``shifts`` were read from.
    """

    timezone: ZoneInfo
    handoff: int = 0
    users: tuple[str, ...] = ()
    every: Period = "day"
    start: date | None = None
    shifts: tuple[Shift, ...] = ()
    schedule_file: Path | None = None

    @classmethod
    def from_config(
        cls,
        data: Mapping[str, Any],
        *,
        default_timezone: str | ZoneInfo = "Asia/Shanghai",
        base_dir: str | Path | None = None,
        field: str = "oncall",
    ) -> Rotation:
        """Build a rotation from its YAML/JSON form (see the module documentation).

        Args:
            data: ``{users, every, start, handoff, timezone}`` or
                ``{schedule_file, handoff, timezone}``.
            default_timezone: the zone when ``timezone`` is not given (the gateway's).
            base_dir: the folder a relative ``schedule_file`` is read from (the folder of
                the gateway's config file); the working directory when ``None``.
            field: where the section sits in the configuration, for errors.

        Raises:
            ConfigError: an unknown key (the nearest valid one is named), a missing or bad
                value, an unreadable or malformed schedule file, or overlapping shifts; the
                message names the field.
        """
        if not isinstance(data, Mapping):
            raise ConfigError(f"{field}: must be a mapping with users or schedule_file")
        _reject_unknown(data, _ROTATION_KEYS, field)
        zone = zone_setting(data, "timezone", default_timezone, field)
        handoff = 0
        if "handoff" in data:
            handoff = parse_time_of_day(data["handoff"], f"{field}.handoff")
        has_users, has_file = "users" in data, "schedule_file" in data
        if has_users == has_file:
            raise ConfigError(f"{field}: give either users (a rotation) or schedule_file")
        if has_file:
            for key in ("every", "start"):
                if key in data:
                    raise ConfigError(
                        f"{field}.{key}: belongs to a rotation of users, not to schedule_file"
                    )
            path = data["schedule_file"]
            if not isinstance(path, str | Path) or not str(path).strip():
                raise ConfigError(f"{field}.schedule_file: must be a file path")
            resolved = Path(path)
            if not resolved.is_absolute() and base_dir is not None:
                resolved = Path(base_dir) / resolved
            shifts = _load_schedule(resolved, f"{field}.schedule_file")
            return cls(zone, handoff, shifts=shifts, schedule_file=resolved)
        users = data["users"]
        if not isinstance(users, list | tuple) or not users:
            raise ConfigError(f"{field}.users: must list at least one userid")
        checked = tuple(_userid(u, f"{field}.users[{i}]") for i, u in enumerate(users))
        if "every" not in data:
            raise ConfigError(f"{field}.every: is required (day or week)")
        every = data["every"]
        if every not in _PERIOD_DAYS:
            close = isinstance(every, str) and difflib.get_close_matches(every, _PERIOD_DAYS, 1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"{field}.every: {every!r} must be day or week{hint}")
        if "start" not in data:
            raise ConfigError(f"{field}.start: is required (the first day, YYYY-MM-DD)")
        start = _date(data["start"], f"{field}.start")
        return cls(zone, handoff, users=checked, every=every, start=start)

    def __post_init__(self) -> None:
        if bool(self.users) == bool(self.shifts):
            raise ConfigError("oncall: give either users (a rotation) or shifts")
        if self.users and self.start is None:
            raise ConfigError("oncall.start: a rotation needs its first day")

    def shift_day(self, moment: datetime) -> date:
        """The day whose shift covers ``moment`` (the previous day before the handoff).

        Raises:
            ValueError: ``moment`` is naive.
        """
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise ValueError("moment must be timezone-aware (a naive datetime has no instant)")
        local = moment.astimezone(UTC).astimezone(self.timezone)
        day = local.date()
        if local.hour * 60 + local.minute < self.handoff:
            day -= timedelta(days=1)
        return day

    def current(self, moment: datetime) -> str | None:
        """The userid on call at ``moment`` (a timezone-aware datetime).

        Returns:
            The userid, or ``None`` before a rotation starts or when no shift covers it.

        Raises:
            ValueError: ``moment`` is naive.
        """
        day = self.shift_day(moment)
        if self.shifts:
            for shift in self.shifts:
                if shift.first <= day <= shift.last:
                    return shift.user
            return None
        if self.start is None:  # unreachable after __post_init__; narrows the type
            return None
        elapsed = (day - self.start).days
        if elapsed < 0:
            return None
        turn = elapsed // _PERIOD_DAYS[self.every]
        return self.users[turn % len(self.users)]


def _load_schedule(path: Path, field: str) -> tuple[Shift, ...]:
    try:
        text = path.read_text("utf-8")
    except OSError as exc:
        raise ConfigError(f"{field}: cannot read {path}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{field}: {path} is not valid YAML: {exc}") from None
    where = f"{field}: {path}"
    if not isinstance(data, list) or not data:
        raise ConfigError(f"{where}: must be a non-empty list of {{from, to, user}}")
    shifts: list[tuple[int, Shift]] = []
    for i, entry in enumerate(data):
        at = f"{where}[{i}]"
        if not isinstance(entry, Mapping):
            raise ConfigError(f"{at}: must be a mapping with from, to and user")
        _reject_unknown(entry, _ENTRY_KEYS, at)
        for key in _ENTRY_KEYS:
            if key not in entry:
                raise ConfigError(f"{at}.{key}: is required")
        first = _date(entry["from"], f"{at}.from")
        last = _date(entry["to"], f"{at}.to")
        if last < first:
            raise ConfigError(f"{at}.to: {last} is before from ({first})")
        shifts.append((i, Shift(first, last, _userid(entry["user"], f"{at}.user"))))
    shifts.sort(key=lambda item: item[1].first)
    for (i, before), (j, after) in pairwise(shifts):
        if after.first <= before.last:
            raise ConfigError(
                f"{where}[{j}]: overlaps [{i}] ({before.first} to {before.last}, "
                f"{before.user}); who would be on call on {after.first}?"
            )
    return tuple(shift for _, shift in shifts)
