"""The ``markdown_v2`` subset: block and inline syntax, drawn; colours and mentions, literal."""

from __future__ import annotations

import re

import pytest

from wecom_bot.preview import render_markdown_v2

from .test_safety import assert_safe, url_attributes, visible_text

LINK_ATTRS = 'target="_blank" rel="noopener noreferrer nofollow"'


def body(content: str) -> str:
    html = render_markdown_v2(content)
    prefix, suffix = '<div class="wb-md wb-md2">', "</div>"
    assert html.startswith(prefix) and html.endswith(suffix)
    return html[len(prefix) : -len(suffix)]


def tags(html: str) -> list[str]:
    """The sequence of opening and closing tag names, to compare structure."""
    return re.findall(r"</?([a-z0-9]+)", html)


@pytest.mark.parametrize("level", range(1, 7))
def test_headings(level: int) -> None:
    assert body("#" * level + " 标题") == (
        f'<h{level} class="wb-md-h wb-md-h{level}">标题</h{level}>'
    )


def test_no_space_or_seven_hashes_is_a_paragraph() -> None:
    assert body("#标题\n####### x") == '<p class="wb-md-p">#标题<br>####### x</p>'


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("*斜体*", "<em>斜体</em>"),
        ("**加粗**", "<strong>加粗</strong>"),
        ("***都有***", "<strong><em>都有</em></strong>"),
        ("**粗 *斜* 粗**", "<strong>粗 <em>斜</em> 粗</strong>"),
        ("2 * 3 * 4", "2 * 3 * 4"),
        ("a*b*c", "a<em>b</em>c"),
        (r"\*不是斜体\*", "*不是斜体*"),
        ("**未闭合", "**未闭合"),
        ("a ****", "a ****"),
    ],
)
def test_emphasis(content: str, expected: str) -> None:
    assert body(content) == f'<p class="wb-md-p">{expected}</p>'


def test_nested_unordered_list_by_two_space_indent() -> None:
    html = body("- 一\n- 二\n  - 二.一\n    - 二.一.一\n  - 二.二\n- 三")
    assert html == (
        '<ul class="wb-md-ul"><li>一</li><li>二'
        '<ul class="wb-md-ul"><li>二.一<ul class="wb-md-ul"><li>二.一.一</li></ul></li>'
        "<li>二.二</li></ul></li><li>三</li></ul>"
    )


def test_ordered_list_keeps_its_start_number() -> None:
    assert body("1. a\n2. b") == '<ol class="wb-md-ol"><li>a</li><li>b</li></ol>'
    assert body("3. c\n4. d") == '<ol class="wb-md-ol" start="3"><li>c</li><li>d</li></ol>'


def test_list_type_change_starts_a_new_list() -> None:
    assert tags(body("- a\n1. b")) == ["ul", "li", "li", "ul", "ol", "li", "li", "ol"]


def test_ordered_inside_unordered() -> None:
    assert tags(body("- a\n  1. b\n  2. c")) == [
        "ul", "li", "ol", "li", "li", "li", "li", "ol", "li", "ul",
    ]  # fmt: skip


def test_list_nesting_is_capped_but_keeps_every_item() -> None:
    content = "\n".join("  " * n + f"- {n}" for n in range(30))
    html = render_markdown_v2(content)
    assert_safe(html)
    assert html.count("<li>") == 30
    assert html.count("<ul") <= 8


def test_nested_quotes_from_the_spec() -> None:
    html = body("> 一级引用\n>>二级引用\n>>>三级引用")
    assert html == (
        '<blockquote class="wb-md-quote"><p class="wb-md-p">一级引用</p>'
        '<blockquote class="wb-md-quote"><p class="wb-md-p">二级引用</p>'
        '<blockquote class="wb-md-quote"><p class="wb-md-p">三级引用</p>'
        "</blockquote></blockquote></blockquote>"
    )


def test_quote_nesting_is_capped() -> None:
    html = render_markdown_v2(">" * 50 + " deep")
    assert_safe(html)
    assert html.count("<blockquote") == 8
    assert visible_text(html).endswith("deep")


def test_links_and_the_spec_escaped_slash_link() -> None:
    html = body(r"[这是一个链接](https:work.weixin.qq.com\/api\/doc)")
    assert html == (
        '<p class="wb-md-p"><a class="wb-link" href="https://work.weixin.qq.com/api/doc" '
        f"{LINK_ATTRS}>这是一个链接</a></p>"
    )


def test_images_are_lazy_and_send_no_referrer() -> None:
    html = body("![示意图](https://img.example/a.png)")
    assert html == (
        '<p class="wb-md-p"><img class="wb-md-img" src="https://img.example/a.png" alt="示意图" '
        'loading="lazy" referrerpolicy="no-referrer"></p>'
    )


@pytest.mark.parametrize(
    "url", ["javascript:alert(1)", "data:image/png;base64,AAAA", "//evil.example/a.png", "a.png"]
)
def test_images_and_links_with_other_urls_get_no_src_or_href(url: str) -> None:
    html = render_markdown_v2(f"![x]({url}) [y]({url})")
    assert_safe(html)
    assert url_attributes(html) == []
    assert "wb-img-missing" in html and "wb-link--blocked" in html


