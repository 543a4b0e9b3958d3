"""``wecom-bot render``: sandboxed rendering, sizes against the limit, the split plan."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from wecom_bot.cli import render
from wecom_bot.cli.errors import CliUsageError
from wecom_bot.cli.render import render_template, size_report

from .conftest import Cli


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_renders_with_the_json_as_context(cli: Cli, tmp_path: Path) -> None:
    template = write(tmp_path / "alert.md.j2",
                     "## {{ alertname }}\n{% for h in hosts %}- {{ h }}\n{% endfor %}")  # fmt: skip
    data = write(tmp_path / "a.json", json.dumps({"alertname": "磁盘", "hosts": ["a", "b"]}))
    result = cli("render", str(template), "--data", str(data))
    assert result.code == 0, result.stderr
    content = "## 磁盘\n- a\n- b\n"
    assert result.stdout.startswith(content)
    assert f"markdown: {len(content.encode())} of 4096 bytes (UTF-8), fits" in result.stdout


def test_over_the_limit_shows_the_split(cli: Cli, tmp_path: Path) -> None:
    template = write(tmp_path / "t.j2", "{% for i in range(n) %}{{ line }}\n\n{% endfor %}")
    data = write(tmp_path / "d.json", json.dumps({"n": 30, "line": "x" * 99}))
    result = cli("render", str(template), "--data", str(data), "--msgtype", "text", "--json")
    assert result.code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["bytes"] == 30 * 101
    assert document["limit"] == 2048 and document["over_by"] == document["bytes"] - 2048
    assert len(document["parts"]) == 2 and all(p <= 2048 for p in document["parts"])
    assert document["fits"] is False
    checked = cli("render", str(template), "--data", str(data), "-t", "text", "--check")
    assert checked.code == 2 and "over the 2048-byte limit" in checked.stderr
    assert "--split would send 2 messages" in checked.stdout


def test_the_sandbox_refuses_python_internals(tmp_path: Path) -> None:
    template = write(tmp_path / "evil.j2", "{{ data.__class__.__mro__[1].__subclasses__() }}")
    with pytest.raises(CliUsageError, match="SecurityError|unsafe"):
        render_template(template, {"x": 1})


def test_undefined_variables_are_errors(cli: Cli, tmp_path: Path) -> None:
    template = write(tmp_path / "t.j2", "{{ alertnmae }}")
    data = write(tmp_path / "d.json", '{"alertname": "x"}')
    result = cli("render", str(template), "--data", str(data))
    assert result.code == 2
    assert "'alertnmae' is undefined" in result.stderr


def test_syntax_error_names_the_line(cli: Cli, tmp_path: Path) -> None:
    template = write(tmp_path / "t.j2", "ok\n{% if %}")
    data = write(tmp_path / "d.json", "{}")
    result = cli("render", str(template), "--data", str(data))
    assert result.code == 2 and "syntax error at line 2" in result.stderr


def test_the_renderer_is_a_replaceable_seam(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[object] = []

    def gateway_renderer(path: Path, context: object) -> str:
        seen.append(context)
        return "rendered by the gateway"

    monkeypatch.setattr(render, "RENDERER", gateway_renderer)
    template = write(tmp_path / "t.j2", "ignored")
    data = write(tmp_path / "d.json", '{"a": 1}')
    result = cli("render", str(template), "--data", str(data), "--json")
    assert json.loads(result.stdout)["content"] == "rendered by the gateway"
    assert seen == [{"a": 1}]


def test_size_report_counts_utf8_bytes() -> None:
    report = size_report("数" * 1400, "markdown_v2")  # 4200 bytes
    assert (report.bytes, report.limit, report.over_by) == (4200, 4096, 104)
    assert sum(report.parts) >= 4200 and len(report.parts) == 2
