"""A scripted stand-in for the WeCom API: answers what each test queues, records each request."""

from __future__ import annotations

import asyncio
import json
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


@dataclass
class Answer:
    """One scripted answer: a JSON body with a status, optionally after a delay."""

    body: Any = field(default_factory=lambda: {"errcode": 0, "errmsg": "ok"})
    status: int = 200
    delay: float = 0.0
    raw: bytes | None = None


@dataclass
class Received:
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    form: dict[str, tuple[str, bytes]] = field(default_factory=dict)

    def json(self) -> Any:
        return json.loads(self.body)


class ScriptedAPI:
    """An ASGI app; queue answers with :meth:`then`, read :attr:`received` afterwards."""

    def __init__(self) -> None:
        self.answers: deque[Answer] = deque()
        self.received: list[Received] = []
        self.app = Starlette(
            routes=[
                Route("/cgi-bin/webhook/send", self._handle, methods=["POST"]),
                Route("/cgi-bin/webhook/upload_media", self._handle, methods=["POST"]),
            ]
        )

    def then(self, *answers: Answer) -> ScriptedAPI:
        self.answers.extend(answers)
        return self

    async def _handle(self, request: Request) -> Response:
        body = await request.body()
        form: dict[str, tuple[str, bytes]] = {}
        if request.headers.get("content-type", "").startswith("multipart/"):
            async with request.form() as data:
                for name, value in data.items():
                    if hasattr(value, "read"):
                        form[name] = (value.filename or "", await value.read())
        self.received.append(
            Received(
                path=request.url.path,
                query=dict(request.query_params),
                headers=dict(request.headers),
                body=body,
                form=form,
            )
        )
        answer = self.answers.popleft() if self.answers else Answer()
        if answer.delay:
            await asyncio.sleep(answer.delay)
        if answer.raw is not None:
            return Response(answer.raw, status_code=answer.status)
        return JSONResponse(answer.body, status_code=answer.status)
