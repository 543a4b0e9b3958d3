"""Digests keep every item and use the byte budget fully."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from wecom_bot.digest import SHAPE_KEY, one_line, packable, plan_digest, with_shape
from wecom_bot.limits import utf8_len
from wecom_bot.messages import parse_message


def _alerts(n: int) -> list[str]:
    return [
        f'## <font color="warning">[FIRING]</font> HighCPU #{i:04d}\n'
        f"> instance: node-{i}.example.com\n> summary: CPU above 90% for 5 minutes"
        for i in range(n)
    ]


def test_full_form_keeps_every_item_verbatim_and_fills_messages() -> None:
    items = _alerts(60)
    plan = plan_digest(items, syntax="markdown")
    assert not plan.compact and plan.whole
    joined = "\n".join(plan.contents)
    for item in items:
        assert item in joined
    assert all(utf8_len(c) <= 4096 for c in plan.contents)
    # greedy packing: every message but the last is at least three quarters full
    assert all(utf8_len(c) > 3 * 4096 // 4 for c in plan.contents[:-1])
    for payload in plan.payloads("markdown"):
        parse_message(payload)


def test_compact_form_when_slots_are_few_still_lists_every_item() -> None:
    items = _alerts(500)
    plan = plan_digest(items, syntax="markdown", max_messages=10)
    assert plan.compact
    assert len(plan.contents) <= 12
    joined = "\n".join(plan.contents)
    for i in range(500):
        assert f"HighCPU #{i:04d}" in joined
    assert "<font" not in joined  # markup stripped, so a cut can never leave it open
    assert all(utf8_len(c) <= 4096 for c in plan.contents)
    assert plan.contents[0].startswith("**合并 1/")
    assert plan.contents[0].split("\n")[0].endswith(" · 500 条通知（每条一行）**")
    assert not plan.whole


def test_compact_form_never_drops_even_when_over_the_slots() -> None:
    items = [f"alert {i}" for i in range(3000)]
    plan = plan_digest(items, syntax="text", max_messages=2)
    joined = "\n".join(plan.contents)
    assert all(f"alert {i}\n" in joined + "\n" for i in range(3000))
    assert all(utf8_len(c) <= 2048 for c in plan.contents)


def test_text_mentions_are_merged_onto_the_first_digest() -> None:
    plan = plan_digest(
        ["a", "b", "c"],
        syntax="text",
        mentioned=[["alice"], ["bob", "alice"], []],
        mentioned_mobiles=[[], ["138"], []],
    )
    first = plan.payloads("text")[0]["text"]
    assert first["mentioned_list"] == ["alice", "bob"]
    assert first["mentioned_mobile_list"] == ["138"]


def test_markdown_mentions_survive_the_compact_form() -> None:
    items = [f"alert {i} <@owner{i % 3}>" for i in range(400)]
    plan = plan_digest(items, syntax="markdown", max_messages=1)
    joined = "\n".join(plan.contents)
    for name in ("owner0", "owner1", "owner2"):
        assert f"<@{name}>" in joined


def test_an_item_larger_than_a_message_is_split_not_dropped() -> None:
    big = "x" * 5000
    plan = plan_digest([big, "small"], syntax="markdown")
    assert not plan.compact and not plan.whole  # the big one sits in two messages
    assert all(utf8_len(c) <= 4096 for c in plan.contents)
    assert sum(c.count("x") for c in plan.contents) == 5000


def test_one_line_strips_markup() -> None:
    line = one_line(
        '\n## <font color="info">[RESOLVED]</font> [Disk](http://x) **full**', "markdown"
    )
    assert line == "[RESOLVED] Disk full"


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.text(min_size=1, max_size=300), min_size=1, max_size=80),
    st.sampled_from(["text", "markdown", "markdown_v2"]),
    st.none() | st.integers(1, 5),
)
def test_property_every_part_fits_and_counts_every_item(
    items: list[str], syntax: str, slots: int | None
) -> None:
    plan = plan_digest(items, syntax=syntax, max_messages=slots)  # type: ignore[arg-type]
    limit = 2048 if syntax == "text" else 4096
    assert plan.items == len(items)
    assert all(utf8_len(c) <= limit for c in plan.contents)
    if not plan.compact:
        for item in items:  # an item that fits one message is carried whole, in one message
            if utf8_len(item) <= limit - 100:
                assert any(item in c for c in plan.contents)
    else:
        bullets = sum(c.count("\n- ") + c.count("\n• ") for c in plan.contents)
        assert bullets == len(items)


def test_hundreds_of_people_mentioned_overflow_into_parts_that_fit() -> None:
    items = [f"alert {i} <@person{i:03d}>" for i in range(400)]
    plan = plan_digest(items, syntax="markdown", max_messages=2)
    for content in plan.contents:
        assert utf8_len(content) <= 4096
        parse_message({"msgtype": "markdown", "markdown": {"content": content}})
    joined = "\n".join(plan.contents)
    assert all(f"<@person{i:03d}>" in joined for i in range(400))


def test_headings_are_chinese_in_every_syntax_and_number_the_parts() -> None:
    items = _alerts(60)
    full = plan_digest(items, syntax="markdown", notifications=7)
    total = len(full.contents)
    assert total > 1
    for i, content in enumerate(full.contents, 1):
        assert content.startswith(f"**合并 {i}/{total} · 7 条通知**\n\n")
    text = plan_digest(["a", "b"], syntax="text")
    assert text.contents == ["合并 1/1 · 2 条通知\n\na\n\nb"]
    compact = plan_digest([f"alert {i}" for i in range(3000)], syntax="markdown_v2", max_messages=1)
    assert compact.contents[0].startswith(
        f"**合并 1/{len(compact.contents)} · 3000 条通知（每条一行）**"
    )
    for content in full.contents + text.contents + compact.contents:
        heading = content.split("\n")[0]
        assert not any("a" <= c.lower() <= "z" for c in heading), heading  # one language


def test_the_heading_reserve_holds_the_largest_heading() -> None:
    from wecom_bot.digest import _HEADER_RESERVE, _header

    for syntax in ("text", "markdown", "markdown_v2"):
        assert utf8_len(_header(9999, 9999, 99999, True, syntax)) <= _HEADER_RESERVE  # type: ignore[arg-type]
    # hundreds of parts of 99,999 notifications: every part still within the byte limit
    plan = plan_digest([f"line {i}" for i in range(99_999)], syntax="text", max_messages=1)
    assert len(plan.contents) > 100
    assert all(utf8_len(c) <= 2048 for c in plan.contents)


def test_only_a_whole_message_written_per_alert_may_be_packed_whole() -> None:
    payload = {"msgtype": "markdown", "markdown": {"content": "x"}}
    assert packable(with_shape(payload, "alerts"))
    assert not packable(with_shape(payload, "summary"))
    assert not packable(with_shape(payload, "alerts", 1, 2))
    assert not packable(with_shape(payload, "alerts", 2, 2))
    assert not packable(payload)  # queued without saying what it is
    assert not packable({**payload, SHAPE_KEY: "alerts"})
    assert with_shape(payload, "alerts")[SHAPE_KEY] == {"form": "alerts", "part": 1, "parts": 1}
