"""Draw one raw API payload as a chat message: the entry point of :mod:`wecom_bot.preview`.

Renderers read the raw JSON (``{"msgtype": ..., "<msgtype>": {...}}``) defensively, so a payload
that failed validation is still drawn (a wrong type reads as missing). Nothing here imports the
models or the emulator.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from .. import limits
from ..limits import truncate_utf8
from ._html import as_dict, as_dicts, as_text, esc, human_size, image_tag, link_open, scrub
from .cards import render_template_card
from .markdown import mention_chip, render_markdown
from .markdown_v2 import render_markdown_v2

__all__ = ["payload_size", "render_message_html"]

MediaNames = Mapping[str, tuple[str, int]]
_Renderer = Callable[[Mapping[str, Any], "MediaNames | None"], tuple[str, bool]]

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_JPEG_MAGIC = b"\xff\xd8\xff"
_MD_MENTION_ALL = re.compile(r"<@(?:@?all)>")
_EXTENSION = re.compile(r"\.([A-Za-z0-9]{1,5})$")


def _empty() -> str:
    return '<span class="wb-empty">(empty)</span>'


def _text(body: Mapping[str, Any], media_names: MediaNames | None) -> tuple[str, bool]:
    content = as_text(body.get("content")) or ""
    seen: list[str] = []
    for key in ("mentioned_list", "mentioned_mobile_list"):
        values = body.get(key)
        for value in values if isinstance(values, list) else []:
            name = as_text(value)
            if name and name not in seen:
                seen.append(name)
    at_all = "@all" in seen
    chips = ""
    if seen:
        chips = f'<div class="wb-mentions">{"".join(mention_chip(name) for name in seen)}</div>'
    inner = f'<div class="wb-text">{esc(content)}</div>' if content else _empty()
    return f'<div class="wb-bubble wb-bubble--text">{inner}{chips}</div>', at_all


def _markdown(body: Mapping[str, Any], media_names: MediaNames | None) -> tuple[str, bool]:
    content = as_text(body.get("content")) or ""
    inner = render_markdown(content) if content else _empty()
    at_all = _MD_MENTION_ALL.search(content) is not None
    return f'<div class="wb-bubble wb-bubble--markdown">{inner}</div>', at_all


def _markdown_v2(body: Mapping[str, Any], media_names: MediaNames | None) -> tuple[str, bool]:
    content = as_text(body.get("content")) or ""
    inner = render_markdown_v2(content) if content else _empty()
    return f'<div class="wb-bubble wb-bubble--markdown_v2">{inner}</div>', False


def _decode_image(value: object) -> bytes | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError):
        return None


def _image(body: Mapping[str, Any], media_names: MediaNames | None) -> tuple[str, bool]:
    data = _decode_image(body.get("base64"))
    if data is None:
        return '<div class="wb-bubble wb-image-broken">Image: invalid base64</div>', False
    if data.startswith(_PNG_MAGIC):
        mime = "image/png"
    elif data.startswith(_JPEG_MAGIC):
        mime = "image/jpeg"
    else:
        # Only the two formats WeCom accepts are ever put in a data: URL (an SVG could script).
        return '<div class="wb-bubble wb-image-broken">Image: not a PNG or JPEG</div>', False
    note = ""
    md5 = as_text(body.get("md5"))
    if md5 is not None and md5.lower() != hashlib.md5(data).hexdigest():
        note = '<div class="wb-note wb-note--warn">md5 does not match the image</div>'
    # Re-encoded from the decoded bytes, so the attribute only ever holds base64 characters.
    src = f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
    return (
        f'<div class="wb-image"><img class="wb-image-img" src="{src}" alt="image"></div>{note}',
        False,
    )


def _article(article: Mapping[str, Any], large: bool, alone: bool) -> str:
    # Drawn as WeCom shows them: the server truncates long titles and descriptions.
    title = truncate_utf8(scrub(as_text(article.get("title")) or ""), limits.NEWS_TITLE_MAX_BYTES)
    desc = truncate_utf8(
        scrub(as_text(article.get("description")) or ""), limits.NEWS_DESCRIPTION_MAX_BYTES
    )
    picture = article.get("picurl")
    if large:
        cls = "wb-news-main"
        inner = (
            f'<div class="wb-news-cover">{image_tag(picture, "wb-news-cover-img")}'
            f'<div class="wb-news-main-title">{esc(title)}</div></div>'
        )
        if alone and desc:
            inner += f'<div class="wb-news-desc">{esc(desc)}</div>'
    else:
        cls = "wb-news-row"
        inner = f'<div class="wb-news-row-title">{esc(title)}</div>' + image_tag(
            picture, "wb-news-thumb"
        )
    opening = link_open(article.get("url"), cls)
    if opening is None:
        return f'<div class="{cls} wb-link--blocked">{inner}</div>'
    return f"{opening}{inner}</a>"


def _news(body: Mapping[str, Any], media_names: MediaNames | None) -> tuple[str, bool]:
    articles = as_dicts(body.get("articles"))
    if not articles:
        return f'<div class="wb-bubble wb-bubble--news">{_empty()}</div>', False
    shown = articles[: limits.NEWS_MAX_ARTICLES]
    parts = [
        _article(article, large=index == 0, alone=len(shown) == 1)
        for index, article in enumerate(shown)
    ]
    extra = len(articles) - len(shown)
    if extra:
        parts.append(
            f'<div class="wb-note wb-note--warn">{extra} more article(s) over the limit of '
            f"{limits.NEWS_MAX_ARTICLES}</div>"
        )
    return f'<div class="wb-card wb-news">{"".join(parts)}</div>', False


def _attachment(body: Mapping[str, Any], media_names: MediaNames | None) -> tuple[str, str]:
    media_id = as_text(body.get("media_id")) or ""
    if media_names is not None and media_id in media_names:
        name, size = media_names[media_id]
        return name, human_size(size)
    return media_id, ""


def _file(body: Mapping[str, Any], media_names: MediaNames | None) -> tuple[str, bool]:
    name, size = _attachment(body, media_names)
    ext = _EXTENSION.search(name)
    label = ext.group(1).upper() if ext else "FILE"
    return (
        '<div class="wb-card wb-attach wb-attach--file"><div class="wb-attach-info">'
        f'<div class="wb-attach-name">{esc(name) or _empty()}</div>'
        f'<div class="wb-attach-size">{esc(size)}</div></div>'
        f'<div class="wb-file-icon" aria-hidden="true">{esc(label)}</div></div>',
        False,
    )


def _voice(body: Mapping[str, Any], media_names: MediaNames | None) -> tuple[str, bool]:
    name, size = _attachment(body, media_names)
    return (
        '<div class="wb-bubble wb-attach wb-attach--voice">'
        '<span class="wb-voice-icon" aria-hidden="true"></span>'
        f'<span class="wb-attach-name">{esc(name) or _empty()}</span>'
        f'<span class="wb-attach-size">{esc(size)}</span></div>',
        False,
    )


def _template_card(body: Mapping[str, Any], media_names: MediaNames | None) -> tuple[str, bool]:
    card = render_template_card(body, media_names)
    if card is None:
        card_type = as_text(body.get("card_type")) or ""
        return _unsupported(f"template_card {card_type}".strip()), False
    return card, False


def _unsupported(what: str) -> str:
    return (
        '<div class="wb-bubble wb-unsupported">Unsupported message'
        f'<span class="wb-unsupported-type">{esc(what)}</span></div>'
    )


_RENDERERS: dict[str, _Renderer] = {
    "text": _text,
    "markdown": _markdown,
    "markdown_v2": _markdown_v2,
    "image": _image,
    "news": _news,
    "file": _file,
    "voice": _voice,
    "template_card": _template_card,
}


def render_message_html(
    payload: Mapping[str, Any], *, media_names: MediaNames | None = None
) -> str:
    """Draw one webhook payload as the WeCom client shows it, as a safe HTML fragment.

    Args:
        payload: The raw JSON object sent to the API, ``{"msgtype": ..., "<msgtype>": {...}}``;
            it need not be valid (wrong or missing fields are drawn as empty).
        media_names: ``media_id -> (filename, size in bytes)`` for file and voice attachments;
            without an entry the media_id is shown as the name.

    Returns:
        One ``<div class="wb-msg ...">`` (avatar plus bubble or card). Every payload string is
        escaped; only http(s) URLs (and a PNG/JPEG ``data:`` URL for image messages) are used in
        ``href``/``src``. Style it with :data:`PREVIEW_CSS`.
    """
    msgtype = payload.get("msgtype") if isinstance(payload, Mapping) else None
    renderer = _RENDERERS.get(msgtype) if isinstance(msgtype, str) else None
    if renderer is None or not isinstance(msgtype, str):
        kind = "unsupported"
        body = _unsupported(as_text(msgtype) or "")
        at_all = False
    else:
        kind = msgtype
        body, at_all = renderer(as_dict(payload.get(msgtype)), media_names)
    classes = f"wb-msg wb-msg--{kind}" + (" wb-msg--at-all" if at_all else "")
    return (
        f'<div class="{classes}" data-msgtype="{kind}">'
        '<div class="wb-avatar" aria-hidden="true"></div>'
        f'<div class="wb-msg-body">{body}</div></div>'
    )


def payload_size(payload: Mapping[str, Any]) -> tuple[int, int | None]:
    """Measure a payload against the size limit that applies to it.

    Args:
        payload: The raw JSON object sent to the API.

    Returns:
        ``(bytes_used, limit)``: for text, markdown and markdown_v2 the UTF-8 bytes of
        ``content`` and its documented limit; for image the decoded image bytes and the 2 MB
        limit; for anything else the compact UTF-8 JSON body and ``None`` (no documented limit).
    """
    msgtype = payload.get("msgtype") if isinstance(payload, Mapping) else None
    body = as_dict(payload.get(msgtype)) if isinstance(msgtype, str) else {}
    if isinstance(msgtype, str) and msgtype in limits.CONTENT_LIMITS:
        content = body.get("content")
        if isinstance(content, str):
            return _utf8_size(content), limits.CONTENT_LIMITS[msgtype]
    if msgtype == "image":
        data = _decode_image(body.get("base64"))
        if data is not None:
            return len(data), limits.IMAGE_MAX_BYTES
    try:
        raw = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), default=str)
    except (TypeError, ValueError):
        raw = str(payload)
    return _utf8_size(raw), None


def _utf8_size(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))
