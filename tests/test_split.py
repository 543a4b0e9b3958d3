"""Byte-exact, markdown-aware splitting."""

from __future__ import annotations

import re
import warnings

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wecom_bot.errors import MessageValidationError
from wecom_bot.limits import utf8_len
from wecom_bot.messages import (
    ImageMessage,
    MarkdownMessage,
    MarkdownV2Message,
    NewsMessage,
    TextMessage,
)
from wecom_bot.split import (
    SplitPart,
    Syntax,
    plan_split,
    split_content,
    split_message,
    split_to_messages,
)

MARKER = re.compile(r"\n{0,2}\((\d+)/(\d+)\)")
FENCE_LINE = re.compile(r" {0,3}(`{3,}|~{3,})[^\n]*")


def checked(
    content: str, max_bytes: int, syntax: Syntax = "text", markers: bool = False
) -> list[SplitPart]:
    """Split and check the invariants every split must keep; return the parts."""
    parts = plan_split(content, max_bytes, syntax=syntax, markers=markers)
    texts = split_content(content, max_bytes, syntax=syntax, markers=markers)
    assert texts == [p.text for p in parts]
    # Every part fits, counted in UTF-8 bytes.
    for text in texts:
        assert utf8_len(text) <= max_bytes, (utf8_len(text), max_bytes)
    # The bodies give back the content: nothing lost, nothing repeated, nothing reordered.
    assert "".join(p.body for p in parts) == content
    assert all(p.body for p in parts) or content == ""
    # What was added is only what the split promises to add.
    pos = 0
    for i, part in enumerate(parts, start=1):
        if part.prefix:
            assert syntax != "text"
            assert part.prefix.endswith("\n")
            lines = part.prefix[:-1].split("\n")
            # A reopened fence or a repeated table header, taken from the content before it.
            assert all(line in content[:pos] for line in lines)
            assert len(lines) == 1 and FENCE_LINE.fullmatch(lines[0]) or len(lines) == 2
        if part.suffix:
            assert syntax != "text"
            assert re.fullmatch(r"\n?(`{3,}|~{3,})", part.suffix)
        if markers and len(parts) > 1:
            match = MARKER.fullmatch(part.marker)
            assert match is not None, part.marker
            assert (int(match[1]), int(match[2])) == (i, len(parts))
            assert (part.prefix + part.body + part.suffix + part.marker).endswith(
                ("\n\n" if syntax == "markdown_v2" else "\n") + match[0].lstrip("\n")
            )
        else:
            assert part.marker == ""
        pos += len(part.body)
    return parts


def cuts(parts: list[SplitPart]) -> list[int]:
    """Positions in the content where one part ends and the next begins."""
    out, pos = [], 0
    for part in parts[:-1]:
        pos += len(part.body)
        out.append(pos)
    return out


# -- fitting and UTF-8 ----------------------------------------------------------------------


def test_content_that_fits_is_returned_unchanged_even_with_markers() -> None:
    content = "短消息 with a [link](https://example.com)"
    assert split_content(content, 2048) == [content]
    assert split_content(content, 2048, syntax="markdown", markers=True) == [content]
    assert split_content("", 10) == [""]


def test_chinese_exactly_at_the_limit_and_one_byte_over() -> None:
    at_limit = "中" * 682 + "ab"  # 2046 + 2 bytes
    assert utf8_len(at_limit) == 2048
    assert split_content(at_limit, 2048) == [at_limit]

    over = "中" * 683  # 2049 bytes: the 683rd character does not fit
    parts = checked(over, 2048)
    assert [p.text for p in parts] == ["中" * 682, "中"]
    assert utf8_len(parts[0].text) == 2046


def test_emoji_are_never_cut() -> None:
    content = "😀" * 513  # 2052 bytes
    parts = checked(content, 2048)
    assert [len(p.text) for p in parts] == [512, 1]
    assert utf8_len(parts[0].text) == 2048
    # A budget that is not a multiple of 4 leaves bytes unused rather than cut a character.
    parts = checked("😀" * 10, 10)
    assert [p.text for p in parts] == ["😀😀", "😀😀", "😀😀", "😀😀", "😀😀"]


