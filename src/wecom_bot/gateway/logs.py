"""The gateway's log: a level, and one line per event as text or JSON (``--log-format``).

Each event the gateway logs is one line: a notification received (source, id, alerts,
routes), a message delivered, a retry, a dead letter. Their facts travel as ``extra`` fields
(``event``, ``source``, ``notification_id``, ``bot``, ...), which the JSON format writes as
keys of the line's object; the text format writes the message alone, which already says them.
Keys are masked in both (:class:`wecom_bot.masking.KeyRedactingFilter`).
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import IO, Final

from ..errors import ConfigError
from ..masking import KeyRedactingFilter

__all__ = ["LOG_FORMATS", "LOG_LEVELS", "JsonFormatter", "configure_logging"]

LOG_FORMATS: Final = ("text", "json")
LOG_LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR")

TEXT_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s %(message)s"

# The attributes every LogRecord has; anything else on a record came from ``extra``.
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``time``, ``level``, ``logger``, ``message`` and the extras."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, value in vars(record).items():
            if name not in _STANDARD and not name.startswith("_"):
                line[name] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def configure_logging(
    level: str = "INFO", fmt: str = "text", stream: IO[str] | None = None
) -> None:
    """Send every log record at ``level`` or above to ``stream`` (stderr), one line each.

    httpx's per-request lines are shown only at DEBUG: a delivery is already one line.

    Raises:
        ConfigError: an unknown level or format (the message lists the valid ones).
    """
    name = level.upper()
    if name not in LOG_LEVELS:
        raise ConfigError(f"--log-level must be one of {', '.join(LOG_LEVELS)}, got {level!r}")
    if fmt not in LOG_FORMATS:
        raise ConfigError(f"--log-format must be one of {', '.join(LOG_FORMATS)}, got {fmt!r}")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    handler.addFilter(KeyRedactingFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(name)
    quiet = logging.DEBUG if name == "DEBUG" else logging.WARNING
    for chatty in ("httpx", "httpcore"):
        logging.getLogger(chatty).setLevel(quiet)
