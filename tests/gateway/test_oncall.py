"""On-call rotation and schedule files, on injected instants (no clock, no sleeping)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from wecom_bot.errors import ConfigError
from wecom_bot.gateway.oncall import Rotation, Shift

SHANGHAI = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")
TRIO = ["alice", "bob", "carol"]


def at(zone: ZoneInfo, *args: int) -> datetime:
    return datetime(*args, tzinfo=zone)  # type: ignore[misc]


def rotation(**data: Any) -> Rotation:
    return Rotation.from_config(data)


def test_daily_rotation_hands_off_at_the_configured_hour() -> None:
    daily = rotation(users=TRIO, every="day", start="2026-11-23", handoff="09:00")
    assert daily.timezone == SHANGHAI  # the gateway's zone by default
    assert daily.current(at(SHANGHAI, 2026, 11, 23, 8, 59, 59)) is None  # before the start
    assert daily.current(at(SHANGHAI, 2026, 11, 23, 9, 0)) == "alice"
    assert daily.current(at(SHANGHAI, 2026, 11, 24, 8, 59)) == "alice"
    assert daily.current(at(SHANGHAI, 2026, 11, 24, 9, 0)) == "bob"
    assert daily.current(at(SHANGHAI, 2026, 11, 25, 23, 0)) == "carol"
    assert daily.current(at(SHANGHAI, 2026, 11, 26, 9, 0)) == "alice"  # wraps around
    # The same instant in UTC: 01:00Z is 09:00 in Shanghai.
    assert daily.current(datetime(2026, 11, 24, 0, 59, tzinfo=UTC)) == "alice"
    assert daily.current(datetime(2026, 11, 24, 1, 0, tzinfo=UTC)) == "bob"


def test_weekly_rotation() -> None:
    weekly = rotation(
        users=TRIO, every="week", start=date(2026, 11, 23), handoff="10:30", timezone="UTC"
    )
    start = datetime(2026, 11, 23, 10, 30, tzinfo=UTC)
    seen = [weekly.current(start + timedelta(days=7 * week)) for week in range(7)]
    assert seen == ["alice", "bob", "carol", "alice", "bob", "carol", "alice"]
    assert weekly.current(start + timedelta(days=7) - timedelta(seconds=1)) == "alice"
    assert weekly.current(start + timedelta(days=6, hours=23)) == "alice"
    assert weekly.current(start - timedelta(minutes=1)) is None


def test_default_handoff_is_midnight() -> None:
    daily = rotation(users=["alice", "bob"], every="day", start="2026-11-23")
    assert daily.handoff == 0
    assert daily.current(at(SHANGHAI, 2026, 11, 23, 23, 59)) == "alice"
    assert daily.current(at(SHANGHAI, 2026, 11, 24, 0, 0)) == "bob"


def test_handoff_stays_at_local_time_across_daylight_saving() -> None:
    # Berlin switches to summer time on 2026-03-29; the handoff stays at 09:00 local.
    daily = rotation(
        users=TRIO, every="day", start="2026-03-27", handoff="09:00", timezone="Europe/Berlin"
    )
    assert daily.current(datetime(2026, 3, 28, 7, 59, tzinfo=UTC)) == "alice"  # 08:59 CET
    assert daily.current(datetime(2026, 3, 28, 8, 0, tzinfo=UTC)) == "bob"  # 09:00 CET
    assert daily.current(datetime(2026, 3, 30, 6, 59, tzinfo=UTC)) == "carol"  # 08:59 CEST
    assert daily.current(datetime(2026, 3, 30, 7, 0, tzinfo=UTC)) == "alice"  # 09:00 CEST


def test_handoff_from_unquoted_yaml() -> None:
    # PyYAML reads an unquoted 10:30 as 630 (base 60), which is minutes after midnight.
    data = yaml.safe_load("users: [alice, bob]\nevery: day\nstart: 2026-11-23\nhandoff: 10:30\n")
    assert data["handoff"] == 630 and data["start"] == date(2026, 11, 23)
    daily = Rotation.from_config(data)
    assert daily.current(at(SHANGHAI, 2026, 11, 24, 10, 29)) == "alice"
    assert daily.current(at(SHANGHAI, 2026, 11, 24, 10, 30)) == "bob"


def write_schedule(path: Path, entries: Any) -> Path:
    path.write_text(yaml.safe_dump(entries), "utf-8")
    return path


def test_schedule_file(tmp_path: Path) -> None:
    write_schedule(
        tmp_path / "oncall.yaml",
        [
            {"from": "2026-11-30", "to": "2026-12-06", "user": "bob"},
            {"from": date(2026, 11, 23), "to": date(2026, 11, 29), "user": "alice"},
            {"from": "2026-12-14", "to": "2026-12-14", "user": "carol"},
        ],
    )
    schedule = Rotation.from_config(
        {"schedule_file": "oncall.yaml", "handoff": "09:00"}, base_dir=tmp_path
    )
    assert schedule.schedule_file == tmp_path / "oncall.yaml"
    assert schedule.shifts[0] == Shift(date(2026, 11, 23), date(2026, 11, 29), "alice")
    assert schedule.current(at(SHANGHAI, 2026, 11, 23, 8, 0)) is None
    assert schedule.current(at(SHANGHAI, 2026, 11, 23, 9, 0)) == "alice"
    assert schedule.current(at(SHANGHAI, 2026, 11, 30, 8, 59)) == "alice"  # "to" is inclusive
    assert schedule.current(at(SHANGHAI, 2026, 11, 30, 9, 0)) == "bob"
    assert schedule.current(at(SHANGHAI, 2026, 12, 7, 9, 0)) is None  # a gap
    assert schedule.current(at(SHANGHAI, 2026, 12, 14, 12, 0)) == "carol"
    assert schedule.current(at(SHANGHAI, 2026, 12, 15, 8, 59)) == "carol"
    assert schedule.current(at(SHANGHAI, 2026, 12, 15, 9, 0)) is None


def test_schedule_file_is_reread_by_a_new_rotation(tmp_path: Path) -> None:
    path = write_schedule(
        tmp_path / "s.yaml", [{"from": "2026-01-01", "to": "2026-12-31", "user": "a"}]
    )
    config = {"schedule_file": str(path), "timezone": "UTC"}
    moment = datetime(2026, 6, 1, tzinfo=UTC)
    assert Rotation.from_config(config).current(moment) == "a"
    write_schedule(path, [{"from": "2026-01-01", "to": "2026-12-31", "user": "b"}])
    assert Rotation.from_config(config).current(moment) == "b"


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ([], "must be a non-empty list"),
        ({"alice": "2026-11-23"}, "must be a non-empty list"),
        ([{"from": "2026-11-23", "to": "2026-11-29"}], "[0].user: is required"),
        (
            [{"from": "2026-11-23", "to": "2026-11-29", "usr": "a"}],
            "[0].usr: unknown key; did you mean 'user'?",
        ),
        (
            [{"from": "2026-11-23", "to": "2026-11-2x", "user": "a"}],
            "[0].to: '2026-11-2x' is not a date",
        ),
        (
            [{"from": "2026-11-23", "to": "2026-11-20", "user": "a"}],
            "[0].to: 2026-11-20 is before from",
        ),
        (
            [{"from": "2026-11-23", "to": "2026-11-29", "user": "@all"}],
            "[0].user: the on-call is one person",
        ),
        (
            [{"from": "2026-11-23", "to": "2026-11-29", "user": "al ice"}],
            "[0].user: 'al ice' is not a WeCom userid",
        ),
        (
            [
                {"from": "2026-11-23", "to": "2026-11-29", "user": "a"},
                {"from": "2026-11-29", "to": "2026-12-05", "user": "b"},
            ],
            "[1]: overlaps [0] (2026-11-23 to 2026-11-29, a)",
        ),
    ],
)
def test_schedule_file_errors_name_the_entry(tmp_path: Path, entries: Any, message: str) -> None:
    path = write_schedule(tmp_path / "oncall.yaml", entries)
    with pytest.raises(ConfigError) as caught:
        Rotation.from_config({"schedule_file": str(path)}, field="routes[0].oncall")
    text = str(caught.value)
    assert text.startswith(f"routes[0].oncall.schedule_file: {path}"), text
    assert message in text


def test_schedule_file_missing_or_not_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^oncall.schedule_file: cannot read .*nope.yaml"):
        Rotation.from_config({"schedule_file": "nope.yaml"}, base_dir=tmp_path)
    (tmp_path / "bad.yaml").write_text("- [unclosed", "utf-8")
    with pytest.raises(ConfigError, match=r"^oncall.schedule_file: .*bad.yaml is not valid YAML"):
        Rotation.from_config({"schedule_file": "bad.yaml"}, base_dir=tmp_path)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"user": TRIO, "every": "day", "start": "2026-11-23"},
            "oncall.user: unknown key; did you mean 'users'?",
        ),
        (
            {"users": TRIO, "every": "day", "start": "2026-11-23", "handof": "09:00"},
            "oncall.handof: unknown key; did you mean 'handoff'?",
        ),
        (
            {"users": TRIO, "every": "days", "start": "2026-11-23"},
            "oncall.every: 'days' must be day or week; did you mean 'day'?",
        ),
        (
            {"users": TRIO, "every": "fortnight", "start": "2026-11-23"},
            "oncall.every: 'fortnight' must be day or week",
        ),
        ({"users": TRIO, "start": "2026-11-23"}, "oncall.every: is required"),
        ({"users": TRIO, "every": "day"}, "oncall.start: is required"),
        (
            {"users": TRIO, "every": "day", "start": "23.11.2026"},
            "oncall.start: '23.11.2026' is not a date",
        ),
        (
            {"users": TRIO, "every": "day", "start": datetime(2026, 11, 23, 9)},
            "oncall.start: give a date",
        ),
        (
            {"users": [], "every": "day", "start": "2026-11-23"},
            "oncall.users: must list at least one userid",
        ),
        (
            {"users": "alice", "every": "day", "start": "2026-11-23"},
            "oncall.users: must list at least one",
        ),
        (
            {"users": ["alice", "@all"], "every": "day", "start": "2026-11-23"},
            "oncall.users[1]: the on-call is one person",
        ),
        (
            {"users": TRIO, "every": "day", "start": "2026-11-23", "handoff": "9am"},
            "oncall.handoff: '9am' is not a time of day",
        ),
        (
            {"users": TRIO, "every": "day", "start": "2026-11-23", "timezone": "Shanghai"},
            "oncall.timezone: unknown time zone 'Shanghai'",
        ),
        (
            {"users": TRIO, "schedule_file": "x.yaml"},
            "oncall: give either users (a rotation) or schedule_file",
        ),
        ({"every": "day"}, "oncall: give either users (a rotation) or schedule_file"),
        (
            {"schedule_file": "x.yaml", "every": "week"},
            "oncall.every: belongs to a rotation of users",
        ),
        (["alice"], "oncall: must be a mapping"),
    ],
)
def test_config_errors_name_the_field(data: Any, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Rotation.from_config(data)
    assert str(caught.value).startswith(message), str(caught.value)


def test_naive_moments_are_refused() -> None:
    daily = rotation(users=TRIO, every="day", start="2026-11-23")
    with pytest.raises(ValueError, match="timezone-aware"):
        daily.current(datetime(2026, 11, 24, 10))
