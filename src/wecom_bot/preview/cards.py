"""Template cards (``text_notice`` and ``news_notice``) drawn with every part the client shows.

The card's ``card_action`` is drawn as a "stretched link" (an ``<a>`` laid over the whole card by
the stylesheet) rather than an ``<a>`` wrapping the card, so the links inside the card (quote area,
horizontal list, jump list) stay valid HTML and keep working.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from .. import limits
from ._html import as_dict, as_dicts, as_int, as_text, esc, human_size, image_tag, link_open

__all__ = ["render_template_card"]

MediaNames = Mapping[str, tuple[str, int]]

_DESC_COLORS = {0: "grey", 1: "black", 2: "red", 3: "green"}


def _text_div(cls: str, value: object) -> str:
    text = as_text(value)
    if not text:
        return ""
    return f'<div class="{cls}">{esc(text)}</div>'


def _clickable(area: Mapping[str, Any], cls: str, inner: str) -> str:
    """Wrap ``inner`` in a link (type 1), a mini-program marker (type 2) or a plain div."""
    kind = as_int(area.get("type"))
    if kind == 1:
        opening = link_open(area.get("url"), cls)
        if opening is not None:
            return f"{opening}{inner}</a>"
        return f'<div class="{cls} wb-link--blocked">{inner}</div>'
    if kind == 2:
        return (
            f'<div class="{cls} wb-miniprogram">{inner}'
            '<span class="wb-miniprogram-badge">Mini Program</span></div>'
        )
    return f'<div class="{cls}">{inner}</div>'


def _source(card: Mapping[str, Any]) -> str:
    source = as_dict(card.get("source"))
    if not source:
        return ""
    colour = _DESC_COLORS.get(as_int(source.get("desc_color")) or 0, "grey")
    icon = ""
    if source.get("icon_url") is not None:
        icon = image_tag(source.get("icon_url"), "wb-card-source-icon")
    desc = as_text(source.get("desc")) or ""
    return (
        f'<div class="wb-card-source">{icon}'
        f'<span class="wb-card-source-desc wb-color--{colour}">{esc(desc)}</span></div>'
    )


def _main_title(card: Mapping[str, Any]) -> str:
    main = as_dict(card.get("main_title"))
    parts = _text_div("wb-card-title", main.get("title")) + _text_div(
        "wb-card-title-desc", main.get("desc")
    )
    return f'<div class="wb-card-main">{parts}</div>' if parts else ""


def _emphasis(card: Mapping[str, Any]) -> str:
    emphasis = as_dict(card.get("emphasis_content"))
    parts = _text_div("wb-card-emphasis-title", emphasis.get("title")) + _text_div(
        "wb-card-emphasis-desc", emphasis.get("desc")
    )
    return f'<div class="wb-card-emphasis">{parts}</div>' if parts else ""


def _quote(card: Mapping[str, Any]) -> str:
    quote = as_dict(card.get("quote_area"))
    inner = _text_div("wb-card-quote-title", quote.get("title")) + _text_div(
        "wb-card-quote-text", quote.get("quote_text")
    )
    return _clickable(quote, "wb-card-quote", inner) if inner else ""


def _card_image(card: Mapping[str, Any]) -> str:
    image = as_dict(card.get("card_image"))
    if not image:
        return ""
    ratio = image.get("aspect_ratio")
    value = limits.CARD_IMAGE_ASPECT_RATIO_DEFAULT
    if isinstance(ratio, int | float) and not isinstance(ratio, bool) and math.isfinite(ratio):
        value = min(
            max(float(ratio), limits.CARD_IMAGE_ASPECT_RATIO_MIN),
            limits.CARD_IMAGE_ASPECT_RATIO_MAX,
        )
    # The style value is a number we formatted ourselves, never payload text.
    return (
        f'<div class="wb-card-image" style="aspect-ratio: {value:.4g}">'
        f"{image_tag(image.get('url'), 'wb-card-image-img')}</div>"
    )


def _image_text_area(card: Mapping[str, Any]) -> str:
    area = as_dict(card.get("image_text_area"))
    if not area:
        return ""
    picture = ""
    if area.get("image_url") is not None:
        picture = image_tag(area.get("image_url"), "wb-card-ita-img")
    text = _text_div("wb-card-ita-title", area.get("title")) + _text_div(
        "wb-card-ita-desc", area.get("desc")
    )
    return _clickable(area, "wb-card-ita", f'{picture}<div class="wb-card-ita-text">{text}</div>')


def _vertical(card: Mapping[str, Any]) -> str:
    rows = [
        _text_div("wb-card-vertical-title", item.get("title"))
        + _text_div("wb-card-vertical-desc", item.get("desc"))
        for item in as_dicts(card.get("vertical_content_list"))
    ]
    rows = [f'<div class="wb-card-vertical-item">{row}</div>' for row in rows if row]
    return f'<div class="wb-card-vertical">{"".join(rows)}</div>' if rows else ""


def _horizontal_value(item: Mapping[str, Any], media_names: MediaNames | None) -> str:
    kind = as_int(item.get("type"))
    value = as_text(item.get("value")) or ""
    if kind == 1:
        opening = link_open(item.get("url"), "wb-link wb-card-hc-value")
        if opening is not None:
            return f"{opening}{esc(value)}</a>"
        return f'<span class="wb-card-hc-value wb-link wb-link--blocked">{esc(value)}</span>'
    if kind == 2:
        media_id = as_text(item.get("media_id")) or ""
        size = ""
        if media_names is not None and media_id in media_names:
            name, length = media_names[media_id]
            value = value or name
            size = f' <span class="wb-attach-size">{esc(human_size(length))}</span>'
        return (
            '<span class="wb-card-hc-value wb-card-hc-file">'
            f'<span class="wb-file-icon" aria-hidden="true"></span>{esc(value or media_id)}'
            f"{size}</span>"
        )
    if kind == 3:
        userid = as_text(item.get("userid")) or ""
        return f'<span class="wb-card-hc-value wb-card-hc-member">{esc(value or userid)}</span>'
    return f'<span class="wb-card-hc-value">{esc(value)}</span>'


def _horizontal(card: Mapping[str, Any], media_names: MediaNames | None) -> str:
    rows = []
    for item in as_dicts(card.get("horizontal_content_list")):
        keyname = as_text(item.get("keyname")) or ""
        rows.append(
            '<div class="wb-card-hc-item">'
            f'<span class="wb-card-hc-key">{esc(keyname)}</span>'
            f"{_horizontal_value(item, media_names)}</div>"
        )
    return f'<div class="wb-card-hc">{"".join(rows)}</div>' if rows else ""


def _jumps(card: Mapping[str, Any]) -> str:
    rows = []
    for item in as_dicts(card.get("jump_list")):
        title = f'<span class="wb-card-jump-title">{esc(as_text(item.get("title")) or "")}</span>'
        rows.append(_clickable(item, "wb-card-jump", title))
    return f'<div class="wb-card-jumps">{"".join(rows)}</div>' if rows else ""


def _action(card: Mapping[str, Any]) -> str:
    action = as_dict(card.get("card_action"))
    kind = as_int(action.get("type"))
    if kind == 1:
        opening = link_open(action.get("url"), "wb-card-action")
        if opening is not None:
            return f'{opening}<span class="wb-sr-only">Open</span></a>'
    elif kind == 2:
        return '<div class="wb-card-action-mp"></div>'
    return ""


def render_template_card(
    card: Mapping[str, Any], media_names: MediaNames | None = None
) -> str | None:
    """Render a ``template_card`` object, or return ``None`` for an unknown ``card_type``.

    Args:
        card: The ``template_card`` object of a payload (may be malformed).
        media_names: ``media_id -> (filename, size)`` for attachment rows.

    Returns:
        A ``<div class="wb-card wb-tcard ...">`` fragment, or ``None``.
    """
    card_type = card.get("card_type")
    if card_type == "text_notice":
        parts = [
            _source(card),
            _main_title(card),
            _emphasis(card),
            _quote(card),
            _text_div("wb-card-subtitle", card.get("sub_title_text")),
            _horizontal(card, media_names),
            _jumps(card),
        ]
    elif card_type == "news_notice":
        parts = [
            _source(card),
            _main_title(card),
            _card_image(card),
            _image_text_area(card),
            _quote(card),
            _vertical(card),
            _horizontal(card, media_names),
            _jumps(card),
        ]
    else:
        return None
    action = _action(card)
    linked = " wb-card--linked" if action else ""
    return (
        f'<div class="wb-card wb-tcard wb-tcard--{card_type}{linked}">'
        f"{''.join(parts)}{action}</div>"
    )