@pytest.mark.parametrize("rule", ["---", "***", "___", "- - -", " * * * "])
def test_horizontal_rules(rule: str) -> None:
    assert body(f"上\n\n{rule}\n下") == (
        '<p class="wb-md-p">上</p><hr class="wb-md-hr"><p class="wb-md-p">下</p>'
    )


def test_inline_code_is_escaped_and_not_parsed() -> None:
    assert body("`**<b>** [x](https://a.example)`") == (
        '<p class="wb-md-p"><code class="wb-md-code">'
        "**&lt;b&gt;** [x](https://a.example)</code></p>"
    )


def test_double_backtick_code_may_hold_a_backtick() -> None:
    assert body("``a ` b``") == '<p class="wb-md-p"><code class="wb-md-code">a ` b</code></p>'


def test_fenced_code_block_keeps_lines_and_escapes() -> None:
    html = body("```python\nif a < b:\n    print('<script>')\n```\n后")
    assert html == (
        '<pre class="wb-md-pre"><code>if a &lt; b:\n    print(&#x27;&lt;script&gt;&#x27;)'
        '</code></pre><p class="wb-md-p">后</p>'
    )


def test_unclosed_fence_runs_to_the_end() -> None:
    html = body("```\n# not a heading\n- not a list")
    assert html == '<pre class="wb-md-pre"><code># not a heading\n- not a list</code></pre>'


def test_table_with_alignments() -> None:
    html = body(
        "| 姓名 | 文化衫尺寸 | 收货地址 |\n| :----- | :----: | -------: |\n"
        "| 张三 | S | 广州 |\n| 李四 | L | **深圳** |"
    )
    assert html == (
        '<div class="wb-md-table-wrap"><table class="wb-md-table"><thead><tr>'
        '<th class="wb-align-left">姓名</th><th class="wb-align-center">文化衫尺寸</th>'
        '<th class="wb-align-right">收货地址</th></tr></thead><tbody>'
        '<tr><td class="wb-align-left">张三</td><td class="wb-align-center">S</td>'
        '<td class="wb-align-right">广州</td></tr>'
        '<tr><td class="wb-align-left">李四</td><td class="wb-align-center">L</td>'
        '<td class="wb-align-right"><strong>深圳</strong></td></tr></tbody></table></div>'
    )


def test_ragged_table_rows_are_padded_and_cut_to_the_header() -> None:
    html = body("a | b\n--- | ---\n1\n1 | 2 | 3")
    assert html.count("<td") == 4
    assert "3" not in visible_text(html)


def test_pipe_lines_without_a_delimiter_row_are_text() -> None:
    assert body("a | b\nc | d") == '<p class="wb-md-p">a | b<br>c | d</p>'


def test_escaped_pipe_stays_in_its_cell() -> None:
    html = body("| a \\| b | c |\n|---|---|\n| 1 | 2 |")
    assert len(re.findall("<th[ >]", html)) == 2
    assert "a | b" in visible_text(html)


@pytest.mark.parametrize(
    "content", ['<font color="info">绿</font>', "<@zhangsan>", "<@all>", "<b>x</b>"]
)
def test_font_colours_mentions_and_html_are_literal(content: str) -> None:
    html = render_markdown_v2(content)
    assert "wb-font" not in html and "wb-mention" not in html
    assert visible_text(html) == content


def test_paragraph_lines_are_joined_with_breaks_and_blank_lines_split_them() -> None:
    assert body("一\n二\n\n三") == '<p class="wb-md-p">一<br>二</p><p class="wb-md-p">三</p>'


def test_the_whole_spec_example() -> None:
    content = (
        "# 一、标题\n## 二级标题\n### 三级标题\n# 二、字体\n*斜体*\n\n**加粗**\n# 三、列表 \n"
        "- 无序列表 1 \n- 无序列表 2\n  - 无序列表 2.1\n  - 无序列表 2.2\n1. 有序列表 1\n"
        "2. 有序列表 2\n# 四、引用\n> 一级引用\n>>二级引用\n>>>三级引用\n# 五、链接\n"
        "[这是一个链接](https:work.weixin.qq.com\\/api\\/doc)\n"
        "![](https://res.mail.qq.com/node/ww/wwopenmng/images/independent/doc/test_pic_msg1.png)\n"
        "# 六、分割线\n\n---\n# 七、代码\n`这是行内代码`\n```\n这是独立代码块\n```\n\n"
        "# 八、表格\n| 姓名 | 文化衫尺寸 | 收货地址 |\n| :----- | :----: | -------: |\n"
        "| 张三 | S | 广州 |\n| 李四 | L | 深圳 |\n"
    )
    html = render_markdown_v2(content)
    assert_safe(html)
    counts = {tag: len(re.findall(f"<{tag}[ >]", html)) for tag in
              ("h1", "h2", "h3", "em", "strong", "ul", "ol", "li", "blockquote", "a", "img",
               "hr", "code", "pre", "table", "th", "td")}  # fmt: skip
    assert counts == {
        "h1": 8, "h2": 1, "h3": 1, "em": 1, "strong": 1, "ul": 2, "ol": 1, "li": 6,
        "blockquote": 3, "a": 1, "img": 1, "hr": 1, "code": 2, "pre": 1, "table": 1,
        "th": 3, "td": 6,
    }  # fmt: skip
