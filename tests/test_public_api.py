"""The package's public surface: an explicit, sorted, complete ``__all__``."""

from __future__ import annotations

import inspect

import wecom_bot


def test_all_is_sorted_and_complete() -> None:
    assert wecom_bot.__all__ == sorted(wecom_bot.__all__)
    public = {
        name
        for name in dir(wecom_bot)
        if not name.startswith("_") and not inspect.ismodule(getattr(wecom_bot, name))
    }
    assert public == set(wecom_bot.__all__) - {"__version__"}


def test_every_exported_class_and_function_has_a_docstring() -> None:
    for name in wecom_bot.__all__:
        value = getattr(wecom_bot, name)
        if inspect.isclass(value) or inspect.isfunction(value):
            assert inspect.getdoc(value), f"{name} has no docstring"