def test_grapheme_clusters_stay_whole() -> None:
    family = "👨\u200d👩\u200d👧"  # 18 bytes, one visible character
    flags = "🇨🇳🇺🇸"  # two flags of two regional indicators each
    accented = "e\u0301"  # e + combining acute
    for cluster in (family, "🇨🇳", accented):
        content = "x" * 10 + cluster + "y" * 10
        budget = 10 + utf8_len(cluster) - 1  # the cluster cannot fit whole after the x's
        parts = checked(content, max(budget, 20))
        for cut in cuts(parts):
            assert not (10 < cut < 10 + len(cluster)), (cluster, cut)
    parts = checked(flags * 3, 16)  # two flags per part
    assert [p.text for p in parts] == [flags, flags, flags]


def test_crlf_is_not_cut_in_two() -> None:
    content = "line one\r\nline two\r\nline three\r\n"
    for budget in range(10, 30):
        for cut in cuts(checked(content, budget)):
            assert content[cut - 1 : cut + 1] != "\r\n"


def test_max_bytes_too_small_or_bad_syntax() -> None:
    with pytest.raises(ValueError, match="too small"):
        split_content("😀😀", 3)
    with pytest.raises(ValueError, match="too small"):
        split_content("a" * 50, 5, markers=True)
    with pytest.raises(ValueError):
        split_content("abc", 0)
    with pytest.raises(ValueError, match="syntax"):
        split_content("a" * 50, 10, syntax="html")  # type: ignore[arg-type]


# -- where cuts fall ------------------------------------------------------------------------


def test_prefers_a_blank_line_over_a_line_break() -> None:
    content = "A" * 40 + "\n\n" + "B" * 20 + "\n" + "C" * 20 + "\n" + "D" * 30
    parts = checked(content, 90)
    assert parts[0].text == "A" * 40 + "\n\n" + "B" * 20 + "\n" + "C" * 20 + "\n"
    parts = checked(content, 75)
    # The paragraph boundary at 42 fills more than half of 75: it wins over the line at 63.
    assert parts[0].text == "A" * 40 + "\n\n"
    assert parts[1].text.startswith("B")


def test_a_nearly_empty_part_is_not_worth_a_paragraph_boundary() -> None:
    content = "Title\n\n" + "\n".join(f"- item {i:02d}" for i in range(20))
    parts = checked(content, 100)
    assert parts[0].text.startswith("Title\n\n- item 00\n")
    assert parts[0].text.endswith("\n")  # still a line boundary, not mid-line


def test_prefers_a_line_then_a_word_then_characters() -> None:
    content = "alpha beta gamma\ndelta epsilon zeta eta theta"
    assert checked(content, 30)[0].text == "alpha beta gamma\n"
    assert checked("alpha beta gamma delta", 14)[0].text == "alpha beta "
    assert checked("abcdefghijklmnopqrstuvwxyz", 10)[0].text == "abcdefghij"


def test_chinese_text_breaks_after_punctuation() -> None:
    content = "这是第一句话，这是第二句话。这是第三句话！"
    parts = checked(content, 45)  # 15 characters fit
    assert parts[0].text == "这是第一句话，这是第二句话。"


def test_no_whitespace_only_part_when_it_can_be_avoided() -> None:
    content = "a" * 20 + "\n\n\n\n"
    parts = checked(content, 20)
    assert all(p.text.strip() for p in parts)
    content = "\n" * 5 + "b" * 20
    parts = checked(content, 20)
    assert all(p.text.strip() for p in parts)


# -- markdown: fences, tables, spans -------------------------------------------------------


def test_code_fence_is_closed_and_reopened_with_its_info_string() -> None:
    code = "\n".join(f"print({i})" for i in range(12))
    content = f"Intro\n\n```python\n{code}\n```\n\nOutro"
    parts = checked(content, 60, syntax="markdown_v2")
    assert len(parts) >= 3
    assert parts[0].suffix == "```" and parts[0].text.endswith("\n```")
    assert parts[1].prefix == "```python\n"
    for part in parts[1:-1]:
        if part.prefix:
            assert part.text.startswith("```python\n")
    # Every part shows balanced fences.
    for part in parts:
        assert sum(1 for line in part.text.split("\n") if line.startswith("```")) % 2 == 0


