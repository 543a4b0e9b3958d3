"""The per-key rate limit: 45009 beyond N accepted messages in any window."""

from __future__ import annotations

import time
from typing import Any

import pytest

from wecom_bot.emulator import RateSpec
from wecom_bot.errors import ConfigError

from . import payloads
from .conftest import errcode, errtext, new_key


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_twenty_per_second_then_45009_then_free_again(make_emu: Any) -> None:
    key = new_key()
    with make_emu(rate=RateSpec(20, 1.0)) as emu:
        started = time.monotonic()
        codes = [errcode(emu.send(key, payloads.text(f"m{i}"))) for i in range(21)]
        assert time.monotonic() - started < 1.0, "too slow to test a 1 s window"
        assert codes == [0] * 20 + [45009]
        assert errtext(emu.send(key, payloads.text("again"))) == "api freq out of limit"
        time.sleep(1.05)  # every accepted message is now older than the window
        assert errcode(emu.send(key, payloads.text("after the window"))) == 0
        group = emu.group(key)
        assert group["accepted"] == 21
        assert group["rate_limited"] == 2 and group["rejected"] == {"45009": 2}


def test_window_slides_rather_than_resetting_on_the_minute(make_emu: Any) -> None:
    clock, key = FakeMonotonic(), new_key()
    with make_emu(rate=RateSpec(20, 60.0), monotonic=clock) as emu:
        for _ in range(10):
            assert errcode(emu.send(key, payloads.text())) == 0
        clock.now += 30
        for _ in range(10):
            assert errcode(emu.send(key, payloads.text())) == 0
        clock.now += 29.9  # 59.9 s after the first ten: all twenty still in the window
        assert errcode(emu.send(key, payloads.text())) == 45009
        clock.now += 0.2  # the first ten left the window; the second ten have not
        codes = [errcode(emu.send(key, payloads.text())) for _ in range(11)]
        assert codes == [0] * 10 + [45009]


def test_each_key_has_its_own_window(make_emu: Any) -> None:
    clock, first, second = FakeMonotonic(), new_key(), new_key()
    with make_emu(rate=RateSpec(3, 60.0), monotonic=clock) as emu:
        assert [errcode(emu.send(first, payloads.text())) for _ in range(4)] == [0, 0, 0, 45009]
        assert errcode(emu.send(second, payloads.text())) == 0


def test_rejected_messages_use_no_slot_and_keep_their_own_error(make_emu: Any) -> None:
    clock, key = FakeMonotonic(), new_key()
    with make_emu(rate=RateSpec(2, 60.0), monotonic=clock) as emu:
        for _ in range(5):
            assert errcode(emu.send(key, payloads.text(""))) == 44004
        assert [errcode(emu.send(key, payloads.text())) for _ in range(3)] == [0, 0, 45009]
        assert errcode(emu.send(key, payloads.text(""))) == 44004


def test_uploads_are_not_rate_limited(make_emu: Any) -> None:
    clock, key = FakeMonotonic(), new_key()
    with make_emu(rate=RateSpec(1, 60.0), monotonic=clock) as emu:
        for _ in range(3):
            assert errcode(emu.upload(key, b"0123456789")) == 0


def test_no_rate_limit_accepts_any_number(make_emu: Any) -> None:
    key = new_key()
    with make_emu(rate=None) as emu:
        assert {errcode(emu.send(key, payloads.text())) for _ in range(60)} == {0}
        assert emu.client.get("/api/info").json()["rate_limit"] is None


def test_reset_clears_the_window(make_emu: Any) -> None:
    clock, key = FakeMonotonic(), new_key()
    with make_emu(rate=RateSpec(1, 60.0), monotonic=clock) as emu:
        assert [errcode(emu.send(key, payloads.text())) for _ in range(2)] == [0, 45009]
        assert emu.client.post("/api/reset").status_code == 200
        assert errcode(emu.send(key, payloads.text())) == 0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("20/60s", RateSpec(20, 60.0)),
        ("20/1s", RateSpec(20, 1.0)),
        ("5/500ms", RateSpec(5, 0.5)),
        ("20/m", RateSpec(20, 60.0)),
        ("100 / 2h", RateSpec(100, 7200.0)),
        ("off", None),
    ],
)
def test_rate_spec_parsing(text: str, expected: RateSpec | None) -> None:
    assert RateSpec.parse(text) == expected


@pytest.mark.parametrize("text", ["20", "20/", "x/1s", "20/1y", "0/1s", "20/0s", "-1/1s"])
def test_bad_rate_specs_are_config_errors(text: str) -> None:
    with pytest.raises(ConfigError, match="rate"):
        RateSpec.parse(text)
