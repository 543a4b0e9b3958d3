"""Helpers shared by the outbox tests."""

from __future__ import annotations

from wecom_bot.store import NewMessage

START = 1_700_000_000.0


class FakeClock:
    """A settable wall clock: tests move time instead of sleeping."""

    def __init__(self, start: float = START) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


def text(content: str, bot: str = "ops", notification_id: str | None = None) -> NewMessage:
    """A text message for ``bot``."""
    return NewMessage(
        bot=bot,
        payload={"msgtype": "text", "text": {"content": content}},
        notification_id=notification_id,
    )


def content(record_payload: dict[str, object]) -> str:
    """The text content of a stored text payload."""
    body = record_payload["text"]
    assert isinstance(body, dict)
    return str(body["content"])
