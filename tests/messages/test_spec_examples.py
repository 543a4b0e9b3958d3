"""Every JSON example of the spec page parses and round-trips exactly."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from tests.images import png_bytes
from wecom_bot import MessageValidationError, parse_message
from wecom_bot.errors import Rule

EXAMPLES: list[dict[str, Any]] = json.loads(
    (Path(__file__).parent.parent / "fixtures" / "spec_examples.json").read_text("utf-8")
)


def _label(example: dict[str, Any]) -> str:
    if example["msgtype"] == "template_card":
        return "template_card:" + example["template_card"]["card_type"]
    return str(example["msgtype"])


def test_the_spec_page_has_an_example_of_every_type() -> None:
    labels = {_label(e) for e in EXAMPLES}
    assert labels == {
        "text", "markdown", "markdown_v2", "image", "news", "file", "voice",
        "template_card:text_notice", "template_card:news_notice",
    }  # fmt: skip


@pytest.mark.parametrize("example", [e for e in EXAMPLES if e["msgtype"] != "image"], ids=_label)
def test_spec_example_round_trips(example: dict[str, Any]) -> None:
    message = parse_message(example)
    assert message.to_payload() == example
    assert json.loads(message.to_json()) == example
    assert parse_message(message.to_payload()) == message


def test_spec_image_example_placeholders_are_rejected_and_real_data_round_trips() -> None:
    (example,) = [e for e in EXAMPLES if e["msgtype"] == "image"]
    with pytest.raises(MessageValidationError) as info:
        parse_message(example)  # "DATA" / "MD5" are placeholders on the page
    assert info.value.issues[0].field.startswith("image.")
    data = png_bytes()
    real = {
        "msgtype": "image",
        "image": {
            "base64": base64.b64encode(data).decode(),
            "md5": hashlib.md5(data).hexdigest(),
        },
    }
    assert parse_message(real).to_payload() == real


def test_json_is_utf8_not_ascii_escaped() -> None:
    (example,) = [e for e in EXAMPLES if e["msgtype"] == "markdown"]
    body = parse_message(example).to_json()
    assert "实时新增用户反馈".encode() in body
    assert b"\\u" not in body


def test_unknown_msgtype_names_the_accepted_ones() -> None:
    with pytest.raises(MessageValidationError) as info:
        parse_message({"msgtype": "video", "video": {}})
    issue = info.value.issues[0]
    assert issue.rule == Rule.UNKNOWN_MSGTYPE
    assert "markdown_v2" in issue.message
