"""docs/templates.md is generated from the renderer and stays in step with it."""

from __future__ import annotations

from pathlib import Path

from wecom_bot.gateway.templates import reference

DOC = Path(__file__).parents[2] / "docs" / "templates.md"
REGENERATE = "run: python -m wecom_bot.gateway.templates.reference > docs/templates.md"


def test_every_name_a_template_sees_is_described_and_nothing_else() -> None:
    assert set(reference.VARIABLES) == reference.variable_names()
    assert set(reference.ALERT_FIELDS) == reference.alert_field_names()
    assert set(reference.NOTIFICATION_FIELDS) == reference.notification_field_names()
    assert set(reference.FILTERS) == reference.filter_names()


def test_the_page_is_what_the_code_generates() -> None:
    assert DOC.read_text("utf-8") == reference.render_reference(), REGENERATE


def test_the_escaping_table_shows_the_look_alikes() -> None:
    page = reference.render_reference()
    assert "| `@all` | `＠all` | `＠all` | `＠all` |" in page
    assert "| `<font>` | `＜font＞` |" in page


def test_the_whitespace_section_states_the_environment_and_shows_the_lost_newline() -> None:
    page = reference.render_reference()
    assert "`trim_blocks` (True)" in page and "`lstrip_blocks` (True)" in page
    # rendered, not written by hand: `{% endif %}` at a line's end glues the next line on ...
    assert "**High memory usage** 🔥状态：firing\n" in page
    # ... and `{% endif +%}` keeps it
    assert "**High memory usage** 🔥\n状态：firing\n" in page
    assert "区域： us-1 eu-1\n" in page and "状态：\n  告警中\n" in page