def test_tilde_and_long_fences_close_with_their_own_characters() -> None:
    content = "~~~~ sh\n" + "\n".join(f"echo {i} ```" for i in range(10)) + "\n~~~~\nend"
    parts = checked(content, 60, syntax="markdown")
    assert parts[0].suffix == "~~~~"
    assert parts[1].prefix == "~~~~ sh\n"


def test_a_long_code_line_is_cut_mid_line_and_still_closed() -> None:
    content = "```\n" + "x" * 100 + "\n```"
    parts = checked(content, 40, syntax="markdown")
    assert parts[0].suffix == "\n```"
    assert parts[1].prefix == "```\n"


def test_an_unclosed_fence_is_left_unclosed_in_the_last_part() -> None:
    content = "```js\n" + "let a = 1;\n" * 10
    parts = checked(content, 50, syntax="markdown")
    assert parts[-1].suffix == ""
    assert parts[0].suffix == "```"


def test_fence_markers_inside_text_syntax_are_plain_text() -> None:
    content = "```\n" + "x\n" * 30 + "```"
    parts = checked(content, 20, syntax="text")
    assert all(p.prefix == p.suffix == "" for p in parts)


def test_markdown_v2_table_repeats_header_and_alignment() -> None:
    rows = "".join(f"| host-{i:02d} | 状态{i} |\n" for i in range(12))
    content = "Report\n\n| host | 状态 |\n|:-----|-----:|\n" + rows + "\nDone."
    parts = checked(content, 120, syntax="markdown_v2")
    assert len(parts) >= 3
    header = "| host | 状态 |\n|:-----|-----:|\n"
    continued = [p for p in parts if p.body.startswith("| host-")]
    assert continued and all(p.prefix == header for p in continued)
    assert all(p.text.startswith(header) for p in continued)
    # The header rows are never separated from each other or from the first row.
    first = next(p for p in parts if "|:-----" in p.body)
    assert "| host-00 |" in first.body


def test_markdown_v1_does_not_repeat_table_headers() -> None:
    rows = "".join(f"| h{i} | v{i} |\n" for i in range(20))
    content = "| h | v |\n|---|---|\n" + rows
    parts = checked(content, 60, syntax="markdown")
    assert all(p.prefix == "" for p in parts)


