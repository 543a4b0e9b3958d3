"""A storm's running total: distinct alerts, per status, from its first fold until it is quiet."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from wecom_bot.storm import AlertBrief
from wecom_bot.tally import StormTally


def alerts(first: int, last: int, status: str = "firing") -> list[AlertBrief]:
    return [
        AlertBrief({"alertname": "PodDown", "pod": f"api-{i}"}, status) for i in range(first, last)
    ]


def test_paced_parts_add_up_to_the_distinct_alerts_and_repeats_count_once() -> None:
    tally = StormTally(seed=3)
    assert tally.written(alerts(0, 32)) is None  # a storm's first summary: its own count
    assert tally.written(alerts(16, 96)) == {"firing": 96}  # 16 of the 32 sent again
    assert tally.written(alerts(96, 613)) == {"firing": 613}
    assert tally.written(alerts(500, 1000)) == {"firing": 1000}
    assert tally.counts() == {"firing": 1000}


def test_resolved_alerts_are_counted_apart_from_firing_ones() -> None:
    tally = StormTally(seed=1)
    tally.written(alerts(0, 600))
    tally.written(alerts(600, 1000))
    assert tally.written(alerts(0, 400, "resolved")) is None  # the resolve phase's first part
    assert tally.written(alerts(400, 1000, "resolved")) == {"resolved": 1000}
    # a part with both: the statuses it has, each with its own running total
    mixed = alerts(1000, 1010) + alerts(0, 5, "resolved")
    assert tally.written(mixed) == {"firing": 1010, "resolved": 1000}
    # a status seen first in this part states nothing: its count is the part's own
    assert tally.written(alerts(0, 3, "pending") + alerts(1010, 1011)) == {"firing": 1011}


def test_the_sends_that_used_the_burst_count_and_older_ones_do_not() -> None:
    tally = StormTally(seed=3)
    for i in range(5):  # five whole messages before the storm; the burst is the last three
        tally.delivered(alerts(i, i + 1))
    assert tally.busy and not tally.open
    assert tally.written(alerts(5, 105)) == {"firing": 103}
    tally.delivered(alerts(105, 106))  # a whole message during the storm
    assert tally.written(alerts(106, 206)) == {"firing": 204}


def test_a_quiet_window_ends_the_storm_and_the_next_one_counts_from_zero() -> None:
    tally = StormTally(seed=3)
    tally.delivered(alerts(0, 1))
    tally.written(alerts(1, 500))
    tally.quiet()
    assert not tally.busy and tally.counts() == {}
    assert tally.written(alerts(0, 50)) is None  # the same alerts again: a new storm
    assert tally.written(alerts(50, 60)) == {"firing": 60}


def test_past_its_cap_a_storm_states_no_running_total_rather_than_a_wrong_one() -> None:
    tally = StormTally(seed=3, cap=100)
    assert tally.written(alerts(0, 60)) is None
    assert tally.written(alerts(60, 90)) == {"firing": 90}
    assert tally.written(alerts(90, 120)) is None
    assert tally.written(alerts(0, 10)) is None  # until the storm ends
    tally.quiet()
    assert tally.written(alerts(0, 10)) is None and tally.written(alerts(10, 20)) == {"firing": 20}


def test_what_waits_for_a_storm_is_bounded() -> None:
    tally = StormTally(seed=2, cap=1000)
    for i in range(100):
        tally.delivered(alerts(i * 10, i * 10 + 10))
    assert tally.written([]) is None
    assert tally.counts() == {"firing": 20}  # the last two messages only


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(st.tuples(st.integers(0, 300), st.booleans()), max_size=40), max_size=12))
def test_property_the_last_running_total_is_the_number_of_distinct_alerts(
    parts: list[list[tuple[int, bool]]],
) -> None:
    tally = StormTally(seed=3)
    seen: dict[str, set[int]] = {}
    for part in parts:
        briefs = [
            AlertBrief({"alertname": "A", "n": str(n)}, "resolved" if r else "firing")
            for n, r in part
        ]
        for n, r in part:
            seen.setdefault("resolved" if r else "firing", set()).add(n)
        running = tally.written(briefs)
        own = {b.status for b in briefs}
        for status in own:
            truth = len(seen[status])
            mine = len({b.key for b in briefs if b.status == status})
            if running is not None and status in running:
                assert running[status] == truth > mine
            else:  # not stated: it would only repeat the part's own count
                assert truth == mine
    assert tally.counts() == {s: len(v) for s, v in seen.items()}
