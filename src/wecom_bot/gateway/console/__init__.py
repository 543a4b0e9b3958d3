"""The operators' console: ``/ui`` (page.py, static/) over the JSON API ``/api/v1`` (api.py),
and the delivery history it shows (history.py)."""

from .history import BotActivity, ConsoleMetrics, HistoryRecorder, errcode_of, state_of

__all__ = ["BotActivity", "ConsoleMetrics", "HistoryRecorder", "errcode_of", "state_of"]