@pytest.mark.parametrize(
    "span",
    [
        "[the release notes](https://example.com/releases/v1.2.3?tab=notes)",
        "![chart](https://example.com/chart(1).png)",
        '<font color="warning">磁盘使用率 95%，请尽快处理</font>',
        "<@zhangsan>",
        "`kubectl rollout restart deploy/api`",
    ],
)
@pytest.mark.parametrize("syntax", ["markdown", "markdown_v2"])
def test_spans_are_never_cut(span: str, syntax: Syntax) -> None:
    budget = utf8_len(span) + 12
    for lead in range(0, 40, 3):
        content = "word " * (lead // 5) + "x" * (lead % 5) + " " + span + " tail words here"
        parts = checked(content, budget, syntax=syntax)
        assert any(span in p.text for p in parts), (lead, [p.text for p in parts])


def test_spans_are_plain_text_in_text_syntax() -> None:
    content = "see [a link](https://example.com/a/very/long/path) now"
    parts = checked(content, 30, syntax="text")
    assert not any("[a link](https://example.com/a/very/long/path)" in p.text for p in parts)


def test_a_span_larger_than_the_budget_is_cut_as_a_last_resort() -> None:
    link = "[x](https://example.com/" + "p" * 200 + ")"
    content = "before " + link + " after"
    parts = checked(content, 64, syntax="markdown")
    assert parts[0].text == "before "  # what precedes it is not dragged into the cut
    assert len(parts) > 3


def test_links_inside_code_blocks_are_not_spans() -> None:
    content = "```\n[a](http://x.y/zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz)\n```"
    parts = checked(content, 30, syntax="markdown")
    assert len(parts) > 1


# -- markers -------------------------------------------------------------------------------


def test_markers_on_their_own_line_inside_the_budget() -> None:
    content = "\n".join(f"line {i}" for i in range(30))
    parts = checked(content, 60, markers=True)
    total = len(parts)
    assert [p.text.rsplit("\n", 1)[1] for p in parts] == [
        f"({i}/{total})" for i in range(1, total + 1)
    ]


def test_marker_width_change_is_planned_for() -> None:
    # 7 parts without markers; room for "(i/9)" gives 10 parts, so "(i/10)" must fit instead.
    content = "x" * 100
    assert len(split_content(content, 16)) == 7
    parts = checked(content, 16, markers=True)
    assert len(parts) == 13  # 8 bytes of content + "\n(i/13)" per part
    assert parts[-1].text.endswith("(13/13)")
    assert max(utf8_len(p.text) for p in parts) == 16


def test_markdown_v2_markers_follow_a_blank_line() -> None:
    content = "| a | b |\n|---|---|\n" + "| 1 | 2 |\n" * 20
    parts = checked(content, 80, syntax="markdown_v2", markers=True)
    for part in parts:
        assert re.search(r"\n\n\(\d+/\d+\)\Z", part.text)


# -- messages -------------------------------------------------------------------------------


def test_split_message_returns_a_fitting_message_itself() -> None:
    message = TextMessage(content="hello", mentioned_list=["@all"])
    assert split_message(message)[0] is message
    markdown = MarkdownMessage(content="# title")
    assert split_message(markdown, markers=True) == [markdown]


def test_split_message_keeps_mentions_on_the_first_part_only() -> None:
    long_text = "\n".join(f"第{i}行：服务告警，请处理。" for i in range(200))
    message = TextMessage.model_construct(
        content=long_text,
        mentioned_list=["zhangsan", "@all"],
        mentioned_mobile_list=["13800001111"],
    )
    parts = split_message(message, markers=True)
    assert len(parts) > 1
    assert all(isinstance(p, TextMessage) for p in parts)
    first, *rest = parts
    assert isinstance(first, TextMessage)
    assert first.mentioned_list == ["zhangsan", "@all"]
    assert first.mentioned_mobile_list == ["13800001111"]
    for part in rest:
        assert isinstance(part, TextMessage)
        assert part.mentioned_list is None and part.mentioned_mobile_list is None
    assert all(utf8_len(p.content) <= 2048 for p in parts if isinstance(p, TextMessage))
    # Each part is a validated message that serialises within the API's limit.
    assert all(p.to_payload()["text"]["content"] for p in parts)


@pytest.mark.parametrize(
    ("cls", "msgtype"), [(MarkdownMessage, "markdown"), (MarkdownV2Message, "markdown_v2")]
)
def test_split_message_markdown_types(cls: type[MarkdownMessage], msgtype: str) -> None:
    content = "## 日报\n\n" + "\n".join(f"- 任务 {i}: **完成** <@user{i}>" for i in range(300))
    message = cls.model_construct(content=content)
    parts = split_message(message)
    assert len(parts) > 1
    assert all(type(p) is cls and p.msgtype == msgtype for p in parts)
    joined = "".join(p.content for p in parts if isinstance(p, cls))
    assert joined == content  # no fences or tables here, so nothing was added
    assert all(f"<@user{i}>" in joined for i in range(300))


def test_split_message_rejects_other_types() -> None:
    image = ImageMessage.from_bytes(
        bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000")
    )
    with pytest.raises(ValueError, match="image"):
        split_message(image)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        news = NewsMessage(articles=[{"title": "t", "url": "https://example.com"}])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="news"):
        split_message(news)


def test_split_to_messages_builds_validated_parts() -> None:
    parts = split_to_messages("text", "告警" * 1000, mentioned_list=["lisi"], markers=True)
    assert len(parts) == 3
    assert [p.to_payload()["text"].get("mentioned_list") for p in parts] == [["lisi"], None, None]
    assert parts[-1].to_payload()["text"]["content"].endswith("(3/3)")
    assert len(split_to_messages("markdown_v2", "x" * 5000)) == 2
    with pytest.raises(ValueError, match="mentioned"):
        split_to_messages("markdown", "hi", mentioned_list=["a"])
    with pytest.raises(ValueError):
        split_to_messages("news", "hi")  # type: ignore[arg-type]
    with pytest.raises(MessageValidationError):
        split_to_messages("text", "")


