"""The operators' console: ``/ui`` (page.py, static/) over the JSON API ``/api/v1`` (api.py).

It reads the delivery history that :mod:`wecom_bot.gateway.recording` writes.
"""

from ..recording import BotActivity, HistoryRecorder, errcode_of, state_of
from .metrics import ConsoleMetrics

__all__ = ["BotActivity", "ConsoleMetrics", "HistoryRecorder", "errcode_of", "state_of"]
