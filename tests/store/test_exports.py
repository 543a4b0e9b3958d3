"""The store package exports its public surface with one sorted ``__all__``."""

from __future__ import annotations

import wecom_bot.store as store
from wecom_bot.store import base


def test_all_is_sorted_and_resolvable() -> None:
    assert store.__all__ == sorted(store.__all__)
    for name in store.__all__:
        assert hasattr(store, name), name


def test_every_public_name_of_the_interface_is_exported() -> None:
    public = {
        name
        for name, value in vars(base).items()
        if not name.startswith("_")
        and getattr(value, "__module__", None) == base.__name__
        and isinstance(value, type)
    }
    assert public <= set(store.__all__)
