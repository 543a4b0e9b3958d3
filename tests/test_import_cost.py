"""`import wecom_bot` stays light: heavy dependencies load on first use (issue 27)."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("httpx", "click", "rich", "pydantic_core", "typer")


def loaded_after(code: str) -> set[str]:
    """Which of the heavy modules a fresh interpreter holds after running ``code``."""
    probe = code + f"\nimport sys\nprint(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    return set(out.split())


def test_import_loads_no_heavy_dependency() -> None:
    assert loaded_after("import wecom_bot") == set()


def test_the_send_command_module_loads_neither_httpx_nor_asyncio() -> None:
    code = "import wecom_bot.cli.send\nimport sys\nassert 'asyncio' not in sys.modules"
    assert "httpx" not in loaded_after(code)


def test_a_message_model_does_not_load_httpx() -> None:
    loaded = loaded_after("from wecom_bot import TextMessage\nTextMessage(content='x')")
    assert "httpx" not in loaded
    assert "pydantic_core" in loaded


def test_a_client_loads_httpx_when_built() -> None:
    code = "from wecom_bot import Bot\nimport sys\nassert 'httpx' not in sys.modules\nBot('k' * 36)"
    assert "httpx" in loaded_after(code)


def test_public_names_resolve_and_unknown_names_raise() -> None:
    import wecom_bot

    for name in wecom_bot.__all__:
        assert getattr(wecom_bot, name) is not None
    try:
        wecom_bot.NoSuchThing  # noqa: B018
    except AttributeError as exc:
        assert "NoSuchThing" in str(exc)
    else:
        raise AssertionError("an unknown name must raise AttributeError")
