"""``wecom-bot gateway`` and ``gateway check`` as a user runs them, and the ``make run`` demo."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from tests.gateway.harness import gateway_config, write_config
from wecom_bot.gateway.samples import alertmanager_firing

EXAMPLE = Path(__file__).parents[2] / "src/wecom_bot/gateway/examples/gateway.yaml"


def wecom_bot(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wecom_bot", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def test_check_renders_the_example_config_with_sizes() -> None:
    result = wecom_bot(
        "gateway", "check", "--config", str(EXAMPLE), env={"WECOM_BOT_KEY": "k" * 36}
    )
    assert result.returncode == 0, result.stderr
    assert "config OK: 1 bot(s)" in result.stdout
    assert "/ 4096 bytes" in result.stdout and "route critical" in result.stdout
    assert "k" * 36 not in result.stdout + result.stderr


def test_check_names_the_field_of_a_bad_config(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("bots: {ops: {key_env: X}}\nroutes: [{name: a, bots: [opz]}]\n", "utf-8")
    result = wecom_bot("gateway", "check", "--config", str(bad))
    assert result.returncode == 2
    assert "no bot named 'opz'" in result.stderr and "did you mean 'ops'" in result.stderr
    assert "Traceback" not in result.stderr


def test_gateway_with_an_unwritable_store_fails_at_start_clearly(tmp_path: Path) -> None:
    config = gateway_config(
        "http://127.0.0.1:9", "k" * 36, f"sqlite:///{tmp_path / 'missing-dir' / 'outbox.db'}"
    )
    path = write_config(tmp_path / "gw.yaml", config)
    result = wecom_bot("gateway", "--config", str(path), "--port", "0", timeout=30)
    assert result.returncode == 2
    assert "store" in result.stderr and "missing-dir" in result.stderr
    assert "Traceback" not in result.stderr


def test_gateway_with_a_read_only_database_fails_at_start_clearly(tmp_path: Path) -> None:
    directory = tmp_path / "ro"
    directory.mkdir()
    database = directory / "outbox.db"
    database.write_bytes(b"")
    database.chmod(0o444)
    directory.chmod(0o555)
    try:
        if os.access(database, os.W_OK):  # root ignores permission bits: make it immutable
            immutable = subprocess.run(["chattr", "+i", str(database)], capture_output=True)
            assert immutable.returncode == 0, immutable.stderr
        config = gateway_config("http://127.0.0.1:9", "k" * 36, f"sqlite:///{database}")
        path = write_config(tmp_path / "gw.yaml", config)
        result = wecom_bot("gateway", "--config", str(path), "--port", "0", timeout=30)
    finally:
        subprocess.run(["chattr", "-i", str(database)], capture_output=True)
        directory.chmod(0o755)
    assert result.returncode == 2, result.stderr
    assert "store" in result.stderr and "outbox.db" in result.stderr
    assert "Traceback" not in result.stderr


# A real group's settings, exported as the CLI docs suggest: the demo must not use them unless
# asked (--real). The base URL answers nothing, so a demo that used it would not deliver.
EXPORTED_REAL_GROUP = {"WECOM_BOT_KEY": "693a" + "0" * 28 + "5aaa",
                       "WECOM_BOT_BASE_URL": "http://127.0.0.1:9"}  # fmt: skip


def test_make_run_demo_delivers_the_samples_to_the_emulator_despite_an_exported_key(
    tmp_path: Path,
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "wecom_bot.demo", "--once"],
        capture_output=True,
        text=True,
        timeout=90,
        env={**os.environ, **EXPORTED_REAL_GROUP, "TMPDIR": str(tmp_path)},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Delivered" in result.stdout and "the outbox is empty" in result.stdout
    assert result.stdout.count("-> 200") == 3
    assert "Emulator of the WeCom API" in result.stdout and "real group" not in result.stdout
    assert list(tmp_path.iterdir()) == [], "the demo left its outbox behind"


def test_make_run_demo_shows_the_console_a_working_curl_and_says_goodbye(tmp_path: Path) -> None:
    demo = subprocess.Popen(
        [sys.executable, "-m", "wecom_bot.demo"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **EXPORTED_REAL_GROUP, "TMPDIR": str(tmp_path)},
    )
    try:
        assert demo.stdout is not None
        lines = []
        for line in demo.stdout:
            lines.append(line.rstrip("\n"))
            if line.startswith("Press Ctrl-C"):
                break
        shown = "\n".join(lines)
        console = re.search(r"console: (http://127\.0\.0\.1:\d+)/ui", shown)
        assert console, shown
        root = httpx.get(console.group(1) + "/", follow_redirects=True, timeout=10)
        assert root.status_code == 200 and str(root.url).endswith("/ui")
        assert "<title>" in root.text
        curl = next(line.strip() for line in lines if line.strip().startswith("curl "))
        posted = subprocess.run(
            shlex.split(curl) + ["-s", "-w", "\n%{http_code}"],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert posted.stdout.rsplit("\n", 1)[-1] == "200", posted.stdout + posted.stderr
        demo.send_signal(signal.SIGINT)
        out, err = demo.communicate(timeout=30)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
    assert demo.returncode == 130, err
    assert "Bye." in out and "Traceback" not in err
    assert list(tmp_path.iterdir()) == [], "the demo left its outbox behind"


def _without_keys() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "WECOM_BOT_KEY"}


def _run_without_keys(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wecom_bot", *args],
        capture_output=True, text=True, timeout=60, env=_without_keys(),
    )  # fmt: skip


def test_check_runs_without_the_keys_and_says_they_are_not_set() -> None:
    result = _run_without_keys("gateway", "check", "--config", str(EXAMPLE))
    assert result.returncode == 0, result.stderr
    assert "key of bots.ops: not set (ok for check)" in result.stdout
    assert "WECOM_BOT_KEY" in result.stdout
    assert "[ok ] route critical" in result.stdout and "/ 4096 bytes" in result.stdout
    as_json = _run_without_keys("gateway", "check", "--config", str(EXAMPLE), "--json")
    report = json.loads(as_json.stdout)
    assert report["ok"] is True and list(report["unresolved_keys"]) == ["bots.ops"]


def test_check_without_keys_still_fails_on_a_real_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("bots: {ops: {key_env: X}}\nroutes: [{name: a, bots: [ops], template: nope}]\n")
    result = _run_without_keys("gateway", "check", "--config", str(bad))
    assert result.returncode == 2
    assert "template 'nope' is not defined" in result.stderr


def test_routes_test_shows_the_routes_bots_mentions_and_messages() -> None:
    result = _run_without_keys("gateway", "routes", "test", "--config", str(EXAMPLE),
                               "alertname=DiskFull", "severity=critical", "team=db")  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "route critical · bots ops · mentions @all · active now" in lines
    assert "  bot ops · markdown · 1 message(s)" in lines
    assert any(re.fullmatch(r"    \d+ / 4096 bytes", line) for line in lines)
    assert any("DiskFull" in line and line.startswith("      │") for line in lines)
    assert "route database" not in result.stdout  # critical matched first and does not continue

    other = _run_without_keys("gateway", "routes", "test", "-c", str(EXAMPLE),
                              "alertname=Slow", "team=dba", "--json")  # fmt: skip
    report = json.loads(other.stdout)
    (route,) = report["routes"]
    assert route["route"] == "database" and route["bots"] == ["ops"]
    assert route["mentions"] == {"users": [], "mobiles": []}
    assert route["muting"] == {"muted": False}
    (message,) = route["messages"]
    assert message["msgtype"] == "markdown_v2"
    (part,) = message["parts"]
    assert part["bytes"] == len(part["content"].encode()) and part["limit"] == 4096

    nothing = _run_without_keys("gateway", "routes", "test", "-c", str(EXAMPLE), "alertname=X")
    assert "route default (default) · bots ops" in nothing.stdout


def test_routes_test_says_a_route_is_muted_now_and_reads_a_payload(tmp_path: Path) -> None:
    config = tmp_path / "gw.yaml"
    config.write_text(
        "time_intervals: {always: [{weekdays: ['monday:sunday']}]}\n"
        "bots: {ops: {key_env: WECOM_BOT_KEY}}\n"
        "routes: [{name: quiet, matchers: ['severity=\"info\"'], bots: [ops],"
        " mute_time_intervals: [always], muted: drop}]\n",
        "utf-8",
    )
    payload = tmp_path / "am.json"
    firing = alertmanager_firing()
    for alert in firing["alerts"]:
        alert["labels"]["severity"] = "info"
    firing["commonLabels"]["severity"] = "info"
    payload.write_text(json.dumps(firing), "utf-8")
    result = _run_without_keys("gateway", "routes", "test", "-c", str(config),
                               "--payload", str(payload), "--json")  # fmt: skip
    assert result.returncode == 0, result.stderr
    (route,) = json.loads(result.stdout)["routes"]
    assert route["route"] == "quiet"
    assert route["muting"]["muted"] is True and route["muting"]["action"] == "drop"
    assert "always" in route["muting"]["reason"]


def test_routes_test_refuses_bad_input_in_one_line(tmp_path: Path) -> None:
    for args, says in (
        (["alertname"], "write labels as name=value"),
        ([], "give the alert's labels"),
        (["--payload", str(tmp_path / "missing.json")], "missing.json"),
    ):
        result = _run_without_keys("gateway", "routes", "test", "-c", str(EXAMPLE), *args)
        assert result.returncode == 2, result.stderr
        assert result.stderr.startswith("error: ") and says in result.stderr
        assert len(result.stderr.splitlines()) == 1, result.stderr


def test_check_notes_that_external_url_is_unset_and_what_it_adds(tmp_path: Path) -> None:
    without = _run_without_keys("gateway", "check", "--config", str(EXAMPLE))
    assert without.returncode == 0, without.stderr  # a note, not an error
    [note] = [line for line in without.stdout.splitlines() if line.startswith("note: ")]
    assert "external_url is not set" in note
    assert "console's history" in note and "action links" in note
    as_json = json.loads(
        _run_without_keys("gateway", "check", "--config", str(EXAMPLE), "--json").stdout
    )
    assert as_json["ok"] is True and len(as_json["notes"]) == 1
    assert "external_url" in as_json["notes"][0]
    # With it set (and the secret its links are signed with), there is nothing to note.
    text = EXAMPLE.read_text("utf-8").replace(
        "# external_url: https://alerts-gw.example.com",
        "external_url: https://alerts-gw.example.com\nactions: {secret: " + "s" * 32 + "}\n#",
    )
    config = tmp_path / "with-url.yaml"
    config.write_text(text, "utf-8")
    with_url = _run_without_keys("gateway", "check", "--config", str(config))
    assert with_url.returncode == 0, with_url.stderr
    assert "note:" not in with_url.stdout and "external_url" not in with_url.stdout
    again = _run_without_keys("gateway", "check", "--config", str(config), "--json")
    assert json.loads(again.stdout)["notes"] == []


def test_check_says_a_misspelt_attribute_in_the_templates_words(tmp_path: Path) -> None:
    config = tmp_path / "gw.yaml"
    config.write_text(
        "bots: {ops: {key_env: WECOM_BOT_KEY}}\n"
        "templates:\n"
        "  mine: |\n"
        "    {% for alert in alerts %}\n"
        "    **{{ alert.name }}**\n"
        "    {{ alert.lables.team }}\n"
        "    {% endfor %}\n"
        "routes: [{name: a, bots: [ops], template: mine}]\n",
        "utf-8",
    )
    result = _run_without_keys("gateway", "check", "--config", str(config))
    assert result.returncode == 2
    said = "template 'mine': unknown variable 'alert.lables' (did you mean 'labels'?) at line 3"
    assert f"      {said}" in result.stdout.splitlines()
    assert "AlertView" not in result.stdout and "UndefinedError" not in result.stdout


FLAT = (
    "## {{ title }}{% for alert in alerts %} **{{ alert.name }}** {{ alert.summary }}"
    "{% if alert.source_link %} [来源]({{ alert.source_link }}){% endif %}{% endfor %}"
)
LONG = (
    "{% for i in range(300) %}{% for alert in alerts %}\n"
    "**{{ alert.name }}** {{ alert.description }}\n{% endfor %}{% endfor %}"
)

TEMPLATES = {"flat": FLAT, "long": LONG, "fine": "a\nb\nc"}


def test_check_warns_of_a_message_on_one_line_or_past_one_message(tmp_path: Path) -> None:
    def check(extra: str) -> list[str]:
        config = tmp_path / "gw.yaml"
        config.write_text(
            extra + "bots: {ops: {key_env: WECOM_BOT_KEY}}\n"
            f"templates: {json.dumps(TEMPLATES)}\n"
            "routes: [{name: flat, bots: [ops], template: flat},"
            " {name: long, bots: [ops], template: long},"
            " {name: fine, bots: [ops], template: fine}]\n",
            "utf-8",
        )
        result = _run_without_keys("gateway", "check", "--config", str(config))
        assert result.returncode == 0, result.stderr  # warnings, not errors
        return result.stdout.splitlines()

    lines = check("")
    head = "· sample alertmanager:firing · bot ops · markdown ·"
    at = lines.index(f"[WRN] route flat {head} 1 message(s)")
    [warning] = [line for line in lines[at + 1 : at + 4] if "warning:" in line]
    assert "the message is one line where the built-in template writes" in warning
    assert "{% endif +%}" in warning
    # Too long for one message: the gateway writes the sample as a storm summary instead.
    at = lines.index(f"[WRN] route long {head} 1 message(s)")
    assert "written as a storm summary, not with template 'long'" in lines[at + 2]
    # A template of three short lines fits and is laid out: nothing to say about it.
    assert f"[ok ] route fine {head} 1 message(s)" in lines
    assert f"[ok ] route default {head} 1 message(s)" in lines

    # Summaries off: the template's own output is split, and cut at the most messages.
    lines = check("max_alerts_per_message: null\n")
    at = lines.index(f"[WRN] route long {head} 3 message(s)")
    assert re.fullmatch(r"      warning: cut to 3 messages \(\d+ bytes rendered\)", lines[at + 4])


def test_the_examples_commented_heartbeat_checks_when_uncommented(tmp_path: Path) -> None:
    # The example config shows a heartbeat in comments; uncommented as written it must load
    # and take a Watchdog, so a first user who copies it gets a working dead man's switch.
    text = EXAMPLE.read_text("utf-8")
    start = text.index("# heartbeats:\n")
    block = text[start:].replace("# heartbeats:", "heartbeats:").replace("\n#   ", "\n  ")
    config = tmp_path / "gateway.yaml"
    config.write_text(text[:start] + block, "utf-8")
    result = wecom_bot("gateway", "check", "--config", str(config), env={"WECOM_BOT_KEY": "k" * 36})
    assert result.returncode == 0, result.stderr
    assert "[ok ] heartbeat prod" in result.stdout
    routed = wecom_bot("gateway", "routes", "test", "--config", str(config), "alertname=Watchdog",
                       env={"WECOM_BOT_KEY": "k" * 36})  # fmt: skip
    assert routed.returncode == 0, routed.stderr
    assert "taken by heartbeat prod" in routed.stdout
