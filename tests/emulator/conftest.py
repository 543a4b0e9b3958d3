"""Fixtures: emulators served over real HTTP on 127.0.0.1, port 0."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.servers import serve
from wecom_bot.emulator import EmulatorSettings, create_app
from wecom_bot.masking import key_fingerprint


def new_key() -> str:
    """A fresh key shaped like a real one (a UUID), so every test has its own group."""
    return str(uuid.uuid4())


@dataclass
class Emu:
    """A running emulator: its base URL, an HTTP client and the app (for its state)."""

    url: str
    client: httpx.Client
    app: Any

    def send(self, key: str, payload: Any, **kwargs: Any) -> httpx.Response:
        return self.client.post("/cgi-bin/webhook/send", params={"key": key}, json=payload,
                                **kwargs)  # fmt: skip

    def send_raw(
        self, key: str | None, content: bytes, content_type: str | None = "application/json"
    ) -> httpx.Response:
        headers = {"Content-Type": content_type} if content_type else {}
        params = {"key": key} if key is not None else {}
        return self.client.post(
            "/cgi-bin/webhook/send", params=params, content=content, headers=headers
        )

    def upload(
        self, key: str, data: bytes, media_type: str = "file", filename: str = "a.txt"
    ) -> httpx.Response:
        return self.client.post(
            "/cgi-bin/webhook/upload_media",
            params={"key": key, "type": media_type},
            files={"media": (filename, data, "application/octet-stream")},
        )

    def media_id(self, key: str, data: bytes, media_type: str = "file") -> str:
        answer = self.upload(key, data, media_type, "v.amr" if media_type == "voice" else "a.txt")
        assert answer.json()["errcode"] == 0, answer.text
        media_id: str = answer.json()["media_id"]
        return media_id

    def entries(self, key: str) -> list[dict[str, Any]]:
        answer = self.client.get(f"/api/groups/{key_fingerprint(key)}/messages")
        assert answer.status_code == 200, answer.text
        messages: list[dict[str, Any]] = answer.json()["messages"]
        return messages

    def group(self, key: str) -> dict[str, Any]:
        answer = self.client.get(f"/api/groups/{key_fingerprint(key)}")
        assert answer.status_code == 200, answer.text
        group: dict[str, Any] = answer.json()
        return group


@contextmanager
def running(settings: EmulatorSettings | None = None, timeout: float = 10.0) -> Iterator[Emu]:
    """Serve a fresh emulator for the block."""
    app = create_app(settings or EmulatorSettings(rate=None))
    with serve(app) as url, httpx.Client(base_url=url, timeout=timeout) as client:
        yield Emu(url, client, app)


@pytest.fixture(scope="module")
def emu() -> Iterator[Emu]:
    """One emulator per test module (rate limit off); tests keep apart by using fresh keys."""
    with running() as emulator:
        yield emulator


@pytest.fixture
def key() -> str:
    return new_key()


@pytest.fixture
def make_emu() -> Callable[..., AbstractContextManager[Emu]]:
    """Build an emulator with particular settings: ``with make_emu(rate=...) as e:``."""

    def factory(**settings: Any) -> AbstractContextManager[Emu]:
        return running(EmulatorSettings(**settings))

    return factory


def errcode(answer: httpx.Response) -> int:
    """The errcode of a WeCom answer, after checking it is one (HTTP 200, JSON, headers)."""
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/json; charset=UTF-8"
    body = answer.json()
    code: int = body["errcode"]
    if code != 0:
        assert answer.headers["Error-Code"] == str(code)
        assert ", hint: [" in body["errmsg"] and f"query?e={code}" in body["errmsg"]
    return code


def errtext(answer: httpx.Response) -> str:
    """The errmsg text before the tail (what clients may look at)."""
    text: str = answer.json()["errmsg"].split(", hint: [", 1)[0]
    return text
