"""Digests keep every item and use the byte budget fully."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from wecom_bot.digest import one_line, plan_digest
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
    assert not plan.compact
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
    assert "500 notifications" in plan.contents[0]


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
