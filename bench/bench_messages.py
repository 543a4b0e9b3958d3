"""Per-message CPU cost: build + validate + serialize, for each message type.

Run: ``.venv/bin/python -m bench.bench_messages``. Goals (issue 2): text <= 20 us,
template card <= 100 us on the project's 2-core machine.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from tests.images import png_bytes

from bench._common import machine, per_call_us, table, today
from wecom_bot import (
    Article,
    CardAction,
    FileMessage,
    ImageMessage,
    MarkdownMessage,
    MarkdownV2Message,
    NewsMessage,
    TextMessage,
    parse_message,
)

SPEC_CARDS = [
    e for e in json.loads(open("tests/fixtures/spec_examples.json", encoding="utf-8").read())
    if e["msgtype"] == "template_card"
]  # fmt: skip
IMAGE = png_bytes(64, 64)
MARKDOWN = '## 告警 <font color="warning">FIRING</font>\n> instance: node-1\n> summary: CPU high'


def cases() -> dict[str, Callable[[], Any]]:
    """One callable per message type, each doing build + validate + serialize."""
    text_notice, news_notice = SPEC_CARDS
    return {
        "text": lambda: TextMessage(content="磁盘使用率 91%", mentioned_list=["@all"]).to_json(),
        "markdown": lambda: MarkdownMessage(content=MARKDOWN).to_json(),
        "markdown_v2": lambda: MarkdownV2Message(
            content="| a | b |\n|---|---|\n| 1 | 2 |"
        ).to_json(),
        "image (64x64 PNG)": lambda: ImageMessage.from_bytes(IMAGE).to_json(),
        "news (3 articles)": lambda: NewsMessage(
            articles=[Article(title=f"t{i}", url="https://example.com") for i in range(3)]
        ).to_json(),
        "file": lambda: FileMessage(media_id="3a8asd892asd8asd").to_json(),
        "template_card text_notice (spec example, parse_message)": lambda: parse_message(
            text_notice
        ).to_json(),
        "template_card news_notice (spec example, parse_message)": lambda: parse_message(
            news_notice
        ).to_json(),
        "card_action alone": lambda: CardAction(type=1, url="https://example.com"),
    }


def main() -> str:
    """Run and return the Markdown report."""
    rows = [[name, f"{per_call_us(fn):.1f}"] for name, fn in cases().items()]
    return f"Measured {today()} on {machine()}.\n\n" + table(
        ["message type", "µs per message (best of 7)"], rows
    )


if __name__ == "__main__":
    print(main())
