"""A loopback HTTP server that records the requests it gets and answers what it is told: the
stand-in for hosts a gateway must (or must never) fetch from or post to."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import NamedTuple


@dataclass
class Answer:
    """What the server answers: a status, headers and a body."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


class Request(NamedTuple):
    """One request the server got (its body is read and dropped)."""

    method: str
    path: str
    headers: dict[str, str]


@dataclass
class Loopback:
    """A running server: its URL, the requests it got, the answer it gives (replaceable)."""

    url: str
    answer: Answer
    seen: list[Request] = field(default_factory=list)

    @property
    def paths(self) -> list[str]:
        """The paths (with their query) asked for, in order."""
        return [r.path for r in self.seen]

    @property
    def requests(self) -> int:
        """How many requests arrived."""
        return len(self.seen)


@contextmanager
def loopback(answer: Answer | None = None) -> Iterator[Loopback]:
    """Serve on 127.0.0.1 and a free port for the block, any method."""
    state = Loopback("", answer or Answer())
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def _any(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with lock:
                state.seen.append(Request(self.command, self.path, dict(self.headers)))
            answer = state.answer
            self.send_response(answer.status)
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            self.wfile.write(answer.body)

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _any  # noqa: N815 (http.server's names)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
