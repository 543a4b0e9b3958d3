"""--dry-run prints the exact request body and its sizes, needs no key and sends nothing."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from tests.images import amr_bytes, png_bytes
from wecom_bot import limits

from .conftest import Cli, Emulator, target


def test_text_dry_run_prints_the_exact_body_and_sizes(cli: Cli) -> None:
    result = cli("send", "text", "磁盘 91%", "--mention", "@all", "--dry-run")
    assert result.code == 0, result.stderr
    body = '{"msgtype":"text","text":{"content":"磁盘 91%","mentioned_list":["@all"]}}'
    assert result.stdout == body + "\n"
    assert f"body {len(body.encode())} bytes" in result.stderr
    assert "text.content 10 of 2048 bytes" in result.stderr
    assert "nothing was sent" in result.stderr


def test_dry_run_sends_nothing_even_with_a_target(cli: Cli, emulator: Emulator, key: str) -> None:
    result = cli("send", "markdown", "**x**", *target(emulator, key), "--dry-run")
    assert result.code == 0
    assert emulator.messages(key) == []


def test_dry_run_json_lists_every_split_part(cli: Cli) -> None:
    content = "\n\n".join("q" * 1500 for _ in range(3))
    result = cli("send", "text", "--split", "--dry-run", "--json", stdin=content)
    assert result.code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["dry_run"] is True
    parts = document["messages"]
    assert len(parts) == 3
    for part in parts:
        content_size = next(s for s in part["sizes"] if s["field"] == "text.content")
        assert content_size["limit"] == limits.TEXT_CONTENT_MAX_BYTES
        assert content_size["size"] == limits.utf8_len(part["payload"]["text"]["content"])
        assert part["body_bytes"] == len(
            json.dumps(part["payload"], ensure_ascii=False, separators=(",", ":")).encode()
        )


def test_image_dry_run_shows_the_decoded_size(cli: Cli, tmp_path: Path) -> None:
    data = png_bytes(3, 3)
    path = tmp_path / "a.png"
    path.write_bytes(data)
    result = cli("send", "image", str(path), "--dry-run")
    assert result.code == 0
    payload = json.loads(result.stdout)
    assert base64.b64decode(payload["image"]["base64"]) == data
    assert f"image (decoded) {len(data)} of {limits.IMAGE_MAX_BYTES} bytes" in result.stderr


def test_news_dry_run_counts_articles(cli: Cli) -> None:
    result = cli("send", "news", "--article", "title=T,url=https://e.com,description=dd",
                 "--dry-run", "--json")  # fmt: skip
    sizes = {s["field"]: s for s in json.loads(result.stdout)["messages"][0]["sizes"]}
    assert sizes["news.articles"]["size"] == 1 and sizes["news.articles"]["limit"] == 8
    assert sizes["news.articles[0].description"] == {
        "field": "news.articles[0].description", "size": 2, "limit": 512, "unit": "bytes"
    }  # fmt: skip


def test_voice_dry_run_checks_the_upload_without_sending(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "v.amr"
    path.write_bytes(amr_bytes(100))
    result = cli("send", "voice", str(path), "--dry-run", "--json")
    assert result.code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["upload"] == {"type": "voice", "filename": "v.amr", "size": 100,
                                  "limit": limits.VOICE_MAX_BYTES}  # fmt: skip
    assert document["messages"][0]["payload"]["msgtype"] == "voice"


def test_dry_run_still_validates(cli: Cli) -> None:
    result = cli("send", "json", "--dry-run",
                 stdin='{"msgtype":"news","news":{"articles":[]}}')  # fmt: skip
    assert result.code == 2
    assert "news.articles" in result.stderr
    assert result.stdout == ""
