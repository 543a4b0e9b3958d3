"""The sandbox's bounds, in process: every way to build too much or run too long is stopped with
a :class:`TemplateLimitError` naming the bound, and ordinary templates are untouched."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from wecom_bot.gateway.intake.sources import parse_generic
from wecom_bot.gateway.templates.renderer import Renderer, TemplateLimitError, TemplateRenderError
from wecom_bot.gateway.templates.sandbox import RenderLimits

NOTIFICATION = parse_generic("hook", {"title": "hello", "items": ["a", "b"]})

HOSTILE = {
    "repeat text": ("{{ 'x' * 200000000 }}", "repeated sequence"),
    "repeat list": ("{{ ([1] * 200000000)|length }}", "repeated sequence"),
    "ljust": ("{{ raw.title.ljust(1000000000) }}", "ljust()"),
    "str ljust": ("{{ 'x'.rjust(1000000000) }}", "rjust()"),
    "zfill": ("{{ 'x'.zfill(1000000000) }}", "zfill()"),
    "center filter": ("{{ 'x'|center(1000000000) }}", "center"),
    "indent filter": ("{{ 'a\nb'|indent(1000000000) }}", "indent"),
    "format method": ("{{ '{:>1000000000}'.format(raw.title) }}", "format width"),
    "nested format width": ("{{ '{:{}}'.format('x', 1000000000) }}", "format width"),
    "percent": ("{{ '%1000000000s' % 'x' }}", "format width"),
    "percent star": ("{{ '%*s' % (1000000000, 'x') }}", "format width"),
    "format filter": ("{{ '%1000000000s'|format('x') }}", "format width"),
    "expandtabs": ("{{ ('\t' * 1000).expandtabs(1000000) }}", "expandtabs"),
    "doubling list": (
        "{% set x=['aaaaaaaa'] %}{% for i in range(40) %}{% set _=x.extend(x) %}{% endfor %}",
        "growing collection",
    ),
    "doubling text": (
        "{% set ns = namespace(s='ab') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}"
        "{% endfor %}{{ ns.s }}",
        "joined text",
    ),
    "doubling plus": (
        "{% set ns = namespace(s=[1]) %}{% for i in range(64) %}{% set ns.s = ns.s + ns.s %}"
        "{% endfor %}",
        "longer than",
    ),
    "doubling replace": (
        "{% set ns = namespace(s=raw.title) %}{% for i in range(64) %}"
        "{% set ns.s = ns.s.replace('l', 'll') %}{% endfor %}",
        "replace()",
    ),
    "appending one long text": (
        "{% set s = 'x' * 900000 %}{% set l = [] %}{% for i in range(100000) %}"
        "{% set _ = l.append(s) %}{% endfor %}",
        "built more than",
    ),
    "join of copies": ("{% set s = 'x' * 900000 %}{{ ([s] * 1000)|join }}", "built more than"),
    "macro buffer": (
        "{% macro m() %}{% for i in range(100000) %}{{ 'x' * 900000 }}{% endfor %}{% endmacro %}"
        "{% set y = m() %}{{ y|length }}",
        "built more than",
    ),
    "nested loops": (
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}x",
        "took longer than",
    ),
    "a few slow filters": (
        "{% set s = 'ab ' * 300000 %}{% for i in range(31) %}{% set _ = s|wordwrap(2) %}"
        "{% endfor %}",
        "took longer than",
    ),
    "batch": ("{{ [1]|batch(1000000000, 'x')|list }}", "batch"),
    "slice": ("{{ [1]|slice(1000000000)|list }}", "slice"),
    "big range": ("{% for i in range(10**9) %}{% endfor %}", "range()"),
    "big power": ("{{ 7 ** (10 ** 9) }}", "bits"),
    "squaring": (
        "{% set ns = namespace(i=3) %}{% for k in range(40) %}{% set ns.i = ns.i * ns.i %}"
        "{% endfor %}{{ ns.i }}",
        "bits",
    ),
}


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.mark.parametrize("name", list(HOSTILE))
def test_a_hostile_template_is_stopped_quickly_with_the_bound_named(name: str) -> None:
    source, bound = HOSTILE[name]
    before = rss_mib()
    started = time.monotonic()
    limits = RenderLimits(timeout=1.0, max_steps=10**9)  # the clock, not the steps, ends loops
    renderer = Renderer({"t": source}, limits=limits)  # compiling folds none
    with pytest.raises(TemplateLimitError) as caught:
        renderer.render("t", NOTIFICATION, msgtype="text")
    took = time.monotonic() - started
    assert bound in str(caught.value) and "render limits" in str(caught.value)
    assert caught.value.template == "t"
    assert took < 3.0, f"{name}: stopped after {took:.1f}s"
    assert rss_mib() - before < 200, f"{name}: memory grew"


def test_limits_are_configurable_and_ordinary_work_fits_within_them() -> None:
    tight = RenderLimits(timeout=5, max_text=100, max_built=10_000, max_steps=10_000)
    renderer = Renderer({"t": "{{ 'x' * 200 }}"}, limits=tight)
    with pytest.raises(TemplateLimitError, match="longer than 100"):
        renderer.render("t", NOTIFICATION, msgtype="text")
    loops = "{% for i in range(100) %}{% for j in range(100) %}{% endfor %}{% endfor %}x"
    many = Renderer({"t": loops}, limits=tight)
    with pytest.raises(TemplateLimitError, match="more than 10000 steps"):
        many.render("t", NOTIFICATION, msgtype="text")


ORDINARY: list[tuple[str, str]] = [
    ("{{ raw.title|upper }} {{ raw.title.ljust(7) }}|", "HELLO hello  |"),
    ("{{ '{:>6}'.format(raw.title) }} {{ '%-6s|' % raw.title }}", " hello hello |"),
    ("{{ raw['items']|join(', ') }} {{ ['a'] * 3 }}", "a, b ['a', 'a', 'a']"),
    ("{% set l = [] %}{% for i in range(3) %}{% set _ = l.append(i) %}{% endfor %}{{ l }}",
     "[0, 1, 2]"),
    ("{% macro m(x) %}<{{ x }}>{% endmacro %}{{ m(raw.title) ~ m(2 ** 10) }}", "<hello><1024>"),
    ("{% set ns = namespace(n=0) %}{% for a in range(100) %}{% set ns.n = ns.n + a %}"
     "{% endfor %}{{ ns.n }} {{ 10 ** 20 }}", "4950 100000000000000000000"),
    ("{{ raw.title|center(9) }}|{{ 'a\nb'|indent(2) }}|{{ raw.title.replace('l', 'L') }}",
     "  hello  |a\n  b|heLLo"),
]  # fmt: skip


@pytest.mark.parametrize(("source", "expected"), ORDINARY)
def test_ordinary_templates_render_as_before(source: str, expected: str) -> None:
    [payload] = Renderer({"t": source}).render("t", NOTIFICATION, msgtype="text")
    assert payload["text"]["content"] == expected


def test_a_configured_template_that_includes_a_builtin_is_bounded_too() -> None:
    renderer = Renderer(
        {"t": "{% include 'generic' %}{{ 'x' * 200000000 }}"}, limits=RenderLimits(timeout=1)
    )
    with pytest.raises(TemplateLimitError):
        renderer.render("t", NOTIFICATION, msgtype="text")
    assert renderer.render("generic", NOTIFICATION, msgtype="text")  # the built-in, by name


def test_lipsum_is_gone_and_other_errors_are_not_limit_errors() -> None:
    renderer = Renderer({"t": "{{ lipsum(1000000000) }}", "u": "{{ 1 / 0 }}"})
    for name in ("t", "u"):
        with pytest.raises(TemplateRenderError) as caught:
            renderer.render(name, NOTIFICATION, msgtype="text")
        assert not isinstance(caught.value, TemplateLimitError)


def test_renderer_settings_build_the_same_renderer() -> None:
    limits = RenderLimits(timeout=2.0, max_text=5000)
    renderer = Renderer({"t": "{{ raw.title }}!"}, timezone="UTC", max_alerts=3, limits=limits)
    again: Any = Renderer.from_settings(renderer.settings)
    assert again.settings == renderer.settings and hash(again.settings) == hash(renderer.settings)
    assert again.render("t", NOTIFICATION, msgtype="text") == renderer.render(
        "t", NOTIFICATION, msgtype="text"
    )
    assert renderer.is_configured("t", "text") and not renderer.is_configured("generic", "text")
