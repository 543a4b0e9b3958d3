"""The legacy ``markdown`` subset: what WeCom supports is drawn, everything else stays literal."""

from __future__ import annotations

import pytest

from wecom_bot.preview import render_markdown

from .test_safety import assert_safe, url_attributes, visible_text


def body(content: str) -> str:
    """The fragment without the outer ``wb-md`` wrapper."""
    html = render_markdown(content)
    prefix, suffix = '<div class="wb-md">', "</div>"
    assert html.startswith(prefix) and html.endswith(suffix)
    return html[len(prefix) : -len(suffix)]


@pytest.mark.parametrize("level", range(1, 7))
def test_headings_one_to_six_need_a_space(level: int) -> None:
    marks = "#" * level
    assert body(f"{marks} 标题") == f'<h{level} class="wb-md-h wb-md-h{level}">标题</h{level}>'
    assert body(f"{marks}标题") == f'<div class="wb-md-line">{marks}标题</div>'


def test_seven_hashes_is_not_a_heading() -> None:
    assert body("####### x") == '<div class="wb-md-line">####### x</div>'


def test_bold_link_and_inline_code() -> None:
    html = body("**粗体** [文档](https://work.weixin.qq.com/api/doc?a=1&b=2) `code <x>`")
    assert html == (
        '<div class="wb-md-line"><strong>粗体</strong> '
        '<a class="wb-link" href="https://work.weixin.qq.com/api/doc?a=1&amp;b=2" '
        'target="_blank" rel="noopener noreferrer nofollow">文档</a> '
        '<code class="wb-md-code">code &lt;x&gt;</code></div>'
    )


def test_a_link_to_anything_but_http_is_drawn_without_href() -> None:
    html = body("[点我](javascript:alert(1)) [相对](/x) [ftp](ftp://h/x)")
    assert url_attributes(html) == []
    assert html.count("wb-link--blocked") == 3
    assert visible_text(html) == "点我 相对 ftp"


def test_inline_code_does_not_span_lines() -> None:
    html = body("`open\nclose`")
    assert "<code" not in html
    assert visible_text(html) == "`openclose`"


def test_code_fences_are_shown_as_plain_text() -> None:
    content = "```\nprint(1)\n```"
    assert "<code" not in body(content)
    assert "<pre" not in body(content)
    assert visible_text(render_markdown(content)) == content.replace("\n", "")


def test_quote_lines_group_into_one_quote() -> None:
    html = body("前\n>类型:用户反馈\n> VIP:15例\n后")
    assert html == (
        '<div class="wb-md-line">前</div>'
        '<blockquote class="wb-md-quote"><div class="wb-md-line">类型:用户反馈</div>'
        '<div class="wb-md-line">VIP:15例</div></blockquote>'
        '<div class="wb-md-line">后</div>'
    )


@pytest.mark.parametrize("colour", ["info", "comment", "warning"])
def test_the_three_font_colours(colour: str) -> None:
    html = body(f'数量<font color="{colour}">132例</font>')
    span = f'<span class="wb-font wb-font--{colour}">132例</span>'
    assert html == f'<div class="wb-md-line">数量{span}</div>'


@pytest.mark.parametrize(
    "content",
    [
        '<font color="red">x</font>',
        '<font color="#ff0000">x</font>',
        '<font size="7">x</font>',
        "<b>x</b>",
        "<span style='color:red'>x</span>",
        '<font color="info">unclosed',
        "stray </font>",
    ],
)
def test_any_other_tag_or_colour_is_literal_text(content: str) -> None:
    html = body(content)
    assert "wb-font" not in html
    assert visible_text(html) == content


def test_font_may_hold_bold_links_and_nested_fonts() -> None:
    html = body(
        '<font color="warning">**P1** [看板](https://g.example) '
        '<font color="comment">灰</font></font>'
    )
    assert html == (
        '<div class="wb-md-line"><span class="wb-font wb-font--warning"><strong>P1</strong> '
        '<a class="wb-link" href="https://g.example" target="_blank" '
        'rel="noopener noreferrer nofollow">看板</a> '
        '<span class="wb-font wb-font--comment">灰</span></span></div>'
    )


def test_the_spec_example_renders_colours_inside_quotes() -> None:
    content = (
        '实时新增用户反馈<font color="warning">132例</font>,请相关同事注意。\n'
        '>类型:<font color="comment">用户反馈</font>\n'
        '>普通用户反馈:<font color="comment">117例</font>\n'
        '>VIP用户反馈:<font color="comment">15例</font>'
    )
    html = render_markdown(content)
    assert_safe(html)
    assert html.count("wb-font--comment") == 3
    assert html.count("wb-font--warning") == 1
    assert html.count("<blockquote") == 1
    assert visible_text(html) == (
        "实时新增用户反馈132例,请相关同事注意。类型:用户反馈普通用户反馈:117例VIP用户反馈:15例"
    )


def test_mentions_become_chips() -> None:
    html = body("请 <@zhangsan> 和 <@all> 处理")
    assert html == (
        '<div class="wb-md-line">请 <span class="wb-mention">@zhangsan</span> 和 '
        '<span class="wb-mention wb-mention--all">@all</span> 处理</div>'
    )


@pytest.mark.parametrize(
    "content",
    [
        "- 列表项\n* 星号项\n1. 有序",
        "| a | b |\n| --- | --- |\n| 1 | 2 |",
        "*斜体* _下划线_",
        "---",
    ],
)
def test_syntax_outside_the_subset_is_shown_as_typed(content: str) -> None:
    html = render_markdown(content)
    for tag in ("<ul", "<ol", "<li", "<table", "<em", "<hr"):
        assert tag not in html
    assert visible_text(html) == content.replace("\n", "")


def test_images_are_not_drawn_nor_turned_into_links() -> None:
    content = "![图](https://img.example/a.png)"
    html = body(content)
    assert url_attributes(html) == []
    assert visible_text(html) == content


def test_line_breaks_and_blank_lines_are_kept() -> None:
    html = body("a\r\n\r\nb\rc")
    assert html == (
        '<div class="wb-md-line">a</div><div class="wb-md-line"><br></div>'
        '<div class="wb-md-line">b</div><div class="wb-md-line">c</div>'
    )


def test_unmatched_markers_stay_literal() -> None:
    for content in ("**open", "a ** b", "[x](", "[x]", "`", "**", "<@>", "<@ a>"):
        html = render_markdown(content)
        assert visible_text(html) == content, content
        assert "<strong" not in html and "<a " not in html and "<code" not in html


def test_nesting_beyond_the_cap_is_literal_not_dropped() -> None:
    depth = 20
    content = '<font color="info">' * depth + "x" + "</font>" * depth
    html = render_markdown(content)
    assert_safe(html)
    assert 0 < html.count("wb-font--info") < depth
    assert visible_text(html).count("x") == 1
