"""Every message type sent through the CLI to the emulator, checked in what the emulator stored."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
from pathlib import Path

import pytest
from PIL import Image

from tests.images import amr_bytes, png_bytes
from wecom_bot import limits

from .conftest import Cli, Emulator, TtyStringIO, target


def only_payload(emulator: Emulator, key: str) -> dict:
    accepted = emulator.accepted(key)
    assert len(accepted) == 1, accepted
    return accepted[0]["payload"]


def test_text_with_mentions(cli: Cli, emulator: Emulator, key: str) -> None:
    result = cli("send", "text", "disk 91% on db-1", "--mention", "alice", "--mention", "@all",
                 "--mention-mobile", "13800000000", *target(emulator, key))  # fmt: skip
    assert result.code == 0, result.stderr
    assert "sent text message" in result.stdout
    assert only_payload(emulator, key) == {
        "msgtype": "text",
        "text": {
            "content": "disk 91% on db-1",
            "mentioned_list": ["alice", "@all"],
            "mentioned_mobile_list": ["13800000000"],
        },
    }


def test_text_from_stdin_drops_the_trailing_newline(cli: Cli, emulator: Emulator, key: str) -> None:
    result = cli("send", "text", *target(emulator, key), stdin="from a pipe 管道\n")
    assert result.code == 0, result.stderr
    assert only_payload(emulator, key)["text"]["content"] == "from a pipe 管道"


def test_text_from_file(cli: Cli, emulator: Emulator, key: str, tmp_path: Path) -> None:
    path = tmp_path / "note.txt"
    path.write_text("line one\nline two\n", encoding="utf-8")
    result = cli("send", "text", "--file", str(path), *target(emulator, key))
    assert result.code == 0, result.stderr
    assert only_payload(emulator, key)["text"]["content"] == "line one\nline two"


def test_markdown_mentions_become_inline(cli: Cli, emulator: Emulator, key: str) -> None:
    result = cli("send", "markdown", '# Deploy\n<font color="info">done</font>',
                 "--mention", "alice", "--mention", "bob", *target(emulator, key))  # fmt: skip
    assert result.code == 0, result.stderr
    content = only_payload(emulator, key)["markdown"]["content"]
    assert content == '# Deploy\n<font color="info">done</font>\n<@alice> <@bob>'


def test_markdown_v2(cli: Cli, emulator: Emulator, key: str) -> None:
    table = "| a | b |\n|---|---|\n| 1 | 2 |"
    result = cli("send", "markdown-v2", table, *target(emulator, key))
    assert result.code == 0, result.stderr
    assert only_payload(emulator, key) == {"msgtype": "markdown_v2",
                                           "markdown_v2": {"content": table}}  # fmt: skip


def test_split_sends_every_part_in_order(cli: Cli, emulator: Emulator, key: str) -> None:
    paragraphs = [f"段落 {i}: " + "数据" * 150 for i in range(6)]
    content = "\n\n".join(paragraphs)
    assert limits.utf8_len(content) > limits.TEXT_CONTENT_MAX_BYTES
    result = cli("send", "text", "--split", "--mention", "alice", *target(emulator, key),
                 stdin=content)  # fmt: skip
    assert result.code == 0, result.stderr
    stored = [m["payload"]["text"] for m in emulator.accepted(key)]
    assert len(stored) >= 2
    assert f"sent {len(stored)} text messages" in result.stdout
    assert all(limits.utf8_len(t["content"]) <= limits.TEXT_CONTENT_MAX_BYTES for t in stored)
    assert "".join(t["content"] for t in stored) == content
    assert stored[0]["mentioned_list"] == ["alice"]
    assert all("mentioned_list" not in t for t in stored[1:])


def test_split_markdown_keeps_mentions_in_the_first_part(
    cli: Cli, emulator: Emulator, key: str
) -> None:
    content = "\n\n".join(f"## part {i}\n" + "word " * 300 for i in range(5))
    result = cli("send", "markdown", "--split", "--markers", "--mention", "ops",
                 *target(emulator, key), stdin=content)  # fmt: skip
    assert result.code == 0, result.stderr
    stored = [m["payload"]["markdown"]["content"] for m in emulator.accepted(key)]
    assert len(stored) >= 2
    assert "<@ops>" in stored[0] and all("<@ops>" not in part for part in stored[1:])
    assert stored[-1].endswith(f"({len(stored)}/{len(stored)})")
    assert all(limits.utf8_len(p) <= limits.MARKDOWN_CONTENT_MAX_BYTES for p in stored)


def test_image_png_is_sent_as_is(cli: Cli, emulator: Emulator, key: str, tmp_path: Path) -> None:
    data = png_bytes(4, 3)
    path = tmp_path / "chart.png"
    path.write_bytes(data)
    result = cli("send", "image", str(path), *target(emulator, key))
    assert result.code == 0, result.stderr
    assert "note:" not in result.stderr
    image = only_payload(emulator, key)["image"]
    assert base64.b64decode(image["base64"]) == data
    assert image["md5"] == hashlib.md5(data).hexdigest()


@pytest.mark.parametrize("fmt", ["GIF", "BMP"])
def test_other_image_formats_are_converted_to_png(
    cli: Cli, emulator: Emulator, key: str, tmp_path: Path, fmt: str
) -> None:
    path = tmp_path / f"pic.{fmt.lower()}"
    Image.new("RGB", (20, 10), (200, 30, 30)).save(path, format=fmt)
    result = cli("send", "image", str(path), *target(emulator, key))
    assert result.code == 0, result.stderr
    assert f"pic.{fmt.lower()} is {fmt}" in result.stderr and "converted to PNG" in result.stderr
    sent = base64.b64decode(only_payload(emulator, key)["image"]["base64"])
    decoded = Image.open(io.BytesIO(sent))
    assert decoded.format == "PNG"
    assert decoded.size == (20, 10)
    assert decoded.convert("RGB").getpixel((5, 5)) == (200, 30, 30)


def test_image_over_two_mib_is_downscaled(
    cli: Cli, emulator: Emulator, key: str, tmp_path: Path
) -> None:
    path = tmp_path / "noise.png"
    Image.frombytes("RGB", (1100, 1000), os.urandom(1100 * 1000 * 3)).save(path, format="PNG")
    assert path.stat().st_size > limits.IMAGE_MAX_BYTES
    result = cli("send", "image", str(path), *target(emulator, key))
    assert result.code == 0, result.stderr
    assert "over the 2.0 MiB image limit" in result.stderr
    sent = base64.b64decode(only_payload(emulator, key)["image"]["base64"])
    assert len(sent) <= limits.IMAGE_MAX_BYTES
    assert Image.open(io.BytesIO(sent)).format in ("JPEG", "PNG")


def test_news_from_repeated_articles(cli: Cli, emulator: Emulator, key: str) -> None:
    result = cli(
        "send", "news",
        "--article", "title=Release 2.0,url=https://example.com/r2,"
        "description=Faster, smaller, safer,picurl=https://example.com/r2.png",
        "--article", "title=Changelog,url=https://example.com/log",
        *target(emulator, key),
    )  # fmt: skip
    assert result.code == 0, result.stderr
    assert only_payload(emulator, key)["news"]["articles"] == [
        {"title": "Release 2.0", "url": "https://example.com/r2",
         "description": "Faster, smaller, safer", "picurl": "https://example.com/r2.png"},
        {"title": "Changelog", "url": "https://example.com/log"},
    ]  # fmt: skip


def test_news_from_yaml_file(cli: Cli, emulator: Emulator, key: str, tmp_path: Path) -> None:
    path = tmp_path / "news.yaml"
    path.write_text("articles:\n  - title: 周报\n    url: https://example.com/w\n", "utf-8")
    result = cli("send", "news", "--from", str(path), *target(emulator, key))
    assert result.code == 0, result.stderr
    assert only_payload(emulator, key)["news"]["articles"] == [
        {"title": "周报", "url": "https://example.com/w"}
    ]


def test_news_long_title_is_cut_with_a_notice(cli: Cli, emulator: Emulator, key: str) -> None:
    title = "标" * 60  # 180 bytes
    result = cli("send", "news", "--article", f"title={title},url=https://e.com",
                 *target(emulator, key))  # fmt: skip
    assert result.code == 0, result.stderr
    assert "note: news article title is 180 bytes" in result.stderr
    stored = only_payload(emulator, key)["news"]["articles"][0]["title"]
    assert limits.utf8_len(stored) <= limits.NEWS_TITLE_MAX_BYTES


def test_card_from_json_file(cli: Cli, emulator: Emulator, key: str, tmp_path: Path) -> None:
    card = {
        "card_type": "text_notice",
        "main_title": {"title": "Incident #42", "desc": "db-1 disk"},
        "card_action": {"type": 1, "url": "https://example.com/inc/42"},
    }
    path = tmp_path / "card.json"
    path.write_text(json.dumps(card), "utf-8")
    result = cli("send", "card", "--from", str(path), *target(emulator, key))
    assert result.code == 0, result.stderr
    assert only_payload(emulator, key) == {"msgtype": "template_card", "template_card": card}


def test_raw_json_payload_from_stdin(cli: Cli, emulator: Emulator, key: str) -> None:
    payload = {"msgtype": "markdown", "markdown": {"content": "**raw**"}}
    result = cli("send", "json", *target(emulator, key), stdin=json.dumps(payload))
    assert result.code == 0, result.stderr
    assert only_payload(emulator, key) == payload


def test_raw_json_oversize_text_with_split(cli: Cli, emulator: Emulator, key: str) -> None:
    payload = {"msgtype": "text", "text": {"content": "y " * 1500}}
    refused = cli("send", "json", *target(emulator, key), stdin=json.dumps(payload))
    assert refused.code == 2
    assert "text.content is 3000 bytes" in refused.stderr and "--split" in refused.stderr
    result = cli("send", "json", "--split", *target(emulator, key), stdin=json.dumps(payload))
    assert result.code == 0, result.stderr
    stored = [m["payload"]["text"]["content"] for m in emulator.accepted(key)]
    assert len(stored) == 2 and "".join(stored) == "y " * 1500


def test_file_is_uploaded_then_sent(cli: Cli, emulator: Emulator, key: str, tmp_path: Path) -> None:
    path = tmp_path / "report.csv"
    path.write_bytes(b"host,disk\ndb-1,91%\n")
    result = cli("send", "file", str(path), *target(emulator, key), "--json")
    assert result.code == 0, result.stderr
    document = json.loads(result.stdout)
    media_id = document["upload"]["media_id"]
    assert only_payload(emulator, key) == {"msgtype": "file", "file": {"media_id": media_id}}
    assert emulator.media_bytes(media_id) == path.read_bytes()
    assert [m["filename"] for m in emulator.media(key)] == ["report.csv"]


def test_voice_is_uploaded_then_sent(
    cli: Cli, emulator: Emulator, key: str, tmp_path: Path
) -> None:
    path = tmp_path / "standup.amr"
    path.write_bytes(amr_bytes(400))
    result = cli("send", "voice", str(path), *target(emulator, key))
    assert result.code == 0, result.stderr
    payload = only_payload(emulator, key)
    assert payload["msgtype"] == "voice"
    assert emulator.media_bytes(payload["voice"]["media_id"]) == amr_bytes(400)


def test_upload_prints_the_media_id(cli: Cli, emulator: Emulator, key: str, tmp_path: Path) -> None:
    path = tmp_path / "build.log"
    path.write_bytes(b"build ok\n" * 10)
    result = cli("upload", str(path), "--type", "file", *target(emulator, key))
    assert result.code == 0, result.stderr
    media_id = result.stdout.strip()
    assert [m["media_id"] for m in emulator.media(key)] == [media_id]
    assert emulator.accepted(key) == []


def test_large_upload_shows_a_progress_bar_on_a_terminal(
    cli: Cli, emulator: Emulator, key: str, tmp_path: Path
) -> None:
    path = tmp_path / "big.bin"
    path.write_bytes(os.urandom(3 * 1024 * 1024))
    tty = TtyStringIO()
    result = cli("upload", str(path), *target(emulator, key), stderr=tty)
    assert result.code == 0, result.stderr
    assert "uploading big.bin" in result.stderr
    assert "3.1/3.1 MB" in result.stderr  # rich counts decimal megabytes; the bar finished
    assert emulator.media_bytes(result.stdout.strip()) == path.read_bytes()


def test_no_progress_bar_when_stderr_is_not_a_terminal(
    cli: Cli, emulator: Emulator, key: str, tmp_path: Path
) -> None:
    path = tmp_path / "big.bin"
    path.write_bytes(os.urandom(2 * 1024 * 1024))
    result = cli("upload", str(path), *target(emulator, key))
    assert result.code == 0, result.stderr
    assert "uploading" not in result.stderr


def test_json_output_describes_what_was_sent(cli: Cli, emulator: Emulator, key: str) -> None:
    result = cli("send", "text", "hi", *target(emulator, key), "--json")
    assert result.code == 0
    document = json.loads(result.stdout)
    assert document["ok"] is True
    assert document["sent"] == [{"msgtype": "text", "errcode": 0, "errmsg": "ok", "attempts": 1}]
    assert document["target"]["base_url"] == emulator.url
    assert document["target"]["key"] != key and document["target"]["key"].startswith(key[:4])


def test_rate_limit_option_spaces_sends(cli: Cli, emulator: Emulator, key: str) -> None:
    # Three parts under a local 1-per-100ms limit must arrive at least ~200 ms apart overall.
    content = "\n\n".join("z" * 2000 for _ in range(3))
    result = cli("send", "text", "--split", "--rate-limit", "--rate", "1/100ms",
                 *target(emulator, key), stdin=content)  # fmt: skip
    assert result.code == 0, result.stderr
    times = [m["received_at"] for m in emulator.accepted(key)]
    assert len(times) == 3
    assert times[-1] - times[0] >= 0.19