# -- properties ----------------------------------------------------------------------------

_ANY_CHAR = st.characters(codec="utf-8")  # no lone surrogates: they have no UTF-8 form
_TOKENS = st.one_of(
    st.sampled_from(
        [
            " ",
            "\n",
            "\n\n",
            "\r\n",
            "word",
            "告警",
            "。",
            "，",
            "😀",
            "👨\u200d👩\u200d👧",
            "🇨🇳",
            "e\u0301",
            "[link](https://e.com/a(b))",
            "![i](https://e.com/i.png)",
            '<font color="info">ok 好</font>',
            "<@zhangsan>",
            "`code`",
            "\n```py\n",
            "\n```\n",
            "\n~~~\n",
            "\n| a | b |\n|---|:-:|\n",
            "| 1 | 2 |\n",
        ]
    ),
    st.text(_ANY_CHAR, min_size=1, max_size=12),
)
_CONTENT = st.lists(_TOKENS, max_size=120).map("".join)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    content=_CONTENT,
    max_bytes=st.integers(min_value=24, max_value=400),
    syntax=st.sampled_from(["text", "markdown", "markdown_v2"]),
    markers=st.booleans(),
)
def test_property_every_part_fits_and_nothing_is_lost(
    content: str, max_bytes: int, syntax: Syntax, markers: bool
) -> None:
    checked(content, max_bytes, syntax, markers)


@settings(max_examples=200, deadline=None)
@given(
    content=st.text(_ANY_CHAR, max_size=600),
    max_bytes=st.integers(min_value=4, max_value=200),
)
def test_property_plain_text_parts_join_back_exactly(content: str, max_bytes: int) -> None:
    parts = split_content(content, max_bytes)
    assert "".join(parts) == content
    assert all(utf8_len(p) <= max_bytes for p in parts)


_SPANS = ["[link](https://e.com/x)", '<font color="info">好 ok</font>', "<@lisi>", "`a b`"]


@settings(max_examples=200, deadline=None)
@given(
    tokens=st.lists(
        st.one_of(
            st.sampled_from([" ", "\n", "\n\n", "词", "word", "😀"]), st.sampled_from(_SPANS)
        ),
        max_size=150,
    ),
    max_bytes=st.integers(min_value=60, max_value=300),
    markers=st.booleans(),
)
def test_property_spans_that_fit_are_never_cut(
    tokens: list[str], max_bytes: int, markers: bool
) -> None:
    content = "".join(tokens)
    parts = checked(content, max_bytes, "markdown", markers)
    spans, pos = [], 0
    for token in tokens:
        if token in _SPANS:
            spans.append((pos, pos + len(token)))
        pos += len(token)
    for cut in cuts(parts):
        assert not any(start < cut < end for start, end in spans), (cut, content)


def _fence_open_after(text: str) -> str | None:
    """The fence characters of the code block still open at the end of ``text``, if any."""
    open_fence: str | None = None
    for line in text.split("\n"):
        line = line.rstrip("\r")
        if open_fence is None:
            match = re.fullmatch(r" {0,3}(`{3,}[^`]*|~{3,}.*)", line)
            if match:
                open_fence = re.match(r"`+|~+", match[1])[0]  # type: ignore[index]
        elif re.fullmatch(rf" {{0,3}}{re.escape(open_fence[0])}{{{len(open_fence)},}}[ \t]*", line):
            open_fence = None
    return open_fence


@settings(max_examples=200, deadline=None)
@given(
    content=_CONTENT,
    max_bytes=st.integers(min_value=40, max_value=300),
    syntax=st.sampled_from(["markdown", "markdown_v2"]),
)
def test_property_code_blocks_are_closed_and_reopened_at_every_cut(
    content: str, max_bytes: int, syntax: Syntax
) -> None:
    parts = checked(content, max_bytes, syntax)
    pos = 0
    for part in parts:
        inside = _fence_open_after(content[:pos]) if pos else None
        if inside is not None:
            assert part.prefix.lstrip(" ").startswith(inside), (pos, part)
        pos += len(part.body)
        if part is not parts[-1]:
            assert _fence_open_after(part.text) is None, part
