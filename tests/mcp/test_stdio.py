"""``wecom-bot mcp`` over stdio, driven by the official mcp client, against the emulator.

One server process (the installed console script) serves the whole module; every test
checks what the emulator stored, not only what the tool answered.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.emulator.conftest import Emu, new_key
from tests.images import amr_bytes, png_bytes
from tests.mcp.conftest import Harness, server_env, text_of
from wecom_bot.masking import key_fingerprint, mask_key
from wecom_bot.mcp import TOOL_NAMES

KEY = new_key()


@pytest.fixture(scope="module")
def mcp(emu: Emu, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    tmp = tmp_path_factory.mktemp("mcp-stdio")
    # Media tools read only under allowed directories: every test's tmp_path is under this.
    allowed = str(tmp_path_factory.getbasetemp())
    env = server_env(emu, KEY, tmp, WECOM_BOT_MCP_ALLOW_DIRS=allowed)
    harness = Harness(env, tmp).start()
    yield harness
    harness.close()


def stored(emu: Emu) -> list[dict[str, Any]]:
    answer = emu.client.get(f"/api/groups/{key_fingerprint(KEY)}/messages")
    if answer.status_code == 404:  # the group exists once something was posted to it
        return []
    assert answer.status_code == 200, answer.text
    entries: list[dict[str, Any]] = answer.json()["messages"]
    return entries


def new_entries(emu: Emu, since: int) -> list[dict[str, Any]]:
    return [e for e in stored(emu) if e["id"] > since]


def last_id(emu: Emu) -> int:
    entries = stored(emu)
    return entries[-1]["id"] if entries else 0


def test_lists_every_tool_with_schemas_that_teach_bytes(mcp: Harness) -> None:
    tools = {tool.name: tool for tool in mcp.list_tools().tools}
    assert list(tools) == list(TOOL_NAMES)
    content = tools["send_text"].input_schema["properties"]["content"]
    assert "2048 UTF-8 bytes" in content["description"]
    assert "not characters" in content["description"]
    legacy = tools["send_markdown"].input_schema["properties"]["content"]["description"]
    assert '<font color="info">' in legacy and "<@userid>" in legacy
    v2 = tools["send_markdown_v2"].input_schema["properties"]["content"]["description"]
    assert "tables" in v2 and "No" not in v2.split("Not supported")[0]
    assert "<font> colours" in v2.split("Not supported")[1]
    for tool in tools.values():
        assert tool.description, tool.name


def test_send_text_with_mentions_arrives_exactly_once_escaped(mcp: Harness, emu: Emu) -> None:
    since = last_id(emu)
    content = 'He said "ok" \\ done\n<font color="info">绿</font> 🎉 {"json": true}'
    report = mcp.ok(
        "send_text", content=content, mentioned_list=["@all"], mentioned_mobile_list=["13800001111"]
    )
    assert report["sent"] == 1 and report["bot"] == "default"
    assert report["key"] == mask_key(KEY)
    assert report["content_bytes"] == [len(content.encode())]
    [entry] = new_entries(emu, since)
    assert entry["status"] == "accepted"
    assert entry["payload"] == {
        "msgtype": "text",
        "text": {
            "content": content,
            "mentioned_list": ["@all"],
            "mentioned_mobile_list": ["13800001111"],
        },
    }


@pytest.mark.parametrize("msgtype", ["markdown", "markdown_v2"])
def test_send_markdown_types(mcp: Harness, emu: Emu, msgtype: str) -> None:
    since = last_id(emu)
    content = "# 发布\n**done** in `3s`\n> see [log](https://example.com/a?b=1&c=2)"
    report = mcp.ok(f"send_{msgtype}", content=content)
    assert report["msgtype"] == msgtype
    [entry] = new_entries(emu, since)
    assert entry["payload"] == {"msgtype": msgtype, msgtype: {"content": content}}


def test_markdown_v2_notes_unsupported_colours(mcp: Harness) -> None:
    report = mcp.ok("send_markdown_v2", content='<font color="warning">hot</font>')
    assert any("send_markdown" in note for note in report["notes"])


def test_send_image_from_path_and_from_base64(mcp: Harness, emu: Emu, tmp_path: Path) -> None:
    data = png_bytes(4, 3)
    path = tmp_path / "chart.png"
    path.write_bytes(data)
    since = last_id(emu)
    mcp.ok("send_image", path=str(path))
    mcp.ok("send_image", base64=base64.b64encode(data).decode())
    entries = new_entries(emu, since)
    assert len(entries) == 2
    for entry in entries:
        image = entry["payload"]["image"]
        assert base64.b64decode(image["base64"]) == data
        assert image["md5"] == hashlib.md5(data).hexdigest()


def test_send_news(mcp: Harness, emu: Emu) -> None:
    since = last_id(emu)
    articles = [
        {"title": "Release 1.2", "url": "https://example.com/r", "description": "notes"},
        {"title": "二", "url": "https://example.com/2", "picurl": "https://example.com/p.png"},
    ]
    mcp.ok("send_news", articles=articles)
    [entry] = new_entries(emu, since)
    assert entry["payload"] == {"msgtype": "news", "news": {"articles": articles}}


def test_news_title_over_128_bytes_is_cut_and_noted(mcp: Harness, emu: Emu) -> None:
    since = last_id(emu)
    report = mcp.ok("send_news", articles=[{"title": "标" * 50, "url": "https://e.com"}])
    assert any("cut to 126 bytes" in note for note in report["notes"]), report["notes"]
    [entry] = new_entries(emu, since)
    assert entry["payload"]["news"]["articles"][0]["title"] == "标" * 42


@pytest.mark.parametrize(
    ("tool", "data", "name"),
    [("send_file", b"report,1,2\n" * 20, "report.csv"), ("send_voice", amr_bytes(), "v.amr")],
)
def test_send_file_and_voice_upload_then_send(
    mcp: Harness, emu: Emu, tmp_path: Path, tool: str, data: bytes, name: str
) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    since = last_id(emu)
    report = mcp.ok(tool, path=str(path))
    [send] = new_entries(emu, since)
    media_type = tool.removeprefix("send_")
    assert send["payload"] == {"msgtype": media_type, media_type: {"media_id": report["media_id"]}}
    uploads = emu.client.get(f"/api/groups/{key_fingerprint(KEY)}/media").json()["media"]
    [upload] = [m for m in uploads if m["media_id"] == report["media_id"]]
    assert upload["type"] == media_type
    assert upload["filename"] == name and upload["size"] == len(data)
    assert emu.client.get(f"/api/media/{report['media_id']}").content == data


def test_send_template_card_and_advisories(mcp: Harness, emu: Emu) -> None:
    card = {
        "card_type": "text_notice",
        "main_title": {"title": "部署完成" * 8, "desc": "prod"},
        "emphasis_content": {"title": "99.9%", "desc": "availability"},
        "card_action": {"type": 1, "url": "https://example.com/deploy/42"},
    }
    since = last_id(emu)
    report = mcp.ok("send_template_card", card=card)
    assert any("main_title.title" in note for note in report["notes"])
    [entry] = new_entries(emu, since)
    assert entry["payload"] == {"msgtype": "template_card", "template_card": card}


def test_preview_returns_exact_json_and_sizes_and_sends_nothing(mcp: Harness, emu: Emu) -> None:
    since = last_id(emu)
    payload = {"msgtype": "markdown", "markdown": {"content": '引号 " 和 \\n'}}
    preview = mcp.ok("preview_message", payload=payload)
    assert preview["sent"] is False
    assert preview["body"] == '{"msgtype":"markdown","markdown":{"content":"引号 \\" 和 \\\\n"}}'
    assert preview["body_bytes"] == len(preview["body"].encode())
    assert preview["sizes"] == [
        {"field": "markdown.content", "bytes": len('引号 " 和 \\n'.encode()), "limit": 4096,
         "fits": True}
    ]  # fmt: skip
    assert new_entries(emu, since) == []


def test_preview_of_an_invalid_payload_is_a_tool_error(mcp: Harness) -> None:
    payload = {"msgtype": "text", "text": {"content": "é" * 1100}}
    text = mcp.error("preview_message", payload=payload)
    assert "text.content" in text and "2200 bytes" in text and "over by 152" in text
    text = mcp.error("preview_message", payload={"msgtype": "telegram"})
    assert "'telegram' is not a message type" in text


@pytest.mark.parametrize(
    ("tool", "arguments", "expected"),
    [
        ("send_text", {"content": ""}, "text.content: must not be empty"),
        ("send_text", {}, "content"),  # schema: a required argument is missing
        ("send_text", {"content": "x", "mentioned_list": "not a list"}, "mentioned_list"),
        ("send_image", {}, "exactly one of path or base64"),
        ("send_image", {"base64": "!!!"}, "not valid standard base64"),
        ("send_image", {"base64": base64.b64encode(b"GIF89a....").decode()}, "JPG or PNG"),
        ("send_news", {"articles": []}, "at least 1"),
        ("send_news", {"articles": [{"title": "t"}]}, "news.articles[0].url: is required"),
        ("send_file", {"path": "/nonexistent/x.txt"}, "not under an allowed directory"),
        ("send_voice", {"path": __file__}, "not under an allowed directory"),
        ("send_template_card", {"card": {"card_type": "text_notice", "sub_title_text": "x"}},
         "card_action"),
        ("send_template_card", {"card": {"card_type": "poster"}}, "text_notice or news_notice"),
        ("send_text", {"content": "x", "bot": "nope"}, "no bot named 'nope'"),
    ],
)  # fmt: skip
def test_invalid_input_is_a_tool_error_and_sends_nothing(
    mcp: Harness, emu: Emu, tool: str, arguments: dict[str, Any], expected: str
) -> None:
    since = last_id(emu)
    text = mcp.error(tool, **arguments)
    assert expected in text
    assert [e for e in new_entries(emu, since) if e["endpoint"] == "send"] == []
    mcp.ok("list_bots")  # the server is still alive


@pytest.mark.parametrize(
    ("tool", "content", "limit"),
    [("send_text", "字" * 700, 2048), ("send_markdown", "a" * 4100, 4096)],
)
def test_over_limit_without_split_says_by_how_many_bytes(
    mcp: Harness, emu: Emu, tool: str, content: str, limit: int
) -> None:
    since = last_id(emu)
    size = len(content.encode())
    text = mcp.error(tool, content=content)
    assert f"content is {size} bytes (UTF-8)" in text
    assert f"limit of {limit} bytes by {size - limit} bytes" in text
    assert "split=true" in text
    assert new_entries(emu, since) == []


def test_split_sends_every_part_and_loses_nothing(mcp: Harness, emu: Emu) -> None:
    paragraphs = [f"第{i}段 " + "内容" * 60 for i in range(20)]
    content = "\n\n".join(paragraphs)
    assert len(content.encode()) > 2 * 2048
    since = last_id(emu)
    report = mcp.ok("send_text", content=content, mentioned_list=["@all"], split=True)
    entries = new_entries(emu, since)
    assert report["sent"] == len(entries) >= 3
    texts = [e["payload"]["text"]["content"] for e in entries]
    assert all(e["content_bytes"] <= 2048 for e in entries)
    assert [t.rstrip().endswith(f"({i}/{len(texts)})") for i, t in enumerate(texts, 1)] == [
        True
    ] * len(texts)
    assert entries[0]["payload"]["text"]["mentioned_list"] == ["@all"]
    assert all("mentioned_list" not in e["payload"]["text"] for e in entries[1:])
    joined = "".join(texts)
    for paragraph in paragraphs:
        assert paragraph in joined


def test_api_errors_are_tool_errors_with_errcode_and_advice(mcp: Harness, emu: Emu) -> None:
    answer = emu.client.post(
        f"/api/groups/{key_fingerprint(KEY)}/faults", json={"kind": "errcode", "errcode": 93000}
    )
    assert answer.status_code == 201
    text = mcp.error("send_text", content="hello")
    assert "errcode 93000" in text and "invalid webhook url" in text
    assert "retrying will not help" in text
    assert KEY not in text
    mcp.ok("send_text", content="after the fault")


def test_list_bots_shows_masked_key_only(mcp: Harness, emu: Emu) -> None:
    result = mcp.call("list_bots")
    listing = result.structured_content
    assert listing is not None
    assert listing["default"] == "default"
    assert listing["rate"] == "100/60s"
    [bot] = listing["bots"]
    assert bot["name"] == "default" and bot["key"] == mask_key(KEY)
    assert bot["base_url"] == emu.url and bot["available"] is True
    assert KEY not in text_of(result)
