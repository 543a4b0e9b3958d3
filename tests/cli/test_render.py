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
    result = cli("render", str(template), "--data", str(data), "--plain")
    assert result.code == 0, result.stderr
    content = "## 磁盘\n- a\n- b\n"
    assert result.stdout.startswith(content)
    assert f"markdown: {len(content.encode())} of 4096 bytes (UTF-8), fits" in result.stdout


def test_over_the_limit_shows_the_split(cli: Cli, tmp_path: Path) -> None:
    template = write(tmp_path / "t.j2", "{% for i in range(n) %}{{ line }}\n\n{% endfor %}")
    data = write(tmp_path / "d.json", json.dumps({"n": 30, "line": "x" * 99}))
    result = cli(
        "render", str(template), "--data", str(data), "--msgtype", "text", "--json", "--plain"
    )
    assert result.code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["bytes"] == 30 * 101
    assert document["limit"] == 2048 and document["over_by"] == document["bytes"] - 2048
    assert len(document["parts"]) == 2 and all(p <= 2048 for p in document["parts"])
    assert document["fits"] is False
    checked = cli("render", str(template), "--data", str(data), "-t", "text", "--check", "--plain")
    assert checked.code == 2 and "over the 2048-byte limit" in checked.stderr
    assert "--split would send 2 messages" in checked.stdout


def test_the_sandbox_refuses_python_internals(tmp_path: Path) -> None:
    template = write(tmp_path / "evil.j2", "{{ data.__class__.__mro__[1].__subclasses__() }}")
    with pytest.raises(CliUsageError, match="SecurityError|unsafe"):
        render_template(template, {"x": 1})


def test_undefined_variables_are_errors(cli: Cli, tmp_path: Path) -> None:
    template = write(tmp_path / "t.j2", "{{ alertnmae }}")
    data = write(tmp_path / "d.json", '{"alertname": "x"}')
    result = cli("render", str(template), "--data", str(data), "--plain")
    assert result.code == 2
    assert "'alertnmae' is undefined" in result.stderr


def test_syntax_error_names_the_line(cli: Cli, tmp_path: Path) -> None:
    template = write(tmp_path / "t.j2", "ok\n{% if %}")
    data = write(tmp_path / "d.json", "{}")
    result = cli("render", str(template), "--data", str(data), "--plain")
    assert result.code == 2 and "syntax error at line 2" in result.stderr
    as_gateway = cli("render", str(template), "--data", str(data))
    assert as_gateway.code == 2 and "line 2" in as_gateway.stderr


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
    result = cli("render", str(template), "--data", str(data), "--json", "--plain")
    assert json.loads(result.stdout)["content"] == "rendered by the gateway"
    assert seen == [{"a": 1}]


def test_builtin_gateway_template_renders_an_alertmanager_payload(cli: Cli, tmp_path: Path) -> None:
    from wecom_bot.gateway.samples import alertmanager_firing

    payload = alertmanager_firing()
    payload["alerts"][0]["labels"]["instance"] = "<@all> [x](javascript:alert(1))"
    data = write(tmp_path / "am.json", json.dumps(payload))
    result = cli("render", "default", "--data", str(data), "--json")
    assert result.code == 0, result.stderr
    content = json.loads(result.stdout)["content"]
    assert "FIRING" in content and "HighCPU" in content
    assert "<@all>" not in content and "](javascript" not in content  # escaped like the gateway


def test_a_file_template_renders_a_grafana_payload(cli: Cli, tmp_path: Path) -> None:
    from wecom_bot.gateway.samples import grafana_firing

    template = write(
        tmp_path / "mine.j2", "{% for a in alerts %}* {{ a.labels.zone }}\n{% endfor %}"
    )
    data = write(tmp_path / "g.json", json.dumps(grafana_firing()))
    result = cli("render", str(template), "--data", str(data), "--json")
    assert result.code == 0, result.stderr
    assert "* us-1" in json.loads(result.stdout)["content"]


def test_unknown_template_name_lists_the_builtins(cli: Cli, tmp_path: Path) -> None:
    data = write(tmp_path / "d.json", "{}")
    result = cli("render", "no-such-template", "--data", str(data))
    assert result.code == 2 and "default_v2" in result.stderr


def test_size_report_counts_utf8_bytes() -> None:
    report = size_report("数" * 1400, "markdown_v2")  # 4200 bytes
    assert (report.bytes, report.limit, report.over_by) == (4200, 4096, 104)
    assert sum(report.parts) >= 4200 and len(report.parts) == 2
