"""Property: parse_message(m.to_payload()) == m for every kind of valid message."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from wecom_bot import (
    Article,
    CardAction,
    CardImage,
    EmphasisContent,
    FileMessage,
    HorizontalContent,
    ImageTextArea,
    JumpItem,
    MainTitle,
    MarkdownMessage,
    MarkdownV2Message,
    Message,
    NewsMessage,
    NewsNoticeCard,
    QuoteArea,
    Source,
    TextMessage,
    TextNoticeCard,
    VerticalContent,
    VoiceMessage,
    parse_message,
)
from wecom_bot.limits import utf8_len

short = st.text(min_size=1, max_size=20)
maybe = st.none() | short


def fits(limit: int) -> st.SearchStrategy[str]:
    return st.text(min_size=1, max_size=limit // 4).filter(lambda s: utf8_len(s) <= limit)


actions = st.one_of(
    st.builds(CardAction, type=st.just(1), url=short),
    st.builds(CardAction, type=st.just(2), appid=short, pagepath=maybe),
)
rows = st.one_of(
    st.builds(HorizontalContent, keyname=short, value=maybe),
    st.builds(HorizontalContent, keyname=short, value=maybe, type=st.just(1), url=short),
    st.builds(HorizontalContent, keyname=short, value=maybe, type=st.just(2), media_id=short),
    st.builds(HorizontalContent, keyname=short, value=maybe, type=st.just(3), userid=short),
)
jumps = st.one_of(
    st.builds(JumpItem, title=short),
    st.builds(JumpItem, title=short, type=st.just(1), url=short),
    st.builds(JumpItem, title=short, type=st.just(2), appid=short),
)
sources = st.none() | st.builds(
    Source, icon_url=maybe, desc=maybe, desc_color=st.none() | st.sampled_from([0, 1, 2, 3])
)
quotes = st.none() | st.builds(QuoteArea, title=maybe, quote_text=maybe)

text_cards = st.builds(
    TextNoticeCard,
    source=sources,
    main_title=st.builds(MainTitle, title=short, desc=maybe),
    emphasis_content=st.none() | st.builds(EmphasisContent, title=maybe, desc=maybe),
    quote_area=quotes,
    sub_title_text=maybe,
    horizontal_content_list=st.none() | st.lists(rows, max_size=6),
    jump_list=st.none() | st.lists(jumps, max_size=3),
    card_action=actions,
)
news_cards = st.builds(
    NewsNoticeCard,
    source=sources,
    main_title=st.builds(MainTitle, title=short, desc=maybe),
    card_image=st.none()
    | st.builds(CardImage, url=short, aspect_ratio=st.none() | st.floats(1.3, 2.25)),
    image_text_area=st.none() | st.builds(ImageTextArea, title=maybe, image_url=maybe),
    vertical_content_list=st.none()
    | st.lists(st.builds(VerticalContent, title=short, desc=maybe), max_size=4),
    horizontal_content_list=st.none() | st.lists(rows, max_size=6),
    jump_list=st.none() | st.lists(jumps, max_size=3),
    card_action=actions,
)
messages: st.SearchStrategy[Message] = st.one_of(
    st.builds(
        TextMessage,
        content=fits(2048),
        mentioned_list=st.none() | st.lists(short, max_size=3),
        mentioned_mobile_list=st.none() | st.lists(short, max_size=3),
    ),
    st.builds(MarkdownMessage, content=fits(4096)),
    st.builds(MarkdownV2Message, content=fits(4096)),
    st.builds(FileMessage, media_id=short),
    st.builds(VoiceMessage, media_id=short),
    st.builds(
        NewsMessage,
        articles=st.lists(
            st.builds(Article, title=fits(128), url=short, description=st.none() | fits(512)),
            min_size=1,
            max_size=8,
        ),
    ),
    text_cards,
    news_cards,
)


@settings(max_examples=300, deadline=None)
@given(messages)
def test_parse_of_payload_gives_back_the_message(message: Message) -> None:
    payload: dict[str, Any] = message.to_payload()
    again = parse_message(payload)
    assert again == message
    assert type(again) is type(message)
    assert again.to_json() == message.to_json()
