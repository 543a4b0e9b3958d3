"""The webhook key never appears in any output: results, notices, errors, JSON, tracebacks."""

from __future__ import annotations

from pathlib import Path

from tests.images import png_bytes

from .conftest import Cli, Emulator, target
from .test_exit_codes import closed_port_url

KEY = "SeCrEtKeY-7f3a9c2e-4b1d-4e8f-9a6b-1c2d3e4f5a6b"


def test_the_key_never_appears_in_any_output(
    cli: Cli, emulator: Emulator, strict_emulator: Emulator, tmp_path: Path
) -> None:
    image = tmp_path / "p.png"
    image.write_bytes(png_bytes())
    document = tmp_path / "doc.txt"
    document.write_bytes(b"some file content")
    webhook = f"{emulator.url}/cgi-bin/webhook/send?key={KEY}"
    emulator.inject(KEY, kind="errcode", errcode=45009, count=1)
    runs = [
        cli("send", "text", "ok", *target(emulator, KEY), "--rate", "20/10ms"),  # 45009, sent
        cli("send", "text", "ok", *target(emulator, KEY), "--json"),
        cli("--debug", "send", "text", "ok", *target(emulator, KEY)),
        cli("send", "markdown", "ok", "--webhook", webhook, "--json"),
        cli("send", "image", str(image), "--webhook", webhook),
        cli("send", "file", str(document), *target(emulator, KEY), "--json"),
        cli("upload", str(document), *target(emulator, KEY)),
        cli("send", "text", "hi", *target(strict_emulator, KEY)),  # 93000
        cli("--debug", "send", "text", "hi", *target(strict_emulator, KEY), "--json"),
        cli("send", "text", "hi", "--key", KEY, "--base-url", closed_port_url(), "--retries", "0"),
        cli("--debug", "send", "text", "hi", "--webhook",
            f"{closed_port_url()}/cgi-bin/webhook/send?key={KEY}", "--retries", "0"),
        cli("send", "text", "hi", "--key", KEY + " with a space"),  # malformed key
        cli("send", "text", "hi", "--key", KEY, "--webhook", webhook),  # both given
        cli("send", "text", "hi", "--dry-run", "--key", KEY),
        cli("send", "text", "hi", env={"WECOM_BOT_KEY": KEY, "WECOM_BOT_BASE_URL": emulator.url}),
    ]  # fmt: skip
    assert [r.code for r in runs] == [0, 0, 0, 0, 0, 0, 0, 3, 3, 5, 5, 2, 2, 0, 0]
    assert any("Traceback" in r.stderr for r in runs), "the --debug runs show tracebacks"
    assert any("HTTP Request" in r.stderr for r in runs), "--debug logs the requests"
    assert any(KEY[:4] + "…" + KEY[-4:] in r.output for r in runs), "the key is shown masked"
    for output in cli.outputs:
        assert KEY not in output
        assert KEY[4:-4] not in output


def test_a_short_key_is_not_shown_at_all(cli: Cli, strict_emulator: Emulator) -> None:
    short = "abc123xyz"
    result = cli("send", "text", "hi", *target(strict_emulator, short), "--json")
    assert result.code == 3
    assert short not in result.output
