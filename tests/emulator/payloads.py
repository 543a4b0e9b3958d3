"""Message payloads used by the emulator tests."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from tests.images import png_bytes

# Copied from the spec page (wecom-webhook-api.zh.md), byte for byte.
SPEC_CURL = """curl 'https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=693axxx6-7aoc-4bc4-97a0-0ec2sifa5aaa' \\
   -H 'Content-Type: application/json' \\
   -d '
   {
    "msgtype": "text",
    "text": {
        "content": "hello world"
    }
   }'"""  # noqa: E501
SPEC_KEY = "693axxx6-7aoc-4bc4-97a0-0ec2sifa5aaa"


def text(content: str = "hello world", **extra: Any) -> dict[str, Any]:
    return {"msgtype": "text", "text": {"content": content, **extra}}


def image(data: bytes | None = None) -> dict[str, Any]:
    data = png_bytes() if data is None else data
    return {
        "msgtype": "image",
        "image": {"base64": base64.b64encode(data).decode(), "md5": hashlib.md5(data).hexdigest()},
    }


def news(count: int = 1, **article: Any) -> dict[str, Any]:
    one = {"title": "中秋节礼品领取", "url": "https://example.com", **article}
    return {"msgtype": "news", "news": {"articles": [one] * count}}


def text_card(**overrides: Any) -> dict[str, Any]:
    card: dict[str, Any] = {
        "card_type": "text_notice",
        "source": {"desc": "企业微信", "desc_color": 0},
        "main_title": {"title": "欢迎使用企业微信", "desc": "您的好友正在邀请您加入企业微信"},
        "emphasis_content": {"title": "100", "desc": "数据含义"},
        "sub_title_text": "下载企业微信还能抢红包!",
        "horizontal_content_list": [{"keyname": "邀请人", "value": "张三"}],
        "jump_list": [{"type": 1, "url": "https://work.weixin.qq.com", "title": "企业微信官网"}],
        "card_action": {"type": 1, "url": "https://work.weixin.qq.com"},
    }
    card.update(overrides)
    return {"msgtype": "template_card", "template_card": _present(card)}


def news_card(**overrides: Any) -> dict[str, Any]:
    card: dict[str, Any] = {
        "card_type": "news_notice",
        "main_title": {"title": "欢迎使用企业微信"},
        "card_image": {"url": "https://wework.qpic.cn/x/0", "aspect_ratio": 2.25},
        "image_text_area": {"type": 1, "url": "https://work.weixin.qq.com", "title": "t"},
        "vertical_content_list": [{"title": "惊喜红包等你来拿", "desc": "下载企业微信还能抢红包!"}],
        "card_action": {"type": 2, "appid": "APPID", "pagepath": "PAGEPATH"},
    }
    card.update(overrides)
    return {"msgtype": "template_card", "template_card": _present(card)}


def _present(card: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in card.items() if v is not None}
