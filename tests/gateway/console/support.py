"""Helpers of the console tests: an authenticated client that checks every answer for secrets."""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.emulator.conftest import Emu
from tests.gateway.harness import Running, gateway_config
from wecom_bot.gateway.config import GatewayConfig
from wecom_bot.masking import key_fingerprint

USER, PASSWORD, TOKEN = "operator", "pa55-console-word", "t0ken-console-5ecret"
BASIC = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()


def canary_key() -> str:
    """A fresh key with a recognisable middle, so a leak is easy to spot in any response."""
    return f"5ec2e700-c0de-4bad-a55e-{uuid.uuid4().hex[:12]}"


def console_config(emu_url: str, key: str, store: str, **overrides: Any) -> GatewayConfig:
    """The harness config plus authentication (basic and bearer)."""
    return gateway_config(
        emu_url,
        key,
        store,
        auth={"username": USER, "password": PASSWORD, "bearer_token": TOKEN},
        **overrides,
    )


@dataclass
class Console:
    """An authenticated API client that checks every answer for secrets."""

    gw: Running
    secrets: list[str]
    seen: list[str] = field(default_factory=list)

    def _check(self, answer: httpx.Response) -> httpx.Response:
        text = answer.text
        for secret in self.secrets:
            assert secret not in text, f"{answer.request.url.path} leaked a secret"
        self.seen.append(answer.request.url.path)
        return answer

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self._check(self.gw.client.get(path, headers={"Authorization": BASIC}, **kwargs))

    def post(self, path: str, body: Any = None, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": BASIC, **kwargs.pop("headers", {})}
        return self._check(
            self.gw.client.post(
                path, json=body if body is not None else {}, headers=headers, **kwargs
            )  # fmt: skip
        )

    def metric(self, name: str) -> float:
        total = 0.0
        for line in self.get("/metrics").text.splitlines():
            if line.startswith((name + "{", name + " ")):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def json(self, path: str, **kwargs: Any) -> Any:
        answer = self.get(path, **kwargs)
        assert answer.status_code == 200, answer.text
        return answer.json()


def secrets_of(key: str) -> list[str]:
    """What must never appear: the key, its hidden middle, the password and the token."""
    return [key, key[4:-4], PASSWORD, TOKEN]


def add_fault(emu: Emu, key: str, errcode: int, count: int = 1) -> None:
    answer = emu.client.post(
        f"/api/groups/{key_fingerprint(key)}/faults",
        json={"kind": "errcode", "errcode": errcode, "count": count},
    )
    assert answer.status_code in (200, 201), answer.text
