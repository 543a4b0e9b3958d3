"""Every documented exit code, produced against the emulator (errcodes, faults) or a closed port."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from wecom_bot.cli.exit_codes import ExitCode

from .conftest import ALLOWED_KEY, Cli, Emulator, target


def closed_port_url() -> str:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}"


# -- 2: usage or validation, nothing sent ------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "stdin", "expected"),
    [
        (["send", "text"], "", "text.content: must not be empty"),
        (["send", "markdown-v2", "hi", "--mention", "bob"], "", "markdown_v2 cannot mention"),
        (["send", "text", "x", "--file", "y.txt"], "", "not both"),
        (["send", "news", "--article", "title=A,url=u,descripton=d"], "", "mean 'description'"),
        (["send", "news", "--article", "title=A"], "", "news.articles[0].url: is required"),
        (["send", "json"], '{"msgtype": "txt"}', "'txt' is not a message type"),
        (["send", "json"], "{not json", "is not valid JSON"),
        (["send", "text", "hi", "--rate", "fast"], "", "--rate: invalid rate 'fast'"),
    ],
)
def test_validation_and_usage_errors_exit_2(
    cli: Cli, emulator: Emulator, key: str, argv: list[str], stdin: str, expected: str
) -> None:
    result = cli(*argv, *target(emulator, key), stdin=stdin)
    assert result.code == ExitCode.USAGE == 2, result.output
    assert expected in result.stderr
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert "Traceback" not in result.output
    assert emulator.messages(key) == []


def test_over_the_limit_says_by_how_much_and_suggests_split(
    cli: Cli, emulator: Emulator, key: str
) -> None:
    result = cli("send", "text", *target(emulator, key), stdin="数" * 700)  # 2100 bytes
    assert result.code == 2
    assert "text.content is 2100 bytes (UTF-8), 52 bytes over the 2048-byte limit" in result.stderr
    assert "pass --split to send it as 2 messages" in result.stderr
    assert emulator.messages(key) == []


def test_an_option_typer_rejects_exits_2(cli: Cli) -> None:
    result = cli("send", "text", "hi", "--no-such-option")
    assert result.code == 2
    assert result.stderr == (
        "error: no such option: --no-such-option (see 'wecom-bot send text --help')\n"
    )


def test_no_target_exits_2_and_says_how_to_give_one(cli: Cli) -> None:
    result = cli("send", "text", "hi")
    assert result.code == 2
    assert "no webhook target" in result.stderr and "--key" in result.stderr


def test_bad_image_and_bad_voice_exit_2(
    cli: Cli, emulator: Emulator, key: str, tmp_path: Path
) -> None:
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"definitely not an image")
    result = cli("send", "image", str(junk), *target(emulator, key))
    assert result.code == 2 and "not an image Pillow can read" in result.stderr
    voice = tmp_path / "voice.mp3"
    voice.write_bytes(b"ID3" + b"\0" * 100)
    result = cli("send", "voice", str(voice), *target(emulator, key))
    assert result.code == 2 and "voice must be AMR" in result.stderr
    missing = cli("send", "file", str(tmp_path / "missing.pdf"), *target(emulator, key))
    assert missing.code == 2 and "does not exist" in missing.stderr
    assert emulator.messages(key) == []


# -- 3: rejected by the API -----------------------------------------------------------------


def test_unknown_key_is_rejected_with_its_errcode(
    cli: Cli, strict_emulator: Emulator, key: str
) -> None:
    result = cli("send", "text", "hi", *target(strict_emulator, key))
    assert result.code == ExitCode.API_REJECTED == 3
    assert "93000" in result.stderr and "invalid webhook url" in result.stderr
    ok = cli("send", "text", "hi", *target(strict_emulator, ALLOWED_KEY))
    assert ok.code == 0, ok.stderr


def test_injected_errcode_exits_3_and_json_carries_it(
    cli: Cli, emulator: Emulator, key: str
) -> None:
    emulator.inject(key, kind="errcode", errcode=40058)
    result = cli("send", "markdown", "hi", *target(emulator, key), "--json")
    assert result.code == 3
    assert "40058" in result.stderr
    document = json.loads(result.stdout)
    assert document["ok"] is False and document["exit_code"] == 3
    assert document["error"]["errcode"] == 40058


# -- 4: still rate-limited after the retries ------------------------------------------------------


def test_45009_after_every_retry_exits_4(cli: Cli, emulator: Emulator, key: str) -> None:
    emulator.inject(key, kind="errcode", errcode=45009, count=3)
    result = cli("send", "text", "hi", *target(emulator, key),
                 "--retries", "2", "--rate", "20/10ms")  # fmt: skip
    assert result.code == ExitCode.RATE_LIMITED == 4, result.output
    assert "45009" in result.stderr
    assert result.stderr.count("retrying in") == 2
    rejected = [m for m in emulator.messages(key) if m["errcode"] == 45009]
    assert len(rejected) == 3
    assert emulator.accepted(key) == []


def test_45009_then_room_in_the_window_sends(cli: Cli, emulator: Emulator, key: str) -> None:
    emulator.inject(key, kind="errcode", errcode=45009, count=2)
    result = cli("send", "text", "hi", *target(emulator, key),
                 "--retries", "2", "--rate", "20/10ms", "--json")  # fmt: skip
    assert result.code == 0, result.output
    assert json.loads(result.stdout)["sent"][0]["attempts"] == 3
    assert len(emulator.accepted(key)) == 1


# -- 5: network -------------------------------------------------------------------------------


def test_closed_port_exits_5(cli: Cli, key: str) -> None:
    result = cli("send", "text", "hi", "--key", key, "--base-url", closed_port_url(),
                 "--retries", "0")  # fmt: skip
    assert result.code == ExitCode.NETWORK == 5
    assert "ConnectError" in result.stderr
    assert result.stderr.count("\n") == 1


def test_dropped_connections_exit_5_after_retries(cli: Cli, emulator: Emulator, key: str) -> None:
    emulator.inject(key, kind="drop", count=2)
    result = cli("send", "text", "hi", *target(emulator, key), "--retries", "1")
    assert result.code == 5, result.output
    assert "retrying in" in result.stderr
    assert emulator.accepted(key) == []


def test_http_502_exits_5(cli: Cli, emulator: Emulator, key: str) -> None:
    emulator.inject(key, kind="http_status", status=502)
    result = cli("send", "text", "hi", *target(emulator, key), "--retries", "0")
    assert result.code == 5
    assert "HTTP 502" in result.stderr


def test_split_failure_names_the_part(cli: Cli, emulator: Emulator, key: str) -> None:
    content = "\n\n".join("w" * 2000 for _ in range(3))
    cli_first = cli("send", "text", "ok", *target(emulator, key))
    assert cli_first.code == 0
    emulator.inject(key, kind="errcode", errcode=40058, count=1)
    # The fault hits the first part; nothing after it is sent.
    result = cli("send", "text", "--split", *target(emulator, key), stdin=content)
    assert result.code == 3
    assert "part 1 of 3; 0 sent before it" in result.stderr
    assert len(emulator.accepted(key)) == 1


# -- --debug ------------------------------------------------------------------------------------


def test_debug_shows_the_traceback(cli: Cli, key: str) -> None:
    url = closed_port_url()
    quiet = cli("send", "text", "hi", "--key", key, "--base-url", url, "--retries", "0")
    assert "Traceback" not in quiet.stderr
    loud = cli("--debug", "send", "text", "hi", "--key", key, "--base-url", url, "--retries", "0")
    assert loud.code == 5
    assert "Traceback (most recent call last)" in loud.stderr
    assert loud.stderr.rstrip().splitlines()[-1].startswith("error: request failed")
