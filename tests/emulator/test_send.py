"""The send endpoint over real HTTP: every message type accepted, every errcode case."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from tests.images import amr_bytes, jpeg_bytes, png_bytes
from wecom_bot.masking import key_fingerprint, mask_key
from wecom_bot.messages import parse_message

from . import payloads
from .conftest import Emu, errcode, errtext, new_key

# -- accepted --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        payloads.text("广州今日天气:29度", mentioned_list=["wangqing", "@all"],
                      mentioned_mobile_list=["13800001111", "@all"]),
        {"msgtype": "markdown", "markdown": {"content": '# 标题\n<font color="info">绿色</font>'}},
        {"msgtype": "markdown_v2", "markdown_v2": {"content": "| a | b |\n| :- | -: |\n| 1 | 2 |"}},
        payloads.image(png_bytes()),
        payloads.image(jpeg_bytes()),
        payloads.news(8, description="今年中秋节公司有豪礼相送", picurl="https://x/y.png"),
        payloads.text_card(),
        payloads.news_card(),
    ],
    ids=["text", "markdown", "markdown_v2", "png", "jpeg", "news", "text_notice", "news_notice"],
)  # fmt: skip
def test_each_inline_message_type_is_accepted_and_stored(
    emu: Emu, key: str, payload: dict[str, Any]
) -> None:
    answer = emu.send(key, payload)
    assert answer.content == b'{"errcode":0,"errmsg":"ok"}'
    assert answer.headers["content-type"] == "application/json; charset=UTF-8"
    assert "Error-Code" not in answer.headers
    [entry] = emu.entries(key)
    assert entry["status"] == "accepted" and entry["errcode"] == 0
    assert entry["msgtype"] == payload["msgtype"]
    assert entry["payload"] == parse_message(payload).to_payload()
    assert entry["group_id"] == key_fingerprint(key)
    assert entry["bytes"] == len(answer.request.content)


def test_file_and_voice_are_accepted_with_media_of_their_own_type(emu: Emu, key: str) -> None:
    file_id = emu.media_id(key, b"report body", "file")
    voice_id = emu.media_id(key, amr_bytes(200), "voice")
    assert errcode(emu.send(key, {"msgtype": "file", "file": {"media_id": file_id}})) == 0
    assert errcode(emu.send(key, {"msgtype": "voice", "voice": {"media_id": voice_id}})) == 0
    file_entry, voice_entry = emu.entries(key)
    assert file_entry["media"][0]["media_id"] == file_id
    assert file_entry["media"][0]["size"] == len(b"report body")
    assert file_entry["media"][0]["filename"] == "a.txt"
    assert (file_entry["content_bytes"], file_entry["limit"]) == (11, 20 * 1024 * 1024)
    assert voice_entry["media"][0]["type"] == "voice"
    assert voice_entry["media"][0]["filename"] == "v.amr"


def test_card_attachment_must_be_an_uploaded_file_of_this_key(emu: Emu, key: str) -> None:
    row = {"keyname": "企微下载", "value": "企业微信.apk", "type": 2, "media_id": "MEDIAID"}
    assert errcode(emu.send(key, payloads.text_card(horizontal_content_list=[row]))) == 40007
    row["media_id"] = emu.media_id(key, b"apk bytes")
    assert errcode(emu.send(key, payloads.text_card(horizontal_content_list=[row]))) == 0
    assert emu.entries(key)[-1]["media"][0]["media_id"] == row["media_id"]


def test_content_at_exactly_the_byte_limit_is_accepted(emu: Emu, key: str) -> None:
    content = "中" * 682 + "ab"  # 2046 + 2 = 2048 bytes
    assert errcode(emu.send(key, payloads.text(content))) == 0
    entry = emu.entries(key)[0]
    assert (entry["content_bytes"], entry["limit"]) == (2048, 2048)


def test_news_title_and_description_are_stored_truncated_on_a_character_boundary(
    emu: Emu, key: str
) -> None:
    title, description = "标" * 50, "述" * 200  # 150 and 600 bytes
    assert errcode(emu.send(key, payloads.news(title=title, description=description))) == 0
    article = emu.entries(key)[0]["payload"]["news"]["articles"][0]
    assert article["title"] == "标" * 42  # 126 bytes: a 43rd character would make 129
    assert article["description"] == "述" * 170  # 510 bytes
    assert article["url"] == "https://example.com"


def test_the_key_never_appears_in_what_the_inspection_api_shows(emu: Emu, key: str) -> None:
    quoted = f"https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key={key}"
    assert errcode(emu.send(key, payloads.text(quoted))) == 0
    assert errcode(emu.send(key, payloads.text(quoted, mentioned_list=key))) == 40058
    # An unknown field named after the key is ignored, and its warning names it masked.
    assert errcode(emu.send(key, payloads.text("x", **{key: 1}))) == 0
    assert mask_key(key) in emu.entries(key)[-1]["warnings"][0]["message"]
    for path in ("/api/groups", f"/api/groups/{key_fingerprint(key)}", "/api/messages", "/"):
        assert key not in emu.client.get(path).text
    stored = emu.entries(key)[0]["payload"]["text"]["content"]
    assert stored.endswith(mask_key(key))
    assert emu.group(key)["masked_key"] == mask_key(key)


# -- rejected ------------------------------------------------------------------------------------


def test_missing_or_malformed_key_is_invalid_webhook_url(emu: Emu) -> None:
    for answer in (
        emu.send_raw(None, json.dumps(payloads.text()).encode()),
        emu.send("", payloads.text()),
        emu.send("bad key with spaces", payloads.text()),
        emu.send("k" * 129, payloads.text()),
    ):
        assert errcode(answer) == 93000
        assert errtext(answer) == "invalid webhook url"


def test_restricted_keys_accept_only_the_listed_ones(make_emu: Any) -> None:
    allowed, other = new_key(), new_key()
    with make_emu(keys=frozenset({allowed}), rate=None) as emu:
        assert errcode(emu.send(allowed, payloads.text())) == 0
        assert errcode(emu.send(other, payloads.text())) == 93000
        groups = emu.client.get("/api/groups").json()["groups"]
        assert [g["id"] for g in groups] == [key_fingerprint(allowed)]
        assert emu.client.get("/api/info").json()["keys_restricted"] is True


@pytest.mark.parametrize(
    ("payload", "code", "text"),
    [
        ({"text": {"content": "x"}}, 40008, "invalid message type"),
        ({"msgtype": "video", "video": {}}, 40008, "invalid message type"),
        ({"msgtype": 7}, 40008, "invalid message type"),
        ([1, 2], 40008, "invalid message type"),
        ("text", 40008, "invalid message type"),
        (payloads.text(""), 44004, "empty content"),
        ({"msgtype": "text", "text": {}}, 44004, "empty content"),
        ({"msgtype": "text"}, 44004, "empty content"),
        ({"msgtype": "markdown", "markdown": {"content": ""}}, 44004, "empty content"),
        ({"msgtype": "markdown_v2", "markdown_v2": {"content": ""}}, 44004, "empty content"),
        (payloads.text("中" * 683), 40058,
         "text.content exceed max length 2048. invalid Request Parameter"),
        ({"msgtype": "markdown", "markdown": {"content": "x" * 4097}}, 40058,
         "markdown.content exceed max length 4096. invalid Request Parameter"),
        ({"msgtype": "markdown_v2", "markdown_v2": {"content": "x" * 4097}}, 40058,
         "markdown_v2.content exceed max length 4096. invalid Request Parameter"),
        (payloads.news(9), 40058, "news.articles exceed max count 8. invalid Request Parameter"),
        (payloads.news(0), 40058, "news.articles below min count 1. invalid Request Parameter"),
        (payloads.news(1, title=""), 40058,
         "news.articles[0].title empty. invalid Request Parameter"),
        ({"msgtype": "news", "news": {"articles": [{"title": "t"}]}}, 40058,
         "news.articles[0].url missing. invalid Request Parameter"),
        (payloads.text("x", mentioned_list=["a", 1]), 40058,
         "text.mentioned_list[1] invalid type. invalid Request Parameter"),
        ({"msgtype": "text", "text": "hello"}, 40058,
         "text invalid type. invalid Request Parameter"),
        (payloads.image(b"GIF89a-not-allowed"), 40058,
         "image.base64 invalid format. invalid Request Parameter"),
        (payloads.image(png_bytes(padding=2 * 1024 * 1024)), 40058,
         "image.base64 exceed max length 2097152. invalid Request Parameter"),
        ({"msgtype": "image", "image": {"base64": "aGk="}}, 40058,
         "image.md5 missing. invalid Request Parameter"),
        ({"msgtype": "file", "file": {"media_id": "no-such-media"}}, 40007, "invalid media_id"),
        ({"msgtype": "file", "file": {"media_id": ""}}, 40007, "invalid media_id"),
        ({"msgtype": "voice", "voice": {}}, 40007, "invalid media_id"),
        (payloads.text_card(card_action=None), 40058,
         "template_card.card_action missing. invalid Request Parameter"),
        (payloads.text_card(card_action={"type": 3}), 40058,
         "template_card.card_action.type invalid value. invalid Request Parameter"),
        (payloads.text_card(card_action={"type": 1}), 40058,
         "template_card.card_action.url missing. invalid Request Parameter"),
        (payloads.text_card(card_action={"type": 2, "url": "u"}), 40058,
         "template_card.card_action.appid missing. invalid Request Parameter"),
        (payloads.text_card(main_title=None, sub_title_text=None), 40058,
         "template_card.main_title.title missing. invalid Request Parameter"),
        (payloads.text_card(card_type="vote_interaction"), 40058,
         "template_card.card_type invalid value. invalid Request Parameter"),
        (payloads.text_card(source={"desc_color": 9}), 40058,
         "template_card.source.desc_color invalid value. invalid Request Parameter"),
        (payloads.text_card(quote_area={"type": 1}), 40058,
         "template_card.quote_area.url missing. invalid Request Parameter"),
        (payloads.text_card(horizontal_content_list=[{"keyname": "k"}] * 7), 40058,
         "template_card.horizontal_content_list exceed max count 6. invalid Request Parameter"),
        (payloads.text_card(horizontal_content_list=[{"keyname": "k", "type": 3}]), 40058,
         "template_card.horizontal_content_list[0].userid missing. invalid Request Parameter"),
        (payloads.text_card(jump_list=[{"title": "t"}] * 4), 40058,
         "template_card.jump_list exceed max count 3. invalid Request Parameter"),
        (payloads.text_card(jump_list=[{"title": "t", "type": 2}]), 40058,
         "template_card.jump_list[0].appid missing. invalid Request Parameter"),
        (payloads.news_card(main_title=None), 40058,
         "template_card.main_title.title missing. invalid Request Parameter"),
        (payloads.news_card(card_image={"url": "u", "aspect_ratio": 2.5}), 40058,
         "template_card.card_image.aspect_ratio out of range [1.3,2.25]. "
         "invalid Request Parameter"),
        (payloads.news_card(vertical_content_list=[{"title": "t"}] * 5), 40058,
         "template_card.vertical_content_list exceed max count 4. invalid Request Parameter"),
        (payloads.news_card(image_text_area={"type": 2}), 40058,
         "template_card.image_text_area.appid missing. invalid Request Parameter"),
    ],
)  # fmt: skip
def test_each_broken_rule_gets_its_errcode_and_live_style_errmsg(
    emu: Emu, key: str, payload: Any, code: int, text: str
) -> None:
    answer = emu.send(key, payload)
    assert errcode(answer) == code
    assert errtext(answer) == text
    tail = (
        f", from ip: 127.0.0.1, more info at https://open.work.weixin.qq.com/devtool/query?e={code}"
    )
    assert answer.json()["errmsg"].endswith(tail)
    assert answer.headers["Error-Msg"].startswith(text.split(" ")[0])
    [entry] = emu.entries(key)
    assert (entry["status"], entry["errcode"]) == ("rejected", code)
    assert entry["errmsg"] == answer.json()["errmsg"]


def test_error_tail_hint_starts_with_the_unix_time(emu: Emu, key: str) -> None:
    errmsg = emu.send(key, payloads.text("")).json()["errmsg"]
    hint = errmsg.split("hint: [", 1)[1].split("]", 1)[0]
    assert len(hint) == 25 and hint.isdigit()
    import time

    assert abs(int(hint[:10]) - time.time()) < 60


def test_image_md5_mismatch_and_short_base64_are_301019(emu: Emu, key: str) -> None:
    good = payloads.image()
    wrong_md5 = {"msgtype": "image", "image": {**good["image"], "md5": "0" * 32}}
    encoded = good["image"]["base64"]
    cut = {"msgtype": "image", "image": {**good["image"], "base64": encoded[: len(encoded) - 6]}}
    for payload in (wrong_md5, cut):
        answer = emu.send(key, payload)
        assert errcode(answer) == 301019
        assert errtext(answer) == "media md5 not match"


def test_media_of_another_key_or_of_the_other_type_is_invalid_media_id(emu: Emu, key: str) -> None:
    other = new_key()
    others_file = emu.media_id(other, b"their file")
    my_voice = emu.media_id(key, amr_bytes(100), "voice")
    assert errcode(emu.send(key, {"msgtype": "file", "file": {"media_id": others_file}})) == 40007
    assert errcode(emu.send(key, {"msgtype": "file", "file": {"media_id": my_voice}})) == 40007
    assert errcode(emu.send(other, {"msgtype": "file", "file": {"media_id": others_file}})) == 0


@pytest.mark.parametrize(
    ("body", "content_type", "code", "text"),
    [
        (b'{"msgtype": "text", "text": {"content": "x"', "application/json", 40008,
         "Warning: wrong json format. invalid message type"),
        (b"not json at all", "application/json", 40008,
         "Warning: wrong json format. invalid message type"),
        (b"", "application/json", 40008, "Warning: wrong json format. invalid message type"),
        (b'{"msgtype": "text", "text": {"content": NaN}}', "application/json", 40008,
         "Warning: wrong json format. invalid message type"),
        (b'{"msgtype":"text","text":{"content":"\xff\xfe"}}', "application/json", 40008,
         "Warning: wrong json format. invalid message type"),
        (b"[" * 100_000 + b"]" * 100_000, "application/json", 40008,
         "Warning: wrong json format. invalid message type"),
        (b"a=1&b=2", "application/x-www-form-urlencoded", 40008,
         "Warning: wrong json format. invalid message type"),
        (b'{"msgtype": "text", "text": {"content": "x"},}', None, 40008,
         "Warning: wrong json format. invalid message type"),
    ],
    ids=["unclosed", "garbage", "empty", "nan", "bad-utf8", "deep", "form", "trailing-comma"],
)  # fmt: skip
def test_bad_bodies_get_a_wecom_answer_not_an_http_error(
    emu: Emu, key: str, body: bytes, content_type: str | None, code: int, text: str
) -> None:
    answer = emu.send_raw(key, body, content_type)
    assert errcode(answer) == code
    assert errtext(answer) == text
    [entry] = emu.entries(key)
    assert entry["payload"] is None and entry["raw_text"] is not None


def test_json_charset_parameter_is_fine(emu: Emu, key: str) -> None:
    body = json.dumps(payloads.text("字")).encode()
    assert errcode(emu.send_raw(key, body, "application/json; charset=utf-8")) == 0


def test_body_over_the_cap_is_refused_without_being_kept(make_emu: Any) -> None:
    key = new_key()
    with make_emu(send_body_cap=1000, rate=None) as emu:
        answer = emu.send(key, payloads.text("x" * 1500))
        assert errcode(answer) == 40058
        assert errtext(answer) == "body exceed max length 1000. invalid Request Parameter"
        [entry] = emu.entries(key)
        assert entry["payload"] is None and entry["bytes"] > 1000
        assert errcode(emu.send(key, payloads.text("x" * 500))) == 0


def test_base64_with_garbage_is_rejected_and_nothing_accepted(emu: Emu, key: str) -> None:
    data = base64.b64encode(png_bytes()).decode()
    payload = {"msgtype": "image", "image": {"base64": "!!" + data, "md5": "0" * 32}}
    assert errcode(emu.send(key, payload)) == 301019
    assert emu.group(key)["accepted"] == 0


def test_wrong_method_or_path_is_not_a_server_error(emu: Emu, key: str) -> None:
    assert emu.client.get("/cgi-bin/webhook/send", params={"key": key}).status_code == 405
    assert emu.client.post("/cgi-bin/webhook/nope", params={"key": key}).status_code == 404


def test_field_names_from_the_request_cannot_break_the_error_headers(make_emu: Any) -> None:
    hostile = "颜色\r\nX-Injected: 1" + "z" * 300
    with make_emu(strict=True, rate=None) as emu:  # unknown fields are refused only when strict
        answer = emu.send(new_key(), payloads.text("x", **{hostile: 1}))
    assert errcode(answer) == 40058
    assert "X-Injected" not in answer.headers
    assert answer.headers["Error-Msg"].isascii()
    assert "\r" not in answer.headers["Error-Msg"]
    shown = errtext(answer)
    assert shown.startswith("text.颜色\r\nX-Injected: 1zz") and len(shown) < 200
