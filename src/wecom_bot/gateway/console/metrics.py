"""The console's own metrics: what operators do with dead letters."""

from __future__ import annotations

from typing import Any

__all__ = ["ConsoleMetrics"]


class ConsoleMetrics:
    """Counters of operators' actions on dead letters, in the gateway's registry."""

    def __init__(self, registry: Any) -> None:
        from prometheus_client import Counter

        self.requeued = Counter(
            "wecom_bot_dead_letters_requeued",
            "Dead letters sent again by an operator",
            ["bot"],
            registry=registry,
        )
        self.discarded = Counter(
            "wecom_bot_dead_letters_discarded",
            "Dead letters discarded by an operator",
            ["bot"],
            registry=registry,
        )
