"""Slow answers (issue 26, item 4): a send whose answer never came counts in the window from
when the server may have processed it, and its resend says it may be a repeat."""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from tests.emulator.conftest import Emu, new_key, running
from tests.test_dispatcher import all_entries, inject, make_dispatcher, max_in_window
from wecom_bot.emulator import EmulatorSettings
from wecom_bot.emulator.ratelimit import RateSpec
from wecom_bot.errors import HTTPStatusError, RequestTimeout, TransportError, WeComAPIError
from wecom_bot.gateway.templates.escaping import escape
from wecom_bot.limits import CONTENT_LIMITS, NEWS_TITLE_MAX_BYTES, utf8_len
from wecom_bot.messages import parse_message
from wecom_bot.ratelimit import SlidingWindowLimiter
from wecom_bot.repeats import MAY_REPEAT, marked_repeat, may_have_been_processed
from wecom_bot.store import MemoryOutbox, NewMessage
from wecom_bot.storm import ALERTS_KEY

WINDOW = 1.0


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


# -- which failures may have been processed --------------------------------------------------


@pytest.mark.parametrize(
    ("error", "maybe"),
    [
        (RequestTimeout("no answer in time (ReadTimeout)"), True),
        (TransportError("request failed: RemoteProtocolError: Server disconnected"), True),
        (TransportError("request failed: ReadError: reset by peer"), True),
        (RequestTimeout("no answer in time (ConnectTimeout)"), False),
        (TransportError("request failed: ConnectError: [Errno 111] refused"), False),
        (RequestTimeout("no answer in time (WriteTimeout)"), False),
        (HTTPStatusError(502), False),
        (WeComAPIError(45009, "api freq out of limit"), False),
    ],
)
def test_only_a_request_without_an_answer_may_have_been_processed(error: Any, maybe: bool) -> None:
    assert may_have_been_processed(error) is maybe


# -- the marker --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["text", "markdown", "markdown_v2"])
def test_the_marker_is_the_first_line_and_needs_no_escaping(kind: str) -> None:
    assert escape(MAY_REPEAT, kind) == MAY_REPEAT  # type: ignore[arg-type]
    first = "# 🔥 DiskFull" if kind != "text" else "DiskFull on db-1"
    payload: dict[str, Any] = {"msgtype": kind, kind: {"content": f"{first}\nmore"}}
    if kind == "text":
        payload[kind]["mentioned_list"] = ["a"]
    marked = marked_repeat(payload)
    content = marked[kind]["content"]
    assert content.split("\n")[0] == MAY_REPEAT
    # In markdown a blank line follows, so a heading or table that opens the message still
    # starts a block of its own.
    assert content == MAY_REPEAT + ("\n" if kind == "text" else "\n\n") + f"{first}\nmore"
    assert marked[kind].get("mentioned_list") == payload[kind].get("mentioned_list")
    assert payload[kind]["content"] == f"{first}\nmore"  # a copy: the stored one is unchanged
    assert marked_repeat(marked) == marked  # marked once, however often it is resent
    parse_message(marked)  # still a valid message


