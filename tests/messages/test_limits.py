"""Each documented limit at its boundary, with multi-byte characters."""

from __future__ import annotations

import base64
import hashlib
import warnings
from typing import Any

import pytest

from tests.images import jpeg_bytes, png_bytes
from wecom_bot import (
    Article,
    CardAction,
    CardImage,
    HorizontalContent,
    ImageMessage,
    JumpItem,
    MainTitle,
    MarkdownMessage,
    MarkdownV2Message,
    MessageValidationError,
    NewsMessage,
    NewsNoticeCard,
    QuoteArea,
    Source,
    TextMessage,
    TextNoticeCard,
    TruncatedWarning,
    VerticalContent,
    parse_message,
)
from wecom_bot.errors import Rule
from wecom_bot.limits import IMAGE_MAX_BYTES, utf8_len

ACTION = CardAction(type=1, url="https://example.com")


def _exactly(n_bytes: int) -> str:
    """A string of exactly n_bytes UTF-8 bytes mixing 3-byte, 4-byte and ASCII characters."""
    head = "告警😀" * (n_bytes // 14)
    return head + "a" * (n_bytes - utf8_len(head))


@pytest.mark.parametrize(
    ("cls", "limit", "path"),
    [
        (TextMessage, 2048, "text.content"),
        (MarkdownMessage, 4096, "markdown.content"),
        (MarkdownV2Message, 4096, "markdown_v2.content"),
    ],
)
def test_content_byte_limit(cls: Any, limit: int, path: str) -> None:
    at_limit = _exactly(limit)
    assert utf8_len(at_limit) == limit
    assert cls(content=at_limit).content == at_limit
    over = at_limit[:-1] + "é"  # one more byte than the limit
    assert utf8_len(over) == limit + 1
    with pytest.raises(MessageValidationError) as info:
        cls(content=over)
    issue = info.value.issues[0]
    assert (issue.field, issue.rule, issue.limit, issue.actual) == (
        path,
        Rule.MAX_BYTES,
        limit,
        limit + 1,
    )
    assert f"{limit + 1} bytes" in str(info.value) and "over by 1" in str(info.value)


def test_limits_count_bytes_not_characters() -> None:
    chinese = "警" * 683  # 683 characters, 2049 bytes
    assert len(chinese) < 2048
    with pytest.raises(MessageValidationError):
        TextMessage(content=chinese)


@pytest.mark.parametrize("cls", [TextMessage, MarkdownMessage, MarkdownV2Message])
def test_empty_content_is_rejected(cls: Any) -> None:
    with pytest.raises(MessageValidationError) as info:
        cls(content="")
    assert info.value.rule == Rule.EMPTY


def test_wrong_types_are_rejected_not_coerced() -> None:
    with pytest.raises(MessageValidationError) as info:
        parse_message({"msgtype": "text", "text": {"content": 42}})
    assert info.value.issues[0].rule == Rule.TYPE
    assert info.value.field == "text.content"


def test_unknown_fields_are_rejected_with_their_path() -> None:
    with pytest.raises(MessageValidationError) as info:
        parse_message({"msgtype": "markdown", "markdown": {"content": "x", "colour": "red"}})
    assert info.value.field == "markdown.colour"
    assert info.value.rule == Rule.UNKNOWN_FIELD


def test_markdown_v2_has_no_mentions() -> None:
    with pytest.raises(MessageValidationError) as info:
        parse_message(
            {"msgtype": "markdown_v2", "markdown_v2": {"content": "x", "mentioned_list": ["a"]}}
        )
    assert info.value.field == "markdown_v2.mentioned_list"


def test_text_mentions_are_kept() -> None:
    message = TextMessage(content="hi", mentioned_list=["@all"], mentioned_mobile_list=["138"])
    assert message.to_payload()["text"] == {
        "content": "hi",
        "mentioned_list": ["@all"],
        "mentioned_mobile_list": ["138"],
    }


# -- news --------------------------------------------------------------------


def _article(i: int = 0) -> Article:
    return Article(title=f"t{i}", url="https://example.com")


def test_news_article_count() -> None:
    assert len(NewsMessage(articles=[_article(i) for i in range(8)]).articles) == 8
    with pytest.raises(MessageValidationError) as info:
        NewsMessage(articles=[_article(i) for i in range(9)])
    assert (info.value.field, info.value.rule) == ("news.articles", Rule.MAX_ITEMS)
    with pytest.raises(MessageValidationError) as info:
        NewsMessage(articles=[])
    assert info.value.rule == Rule.MIN_ITEMS


def test_news_title_and_description_are_cut_at_a_character_boundary() -> None:
    title = "标" * 43  # 129 bytes
    description = "述" * 171  # 513 bytes
    with pytest.warns(TruncatedWarning) as record:
        article = Article(title=title, url="u", description=description)
    texts = sorted(str(w.message) for w in record)
    assert "description is 513 bytes" in texts[0] and "title is 129 bytes" in texts[1]
    assert article.title == "标" * 42 and utf8_len(article.title) == 126
    assert article.description == "述" * 170
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        exact = Article(title="t" * 128, url="u", description="d" * 512)
    assert len(exact.title) == 128 and len(exact.description or "") == 512


def test_news_url_is_required() -> None:
    with pytest.raises(MessageValidationError) as info:
        parse_message({"msgtype": "news", "news": {"articles": [{"title": "t"}]}})
    assert (info.value.field, info.value.rule) == ("news.articles[0].url", Rule.REQUIRED)


# -- image -------------------------------------------------------------------


def test_image_from_bytes_computes_base64_and_md5() -> None:
    data = png_bytes()
    message = ImageMessage.from_bytes(data)
    assert message.md5 == hashlib.md5(data).hexdigest()
    assert base64.b64decode(message.base64) == data
    assert message.data == data
    assert ImageMessage.from_bytes(jpeg_bytes()).md5 == hashlib.md5(jpeg_bytes()).hexdigest()


def test_image_from_path(tmp_path: Any) -> None:
    path = tmp_path / "chart.png"
    path.write_bytes(png_bytes())
    assert ImageMessage.from_path(path).data == png_bytes()


def test_image_size_limit_at_the_boundary() -> None:
    base = png_bytes()
    overhead = len(png_bytes(padding=1)) - len(base) - 1
    exact = png_bytes(padding=IMAGE_MAX_BYTES - len(base) - overhead)
    assert len(exact) == IMAGE_MAX_BYTES
    ImageMessage.from_bytes(exact)
    over = png_bytes(padding=IMAGE_MAX_BYTES - len(base) - overhead + 1)
    with pytest.raises(MessageValidationError) as info:
        ImageMessage.from_bytes(over)
    assert (info.value.rule, info.value.limit, info.value.issues[0].actual) == (
        Rule.MAX_BYTES,
        IMAGE_MAX_BYTES,
        IMAGE_MAX_BYTES + 1,
    )


def test_image_must_be_png_or_jpeg() -> None:
    with pytest.raises(MessageValidationError) as info:
        ImageMessage.from_bytes(b"GIF89a" + b"\x00" * 20)
    assert info.value.rule == Rule.FORMAT


def test_image_md5_must_match() -> None:
    data = png_bytes()
    with pytest.raises(MessageValidationError) as info:
        ImageMessage(base64=base64.b64encode(data).decode(), md5="0" * 32)
    assert (info.value.field, info.value.rule) == ("image.md5", Rule.MD5_MISMATCH)


def test_image_base64_must_be_valid() -> None:
    with pytest.raises(MessageValidationError) as info:
        ImageMessage(base64="not base64!", md5="0" * 32)
    assert (info.value.field, info.value.rule) == ("image.base64", Rule.BASE64)


def test_image_md5_must_be_hex() -> None:
    with pytest.raises(MessageValidationError) as info:
        ImageMessage(base64="AAAA", md5="xyz")
    assert info.value.rule == Rule.FORMAT


# -- template cards ----------------------------------------------------------


def test_text_notice_needs_a_title_or_sub_title() -> None:
    with pytest.raises(MessageValidationError) as info:
        TextNoticeCard(card_action=ACTION)
    assert info.value.rule == Rule.REQUIRED
    assert "main_title.title or sub_title_text" in str(info.value)
    TextNoticeCard(sub_title_text="only a sub title", card_action=ACTION)
    TextNoticeCard(main_title=MainTitle(title="only a title"), card_action=ACTION)


def test_card_action_is_required() -> None:
    with pytest.raises(MessageValidationError) as info:
        parse_message(
            {
                "msgtype": "template_card",
                "template_card": {"card_type": "text_notice", "main_title": {"title": "t"}},
            }
        )
    assert (info.value.field, info.value.rule) == ("template_card.card_action", Rule.REQUIRED)


@pytest.mark.parametrize(
    ("action", "field"),
    [({"type": 1}, "url"), ({"type": 2}, "appid")],
)
def test_card_action_type_needs_its_field(action: dict[str, Any], field: str) -> None:
    with pytest.raises(MessageValidationError) as info:
        CardAction(**action)
    assert info.value.field == f"template_card.card_action.{field}"


def test_card_action_type_is_1_or_2() -> None:
    with pytest.raises(MessageValidationError) as info:
        CardAction(type=0, url="u")
    assert info.value.rule == Rule.CHOICE


@pytest.mark.parametrize(("kind", "field"), [(1, "url"), (2, "media_id"), (3, "userid")])
def test_horizontal_content_type_needs_its_field(kind: int, field: str) -> None:
    with pytest.raises(MessageValidationError) as info:
        HorizontalContent(keyname="k", value="v", type=kind)
    assert info.value.field.endswith(f".{field}")
    HorizontalContent(keyname="k", value="v", type=kind, **{field: "x"})


def test_list_lengths() -> None:
    rows = [HorizontalContent(keyname=f"k{i}", value="v") for i in range(7)]
    TextNoticeCard(sub_title_text="s", horizontal_content_list=rows[:6], card_action=ACTION)
    with pytest.raises(MessageValidationError) as info:
        TextNoticeCard(sub_title_text="s", horizontal_content_list=rows, card_action=ACTION)
    assert (info.value.field, info.value.limit) == ("template_card.horizontal_content_list", 6)

    jumps = [JumpItem(title=f"j{i}", type=1, url="u") for i in range(4)]
    with pytest.raises(MessageValidationError) as info:
        TextNoticeCard(sub_title_text="s", jump_list=jumps, card_action=ACTION)
    assert (info.value.field, info.value.limit) == ("template_card.jump_list", 3)

    items = [VerticalContent(title=f"v{i}") for i in range(5)]
    with pytest.raises(MessageValidationError) as info:
        NewsNoticeCard(
            main_title=MainTitle(title="t"), vertical_content_list=items, card_action=ACTION
        )
    assert (info.value.field, info.value.limit) == ("template_card.vertical_content_list", 4)


@pytest.mark.parametrize("ratio", [1.3, 2.25, 1.7])
def test_aspect_ratio_bounds_are_inclusive(ratio: float) -> None:
    assert CardImage(url="u", aspect_ratio=ratio).aspect_ratio == ratio


@pytest.mark.parametrize("ratio", [1.29, 2.26, 0.0])
def test_aspect_ratio_outside_bounds(ratio: float) -> None:
    with pytest.raises(MessageValidationError) as info:
        CardImage(url="u", aspect_ratio=ratio)
    assert info.value.rule == Rule.RANGE


def test_source_desc_color() -> None:
    for colour in (0, 1, 2, 3):
        Source(desc="x", desc_color=colour)
    with pytest.raises(MessageValidationError) as info:
        Source(desc="x", desc_color=4)
    assert (info.value.field, info.value.rule) == ("template_card.source.desc_color", Rule.CHOICE)


@pytest.mark.parametrize(("kind", "field"), [(1, "url"), (2, "appid")])
def test_quote_and_jump_types(kind: int, field: str) -> None:
    with pytest.raises(MessageValidationError):
        QuoteArea(type=kind)
    with pytest.raises(MessageValidationError):
        JumpItem(title="t", type=kind)
    QuoteArea(type=kind, **{field: "x"})
    JumpItem(title="t", type=kind, **{field: "x"})


def test_news_notice_needs_a_main_title() -> None:
    with pytest.raises(MessageValidationError) as info:
        NewsNoticeCard(card_action=ACTION)
    assert info.value.field == "template_card.main_title.title"


def test_advised_lengths_are_reported_not_rejected() -> None:
    card = TextNoticeCard(
        main_title=MainTitle(title="标" * 27),
        sub_title_text="s",
        card_action=ACTION,
    )
    advice = card.advisories()
    assert len(advice) == 1 and "main_title.title has 27 characters" in advice[0]


def test_card_type_is_filled_from_the_class() -> None:
    card = NewsNoticeCard(main_title=MainTitle(title="t"), card_action=ACTION)
    assert card.to_payload()["template_card"]["card_type"] == "news_notice"


def test_no_null_fields_in_payload() -> None:
    card = TextNoticeCard(main_title=MainTitle(title="t"), card_action=ACTION)
    assert "null" not in card.to_json().decode()
    assert card.to_payload() == {
        "msgtype": "template_card",
        "template_card": {
            "card_type": "text_notice",
            "main_title": {"title": "t"},
            "card_action": {"type": 1, "url": "https://example.com"},
        },
    }


def test_models_are_immutable() -> None:
    message = TextMessage(content="x")
    with pytest.raises(ValueError, match="frozen"):
        message.content = "y"  # type: ignore[misc]
