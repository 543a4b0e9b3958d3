"""Draw WeCom messages as the WeCom client shows them, as safe HTML fragments.

Shared by the emulator's page and the gateway console's playground. Works on raw API payloads
(so invalid messages are drawn too), needs no network (no CDN, the stylesheet ships in the
package) and escapes everything that comes from a payload::

    from wecom_bot.preview import PREVIEW_CSS, render_message_html

    page = f"<style>{PREVIEW_CSS}</style><div class='wb-chat'>{render_message_html(payload)}</div>"
"""

from __future__ import annotations

from importlib.resources import files
from typing import Final

from ._html import PAGE_CONTENT_SECURITY_POLICY
from .markdown import render_markdown
from .markdown_v2 import render_markdown_v2
from .render import payload_size, render_message_html


def preview_css() -> str:
    """Return the stylesheet for preview fragments (``static/preview.css``), to inline in a page."""
    return files(__name__).joinpath("static", "preview.css").read_text(encoding="utf-8")


PREVIEW_CSS: Final[str] = preview_css()
"""The text of ``static/preview.css``; every class it styles starts with ``wb-``."""
__all__ = [
    "PAGE_CONTENT_SECURITY_POLICY",
    "PREVIEW_CSS",
    "payload_size",
    "preview_css",
    "render_markdown",
    "render_markdown_v2",
    "render_message_html",
]