@pytest.mark.parametrize("kind", ["text", "markdown", "markdown_v2"])
def test_a_full_message_is_cut_at_its_end_to_make_room(kind: str) -> None:
    limit = CONTENT_LIMITS[kind]
    content = "告" * (limit // 3)  # within a byte or two of the limit
    marked = marked_repeat({"msgtype": kind, kind: {"content": content}})[kind]["content"]
    assert utf8_len(marked) <= limit
    assert marked.startswith(MAY_REPEAT) and marked.endswith("告…")
    parse_message({"msgtype": kind, kind: {"content": marked}})


def test_news_gets_it_in_its_first_title_and_other_kinds_stay_as_they_are() -> None:
    article = {"title": "标" * 60, "url": "https://example.com/x"}
    news = {"msgtype": "news", "news": {"articles": [article, dict(article)]}}
    marked = marked_repeat(news)["news"]["articles"]
    assert marked[0]["title"].startswith(MAY_REPEAT + " ")
    assert utf8_len(marked[0]["title"]) <= NEWS_TITLE_MAX_BYTES
    assert marked[1]["title"] == article["title"]
    image = {"msgtype": "image", "image": {"base64": "eA==", "md5": "x"}}
    assert marked_repeat(image) is image


def test_private_keys_survive_the_copy() -> None:
    payload = {"msgtype": "text", "text": {"content": "a"}, ALERTS_KEY: [{"k": 1}]}
    assert marked_repeat(payload)[ALERTS_KEY] == [{"k": 1}]


# -- the window --------------------------------------------------------------------------------


def test_a_slow_answer_moves_the_sends_mark_to_the_answer() -> None:
    clock = FakeMonotonic()
    limiter = SlidingWindowLimiter("3/10s", clock=clock)
    assert limiter.try_acquire("k") == 0.0  # the slow one, at 100
    clock.now = 101.0
    assert limiter.try_acquire("k") == 0.0
    clock.now = 104.0  # its answer came 4 s after its slot
    limiter.answered("k", 4.0)
    assert limiter.used("k") == 2  # moved, not added
    assert limiter.try_acquire("k") == 0.0
    clock.now = 110.5  # without the move, the slot taken at 100 would be free again
    assert limiter.try_acquire("k") == pytest.approx(0.5)  # the one at 101 frees at 111
    clock.now = 111.0
    assert limiter.try_acquire("k") == 0.0
    assert limiter.try_acquire("k") == pytest.approx(3.0)  # the moved one frees at 114


def test_a_send_without_an_answer_counts_until_it_may_have_been_processed() -> None:
    clock = FakeMonotonic()
    limiter = SlidingWindowLimiter("1/10s", clock=clock)
    assert limiter.try_acquire("k") == 0.0
    clock.now = 102.0  # timed out after 2 s: WeCom may process it up to 2 s later still
    limiter.answered("k", 2.0, later=2.0)
    assert limiter.try_acquire("k") == pytest.approx(12.0)  # frees at 104 + 10
    clock.now = 130.0  # an answer after the mark left the window adds one
    limiter.answered("k", 25.0)
    assert limiter.used("k") == 1


# -- over HTTP -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def emu() -> Iterator[Emu]:
    with running(EmulatorSettings(rate=RateSpec(20, WINDOW))) as emulator:
        yield emulator


async def test_three_answers_past_the_timeout_repeat_only_their_messages_marked(
    emu: Emu,
) -> None:
    key = new_key()
    store = MemoryOutbox()
    count = 80
    await store.enqueue([
        NewMessage(bot="ops", payload={"msgtype": "text", "text": {"content": f"alert {i:03d}"}},
                   coalescible=False)
        for i in range(count)
    ])  # fmt: skip
    dispatcher = make_dispatcher(store, emu, {"ops": (key,)}, coalesce_after=3600.0)
    dispatcher.targets["ops"] = dataclasses.replace(dispatcher.targets["ops"], timeout=1.0)
    await dispatcher.start()
    try:
        for _ in range(400):
            if len(_accepted(emu, key)) >= 15:
                break
            await asyncio.sleep(0.01)
        # Processed 0.25 s after the client gave up on each: the slowest kind of "slow".
        inject(emu, key, count=3, kind="delay", delay_ms=1250)
        for _ in range(600):
            if await store.pending_count() == 0:
                break
            await asyncio.sleep(0.02)
        assert await store.pending_count() == 0
    finally:
        await dispatcher.stop()
    entries = all_entries(emu, key)
    assert [e["errcode"] for e in entries if e["status"] != "accepted"] == []  # 0 x 45009
    texts = Counter(e["payload"]["text"]["content"] for e in entries if e["status"] == "accepted")
    plain = {t for t in texts if not t.startswith(MAY_REPEAT)}
    repeats = Counter(
        {t.removeprefix(MAY_REPEAT + "\n"): n for t, n in texts.items() if t.startswith(MAY_REPEAT)}
    )
    assert plain == {f"alert {i:03d}" for i in range(count)}  # 0 lost
    assert all(texts[t] == 1 for t in plain)  # nothing repeats unmarked
    # each slow answer costs one marked resend (a resend may itself meet a slow answer)
    assert sum(repeats.values()) == 3 and set(repeats) <= plain
    assert max_in_window([e["received_at"] for e in entries], WINDOW) <= 20
    print(f"\nslow answers: {count} messages, 3 past the timeout -> {sum(texts.values())} "
          f"accepted, 3 marked repeats, 0 x 45009")  # fmt: skip


def _accepted(emu: Emu, key: str) -> list[dict[str, Any]]:
    return [e for e in all_entries(emu, key) if e["status"] == "accepted"]
