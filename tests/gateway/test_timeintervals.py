"""Time intervals and route schedules, on injected instants (no clock, no sleeping)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wecom_bot.errors import ConfigError
from wecom_bot.gateway.timeintervals import (
    MutedAction,
    RouteSchedule,
    TimeInterval,
    TimeIntervals,
    parse_time_of_day,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")
MINUTE = timedelta(minutes=1)


def interval(data: dict[str, Any], zone: str = "Asia/Shanghai") -> TimeInterval:
    return TimeInterval.from_config(data, default_location=zone)


def at(zone: ZoneInfo, *args: int) -> datetime:
    return datetime(*args, tzinfo=zone)  # type: ignore[misc]


def span(start: str, end: str) -> dict[str, str]:
    return {"start_time": start, "end_time": end}


BUSINESS = {"weekdays": ["monday:friday"], "times": [span("09:00", "18:00")]}
NIGHTS = {"weekdays": ["monday:friday"], "times": [span("22:00", "06:00")]}


# ------------------------------------------------------------------------ contains


def test_business_hours_on_weekdays_only() -> None:
    hours = interval(BUSINESS)
    friday = (2026, 11, 27)
    assert hours.contains(at(SHANGHAI, *friday, 9, 0))
    assert hours.contains(at(SHANGHAI, *friday, 17, 59, 59))
    assert not hours.contains(at(SHANGHAI, *friday, 18, 0))
    assert not hours.contains(at(SHANGHAI, *friday, 8, 59))
    assert not hours.contains(at(SHANGHAI, 2026, 11, 28, 12, 0))  # Saturday
    # The same instant seen from another zone is the same answer.
    assert hours.contains(at(SHANGHAI, *friday, 10, 0).astimezone(UTC))


def test_overnight_range_belongs_to_the_day_it_starts() -> None:
    nights = interval(NIGHTS)
    assert nights.contains(at(SHANGHAI, 2026, 11, 27, 23, 0))  # Friday night
    assert nights.contains(at(SHANGHAI, 2026, 11, 28, 5, 59))  # ... into Saturday morning
    assert not nights.contains(at(SHANGHAI, 2026, 11, 28, 6, 0))
    assert not nights.contains(at(SHANGHAI, 2026, 11, 28, 22, 30))  # Saturday night
    assert not nights.contains(at(SHANGHAI, 2026, 11, 30, 2, 0))  # Sunday night, Monday 02:00
    assert nights.contains(at(SHANGHAI, 2026, 12, 1, 2, 0))  # Monday night, Tuesday 02:00
    assert not nights.contains(at(SHANGHAI, 2026, 12, 1, 12, 0))


def test_overnight_next_change() -> None:
    nights = interval(NIGHTS)
    assert nights.next_change(at(SHANGHAI, 2026, 11, 27, 21, 0)) == at(SHANGHAI, 2026, 11, 27, 22)
    assert nights.next_change(at(SHANGHAI, 2026, 11, 27, 22, 0)) == at(SHANGHAI, 2026, 11, 28, 6)
    # After Friday night the next night is Monday's.
    assert nights.next_change(at(SHANGHAI, 2026, 11, 28, 6, 0)) == at(SHANGHAI, 2026, 11, 30, 22)


def test_weekday_ranges_single_days_and_wrapping() -> None:
    long_weekend = interval({"weekdays": ["friday:monday"]})
    week = [at(SHANGHAI, 2026, 11, 23 + i, 12) for i in range(7)]  # Monday .. Sunday
    assert [long_weekend.contains(d) for d in week] == [True, False, False, False, True, True, True]
    some = interval({"weekdays": ["Tuesday", "thursday:thursday", "saturday"]})
    assert [some.contains(d) for d in week] == [False, True, False, True, False, True, False]


def test_last_day_of_month_and_ranges_counted_from_the_end() -> None:
    last = interval({"days_of_month": ["-1"]})
    assert last.contains(at(SHANGHAI, 2026, 2, 28, 12))
    assert not last.contains(at(SHANGHAI, 2028, 2, 28, 12))  # leap year
    assert last.contains(at(SHANGHAI, 2028, 2, 29, 12))
    assert last.contains(at(SHANGHAI, 2026, 4, 30, 0, 0))
    assert not last.contains(at(SHANGHAI, 2026, 4, 29, 23, 59))
    assert last.contains(at(SHANGHAI, 2026, 12, 31, 23, 59))
    assert last.next_change(at(SHANGHAI, 2026, 2, 10, 8)) == at(SHANGHAI, 2026, 2, 28)
    assert last.next_change(at(SHANGHAI, 2026, 2, 28, 8)) == at(SHANGHAI, 2026, 3, 1)
    last_week = interval({"days_of_month": ["-7:-1"]})
    assert not last_week.contains(at(SHANGHAI, 2026, 2, 21, 12))
    assert last_week.contains(at(SHANGHAI, 2026, 2, 22, 12))
    month = interval({"days_of_month": ["3:-3"]})
    assert not month.contains(at(SHANGHAI, 2026, 2, 2, 12))
    assert month.contains(at(SHANGHAI, 2026, 2, 26, 12))
    assert not month.contains(at(SHANGHAI, 2026, 2, 27, 12))
    # Day 31 does not exist in a 30-day month: nothing matches, nothing breaks.
    assert not interval({"days_of_month": [31]}).contains(at(SHANGHAI, 2026, 4, 30, 12))


def test_months_by_name_or_number_and_wrapping() -> None:
    by_name = interval({"months": ["january:march"]})
    by_number = interval({"months": ["1:3"]})
    for month in range(1, 13):
        moment = at(SHANGHAI, 2026, month, 15)
        assert by_name.contains(moment) == by_number.contains(moment) == (month <= 3)
    winter = interval({"months": ["November:february"]})
    assert [m for m in range(1, 13) if winter.contains(at(SHANGHAI, 2026, m, 1))] == [1, 2, 11, 12]


def test_years() -> None:
    years = interval({"years": ["2026:2027"], "times": [span("00:00", "24:00")]})
    assert years.contains(at(SHANGHAI, 2027, 12, 31, 23, 59))
    assert not years.contains(at(SHANGHAI, 2028, 1, 1, 0, 0))
    assert not years.contains(at(SHANGHAI, 2025, 12, 31, 23, 59))
    later = interval({"years": [2030]})
    moment = at(SHANGHAI, 2026, 6, 1)
    assert later.next_change(moment) is None  # beyond the default horizon of 366 days
    assert later.next_change(moment, horizon=timedelta(days=5 * 366)) == at(SHANGHAI, 2030, 1, 1)


def test_location_and_default_location() -> None:
    in_utc = interval({"times": [span("09:00", "10:00")], "location": "UTC"})
    in_shanghai = interval({"times": [span("09:00", "10:00")]})
    by_default_utc = interval({"times": [span("09:00", "10:00")]}, zone="UTC")
    moment = datetime(2026, 5, 1, 9, 30, tzinfo=UTC)
    assert in_utc.contains(moment) and by_default_utc.contains(moment)
    assert not in_shanghai.contains(moment)
    assert in_shanghai.contains(moment - timedelta(hours=8))
    assert in_shanghai.location == SHANGHAI and by_default_utc.location == ZoneInfo("UTC")


def test_every_field_together() -> None:
    payday = interval(
        {
            "weekdays": ["monday:friday"],
            "days_of_month": ["-1"],
            "months": ["december"],
            "years": ["2026"],
            "times": [span("10:00", "11:00"), span("23:30", "00:30")],
            "location": "Europe/Berlin",
        }
    )
    assert payday.contains(at(BERLIN, 2026, 12, 31, 10, 15))  # a Thursday
    assert payday.contains(at(BERLIN, 2027, 1, 1, 0, 15))  # overnight from the 31st
    assert not payday.contains(at(BERLIN, 2027, 1, 1, 0, 30))
    assert not payday.contains(at(BERLIN, 2026, 11, 30, 10, 15))  # November
    assert payday.next_change(at(BERLIN, 2026, 12, 1)) == at(BERLIN, 2026, 12, 31, 10)


def test_whole_day_end_and_no_fields() -> None:
    evening = interval({"times": [span("20:00", "24:00")]})
    assert evening.contains(at(SHANGHAI, 2026, 1, 1, 23, 59, 59))
    assert not evening.contains(at(SHANGHAI, 2026, 1, 2, 0, 0))
    always = interval({})
    assert always.contains(at(SHANGHAI, 2026, 1, 1))
    assert always.next_change(at(SHANGHAI, 2026, 1, 1)) is None


# ------------------------------------------------------------------------ daylight saving


def test_berlin_spring_forward_skips_times_in_the_gap() -> None:
    # 2026-03-29: 02:00 CET becomes 03:00 CEST at 01:00 UTC.
    gap = interval({"times": [span("02:00", "02:30")], "location": "Europe/Berlin"})
    day = datetime(2026, 3, 28, 22, tzinfo=UTC)
    assert not any(gap.contains(day + i * MINUTE) for i in range(24 * 60))
    assert gap.contains(at(BERLIN, 2026, 3, 28, 2, 15))  # the day before, it exists
    night = interval({"times": [span("01:00", "02:30")], "location": "Europe/Berlin"})
    inside = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)  # 01:30 CET
    assert night.contains(inside)
    # The range ends when the clock jumps from 02:00 CET to 03:00 CEST.
    assert night.next_change(inside) == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    # The range starting in the gap starts at the jump that day, and at 02:00 the next.
    late = interval({"times": [span("02:30", "04:00")], "location": "Europe/Berlin"})
    assert late.next_change(inside) == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    assert late.next_change(datetime(2026, 3, 29, 1, 0, tzinfo=UTC)) == at(BERLIN, 2026, 3, 29, 4)


def test_berlin_fall_back_repeats_times() -> None:
    # 2026-10-25: 03:00 CEST becomes 02:00 CET at 01:00 UTC; 02:00-02:30 happens twice.
    twice = interval({"times": [span("02:00", "02:30")], "location": "Europe/Berlin"})
    moment = datetime(2026, 10, 24, 23, 0, tzinfo=UTC)
    changes = []
    for _ in range(4):
        found = twice.next_change(moment)
        assert found is not None
        changes.append((found.astimezone(UTC).strftime("%d %H:%M"), twice.contains(found)))
        moment = found
    assert changes == [
        ("25 00:00", True),
        ("25 00:30", False),
        ("25 01:00", True),
        ("25 01:30", False),
    ]


def test_business_hours_stay_at_local_nine_across_the_switch() -> None:
    hours = interval({**BUSINESS, "location": "Europe/Berlin"})
    friday_evening = at(BERLIN, 2026, 3, 27, 18, 0)  # CET, +01:00
    monday = hours.next_change(friday_evening)
    assert monday == at(BERLIN, 2026, 3, 30, 9, 0)
    assert monday is not None and monday.astimezone(UTC).hour == 7  # CEST, +02:00


def test_zone_without_dst_keeps_the_same_utc_hour_all_year() -> None:
    hours = interval({"times": [span("09:00", "18:00")]})  # Asia/Shanghai, UTC+8 always
    moment = datetime(2026, 3, 1, tzinfo=UTC)
    starts = set()
    while moment < datetime(2026, 11, 30, tzinfo=UTC):
        found = hours.next_change(moment)
        assert found is not None
        if hours.contains(found):
            starts.add(found.astimezone(UTC).strftime("%H:%M"))
        moment = found
    assert starts == {"01:00"}


# ------------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"times": [span("25:00", "26:00")]}, "business_hours[0].times[0].start_time: '25:00'"),
        ({"times": [span("09:00", "24:01")]}, "business_hours[0].times[0].end_time: '24:01'"),
        ({"times": [span("24:00", "10:00")]}, "business_hours[0].times[0].start_time"),
        ({"times": [span("9:60", "10:00")]}, "times[0].start_time: '9:60'"),
        ({"times": [span("09:00", "09:00")]}, "times[0].end_time: equals start_time"),
        ({"times": [{"start_time": "09:00"}]}, "times[0].end_time: is required"),
        ({"times": [{"start_time": "09:00", "end": "10:00"}]}, "did you mean 'end_time'?"),
        ({"times": "09:00-18:00"}, "business_hours[0].times: must be a list"),
        (
            {"weekday": ["monday"]},
            "business_hours[0].weekday: unknown key; did you mean 'weekdays'?",
        ),
        (
            {"weekdays": ["tuesdy"]},
            "weekdays[0]: 'tuesdy' is not a weekday; did you mean 'tuesday'?",
        ),
        ({"weekdays": ["monday:"]}, "weekdays[0]: 'monday:' is not a range"),
        ({"days_of_month": [65]}, "days_of_month[0]: '65' is not a day of the month"),
        ({"days_of_month": ["0"]}, "days_of_month[0]: '0' is not a day"),
        ({"days_of_month": ["-3:5"]}, "days_of_month[0]: '-3:5' runs from a day counted from"),
        ({"days_of_month": ["5:1"]}, "days_of_month[0]: '5:1' ends before it starts"),
        ({"months": ["13"]}, "months[0]: '13' is not a month"),
        ({"months": ["janury"]}, "did you mean 'january'?"),
        ({"years": ["2027:2026"]}, "years[0]: '2027:2026' ends before it starts"),
        ({"years": ["soon"]}, "years[0]: 'soon' is not a year"),
        ({"location": "Mars/Olympus"}, "business_hours[0].location: unknown time zone"),
        ("weekdays", "business_hours[0]: must be a mapping"),
    ],
)
def test_errors_name_the_field(entry: Any, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        TimeIntervals.from_config({"business_hours": [entry]})
    text = str(caught.value)
    assert text.startswith("time_intervals.business_hours[0]"), text
    assert message in text


def test_unquoted_yaml_numbers() -> None:
    # PyYAML reads 17:00 as 1020 (base 60) and 1:5 as 65; times come out right, ranges do not.
    data = yaml.safe_load("times: [{start_time: 09:00, end_time: 17:00}]\n")
    assert data["times"][0]["end_time"] == 1020
    hours = interval(data)
    assert hours.times[0].start == 9 * 60 and hours.times[0].end == 17 * 60
    with pytest.raises(ConfigError, match=r"quote it"):
        interval(yaml.safe_load("days_of_month: [1:5]\n"))
    with pytest.raises(ConfigError, match=r"months\[0\].*quote it"):
        interval(yaml.safe_load("months: [1:3]\n"))
    assert parse_time_of_day(1440, "x", allow_end_of_day=True) == 1440
    with pytest.raises(ConfigError, match=r"^x: 1440 is not a time of day"):
        parse_time_of_day(1440, "x")


def test_alertmanager_list_form_is_accepted() -> None:
    text = """
    - name: business_hours
      time_intervals:
        - weekdays: ['monday:friday']
          times: [{start_time: '09:00', end_time: '18:00'}]
    """
    intervals = TimeIntervals.from_config(yaml.safe_load(text))
    assert intervals.names == ("business_hours",)
    assert intervals.contains("business_hours", at(SHANGHAI, 2026, 11, 27, 10))
    with pytest.raises(ConfigError, match=r"time_intervals\[1\].name: 'a' is defined twice"):
        TimeIntervals.from_config([{"name": "a"}, {"name": "a"}])


def test_naive_moments_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        interval(BUSINESS).contains(datetime(2026, 1, 1, 10))


# ------------------------------------------------------------------------ named sets, routes


@pytest.fixture
def intervals() -> TimeIntervals:
    return TimeIntervals.from_config(
        {
            "business_hours": [
                BUSINESS,
                {"weekdays": ["saturday"], "times": [span("10:00", "12:00")]},
            ],
            "lunch": [{"times": [span("12:00", "13:00")]}],
            "maintenance": [
                {"days_of_month": ["-1"], "times": [span("01:00", "03:00")], "location": "UTC"}
            ],
        }
    )


def test_a_name_matches_when_any_of_its_intervals_does(intervals: TimeIntervals) -> None:
    assert intervals.contains("business_hours", at(SHANGHAI, 2026, 11, 28, 11))  # Saturday
    assert not intervals.contains("business_hours", at(SHANGHAI, 2026, 11, 28, 12))
    assert intervals.next_change("business_hours", at(SHANGHAI, 2026, 11, 27, 17)) == at(
        SHANGHAI, 2026, 11, 27, 18
    )
    assert intervals.next_change("business_hours", at(SHANGHAI, 2026, 11, 27, 18)) == at(
        SHANGHAI, 2026, 11, 28, 10
    )
    with pytest.raises(LookupError):
        intervals.get("nope")


def test_route_schedule_active_and_mute(intervals: TimeIntervals) -> None:
    schedule = RouteSchedule(["business_hours"], ["lunch"], intervals, muted="defer")
    assert schedule.muted_action is MutedAction.DEFER
    assert schedule.state(at(SHANGHAI, 2026, 11, 27, 10, 0)) == "active"
    assert schedule.state(at(SHANGHAI, 2026, 11, 27, 12, 30)) == "muted"  # lunch
    assert schedule.state(at(SHANGHAI, 2026, 11, 27, 20, 0)) == "muted"  # after hours
    now = at(SHANGHAI, 2026, 11, 27, 10, 0)
    assert schedule.resumes_at(now) == now
    assert schedule.next_change(now) == at(SHANGHAI, 2026, 11, 27, 12)
    assert schedule.resumes_at(at(SHANGHAI, 2026, 11, 27, 12, 30)) == at(SHANGHAI, 2026, 11, 27, 13)
    # Friday evening: the Saturday window opens at 10:00 but lunch mutes it from 12:00.
    assert schedule.resumes_at(at(SHANGHAI, 2026, 11, 27, 20)) == at(SHANGHAI, 2026, 11, 28, 10)
    assert schedule.next_change(at(SHANGHAI, 2026, 11, 28, 10)) == at(SHANGHAI, 2026, 11, 28, 12)
    assert schedule.resumes_at(at(SHANGHAI, 2026, 11, 28, 12)) == at(SHANGHAI, 2026, 11, 30, 9)


def test_mute_only_and_always_active(intervals: TimeIntervals) -> None:
    mute = RouteSchedule(mute=["maintenance"], intervals=intervals)
    inside = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)
    assert mute.state(inside) == "muted"
    assert mute.resumes_at(inside) == datetime(2026, 11, 30, 3, 0, tzinfo=UTC)
    assert mute.state(datetime(2026, 11, 29, 2, 0, tzinfo=UTC)) == "active"
    always = RouteSchedule(intervals=intervals)
    assert always.always_active and always.muted_action is MutedAction.KEEP
    assert always.next_change(inside) is None and always.resumes_at(inside) == inside


def test_route_schedule_unknown_names(intervals: TimeIntervals) -> None:
    with pytest.raises(ConfigError) as caught:
        RouteSchedule(["busines_hours"], (), intervals, field="routes[0]")
    assert str(caught.value) == (
        "routes[0].active_time_intervals[0]: no time interval named 'busines_hours'; "
        "did you mean 'business_hours'?"
    )
    with pytest.raises(ConfigError, match=r"mute_time_intervals\[0\]: .*no time_intervals are"):
        RouteSchedule(mute=["lunch"], intervals=None)
    with pytest.raises(ConfigError, match=r"routes\[2\].muted: 'later' is not one of keep"):
        RouteSchedule(intervals=intervals, muted="later", field="routes[2]")


def test_muted_action_values() -> None:
    assert [a.value for a in MutedAction] == ["keep", "drop", "defer"]
    assert MutedAction.parse(" Drop ") is MutedAction.DROP
    with pytest.raises(ConfigError, match=r"^x: 'deffer' is not one of keep, drop, defer; did"):
        MutedAction.parse("deffer", "x")
    with pytest.raises(ConfigError, match=r"^muted: 3 is not one of"):
        MutedAction.parse(3)


def test_next_change_is_fast_when_nothing_changes(intervals: TimeIntervals) -> None:
    # Muted all the time (every day muted), while active boundaries come twice a day:
    # the search walks a whole year of candidates and answers None.
    always = TimeIntervals.from_config(
        {"all": [{}], "business_hours": [BUSINESS, {"times": [span("03:00", "04:00")]}]}
    )
    schedule = RouteSchedule(["business_hours"], ["all"], always)
    started = time.perf_counter()
    assert schedule.next_change(at(SHANGHAI, 2026, 1, 1)) is None
    assert time.perf_counter() - started < 1.0


# ------------------------------------------------------------------------ property tests

ZONES = [
    "UTC",
    "Asia/Shanghai",
    "Europe/Berlin",
    "America/New_York",
    "Asia/Kathmandu",  # +05:45
    "Australia/Lord_Howe",  # daylight saving moves the clock by 30 minutes
]
# Daylight-saving switches of the zones above, where mistakes would hide.
SWITCHES = {
    "Europe/Berlin": [datetime(2026, 3, 29, 1, tzinfo=UTC), datetime(2026, 10, 25, 1, tzinfo=UTC)],
    "America/New_York": [datetime(2026, 3, 8, 7, tzinfo=UTC), datetime(2026, 11, 1, 6, tzinfo=UTC)],
    "Australia/Lord_Howe": [
        datetime(2026, 4, 4, 15, tzinfo=UTC),
        datetime(2026, 10, 3, 15, 30, tzinfo=UTC),
    ],
}
ALL_SWITCHES = [moment for moments in SWITCHES.values() for moment in moments]

clock_times = st.one_of(
    st.integers(0, 23 * 60 + 59),
    st.sampled_from([60, 90, 120, 150, 180, 0, 1, 1439]),  # the hours daylight saving moves
).map(lambda m: f"{m // 60:02d}:{m % 60:02d}")


@st.composite
def interval_configs(draw: st.DrawFn) -> dict[str, Any]:
    data: dict[str, Any] = {"location": draw(st.sampled_from(ZONES))}
    times = draw(st.lists(st.tuples(clock_times, clock_times), max_size=3))
    if times:
        data["times"] = [span(a, b) for a, b in times if a != b] or [span("09:00", "18:00")]
    days = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
    if draw(st.booleans()):
        pairs = draw(st.lists(st.tuples(st.sampled_from(days), st.sampled_from(days)), min_size=1))
        data["weekdays"] = [f"{a}:{b}" for a, b in pairs]
    if draw(st.integers(0, 3)) == 0:
        data["days_of_month"] = draw(st.sampled_from([["-1"], ["1:5"], ["-7:-1", "15"], ["29:31"]]))
    if draw(st.integers(0, 4)) == 0:
        data["months"] = draw(st.sampled_from([["march"], ["october:november"], ["1:2"]]))
    return data


moments = st.one_of(
    st.datetimes(
        min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
    ),
    st.tuples(st.sampled_from(ALL_SWITCHES), st.integers(-3 * 24 * 3600, 3 * 24 * 3600)).map(
        lambda pair: pair[0] + timedelta(seconds=pair[1])
    ),
)

BRUTE_FORCE_MINUTES = 3 * 24 * 60


def check_next_change(state: Any, next_change: Any, moment: datetime) -> None:
    """``next_change`` against a minute-by-minute walk (every zone here has whole-minute
    offsets, so the state is constant within each UTC minute)."""
    found = next_change(moment)
    start = state(moment)
    boundary = moment.replace(second=0, microsecond=0) + MINUTE
    expected = None
    for i in range(BRUTE_FORCE_MINUTES):
        if state(boundary + i * MINUTE) != start:
            expected = boundary + i * MINUTE
            break
    if expected is not None:
        assert found == expected
    else:
        assert found is None or found > boundary + (BRUTE_FORCE_MINUTES - 1) * MINUTE
    if found is not None:
        assert found > moment
        assert state(found) != start
        assert state(found - timedelta(microseconds=1)) == start
        step = (found - moment) / 97
        assert all(state(moment + k * step) == start for k in range(97))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(config=interval_configs(), moment=moments)
def test_next_change_matches_a_minute_by_minute_walk(
    config: dict[str, Any], moment: datetime
) -> None:
    single = TimeInterval.from_config(config)
    check_next_change(single.contains, single.next_change, moment)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(active=interval_configs(), mute=interval_configs(), moment=moments)
def test_route_schedule_next_change_matches_a_walk(
    active: dict[str, Any], mute: dict[str, Any], moment: datetime
) -> None:
    intervals = TimeIntervals.from_config({"on": [active], "off": [mute]})
    schedule = RouteSchedule(["on"], ["off"], intervals)
    check_next_change(schedule.is_muted, schedule.next_change, moment)
    resumes = schedule.resumes_at(moment)
    if resumes is not None:
        assert schedule.state(resumes) == "active"


@st.composite
def around_a_switch(draw: st.DrawFn) -> tuple[dict[str, Any], datetime]:
    """An interval in a zone with daylight saving, with ranges near the switching hours, and a
    moment shortly before that zone's switch."""
    zone = draw(st.sampled_from(sorted(SWITCHES)))
    near = st.integers(0, 5 * 60).map(lambda m: f"{m // 60:02d}:{m % 60:02d}")
    times = draw(
        st.lists(st.tuples(near, near).filter(lambda p: p[0] != p[1]), min_size=1, max_size=2)
    )
    config = {"location": zone, "times": [span(a, b) for a, b in times]}
    switch = draw(st.sampled_from(SWITCHES[zone]))
    moment = switch - timedelta(seconds=draw(st.integers(0, 30 * 3600)))
    return config, moment


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=around_a_switch())
def test_next_change_across_daylight_saving_switches(case: tuple[dict[str, Any], datetime]) -> None:
    config, moment = case
    single = TimeInterval.from_config(config)
    check_next_change(single.contains, single.next_change, moment)
