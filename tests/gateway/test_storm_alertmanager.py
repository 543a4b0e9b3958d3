"""Storms through a real Alertmanager, the gateway process and the emulator, scored by what a
reader can find in the accepted messages (bench/bench_storm_am.py at a scaled window: 6 s
standing for WeCom's 60 s, 300 alerts posted within 0.15 windows)."""

from __future__ import annotations

import pytest
from bench.bench_storm_am import ALERTMANAGER, CASES, Case, identities, run_case

pytestmark = [pytest.mark.alertmanager, pytest.mark.slow]
WINDOW = 6.0


@pytest.fixture(autouse=True)
def _needs_alertmanager() -> None:
    if ALERTMANAGER is None:
        pytest.fail("prometheus-alertmanager is not installed (make test installs it)")


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_every_alert_of_a_storm_is_identifiable_within_a_window(case: Case) -> None:
    # A restart costs a process start-up (seconds on a loaded machine) whatever the window:
    # the killed case gets a window twice as long, so that cost stays as small a share of it
    # as it is of WeCom's real 60 s.
    window = 2 * WINDOW if case.kill_at is not None else WINDOW
    firing, resolved = run_case(case, count=300, window=window)
    for phase in (firing, resolved):
        assert phase.visible == phase.alerts == 300, phase
        assert phase.visible_in_60s == 300, phase
        assert phase.messages <= 10, phase
        assert phase.rejected_45009 == 0, phase
        assert phase.max_in_window <= 20, phase
        assert phase.duplicated == 0, phase


def test_a_reader_finds_instances_under_their_alertname_and_inside_ranges() -> None:
    text = (
        "**Svc0Down** × 3\n> instance: host-[0-1], host-7\n"
        "**Svc1Down** × 1\n> 标签：instance=host-3, job=api"
    )
    assert sorted(identities(text, ["Svc0Down", "Svc1Down"])) == [
        ("Svc0Down", "host-0"), ("Svc0Down", "host-1"), ("Svc0Down", "host-7"),
        ("Svc1Down", "host-3"),
    ]  # fmt: skip
