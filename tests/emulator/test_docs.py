"""docs/emulator.md documents every inspection endpoint and every kind of fault."""

from __future__ import annotations

from pathlib import Path

from wecom_bot.emulator.faults import FaultKind
from wecom_bot.emulator.inspection import router

DOC = (Path(__file__).parents[2] / "docs" / "emulator.md").read_text("utf-8")


def test_every_inspection_endpoint_is_documented() -> None:
    for route in router.routes:
        for method in sorted(getattr(route, "methods", ()) or ()):
            if method == "HEAD":
                continue
            assert f"`{method} /api{route.path}" in DOC, f"{method} /api{route.path}"  # type: ignore[attr-defined]


def test_every_fault_kind_is_documented() -> None:
    for kind in FaultKind:
        assert f"| `{kind.value}` |" in DOC, kind
