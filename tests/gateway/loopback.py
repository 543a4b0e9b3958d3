"""A loopback HTTP server that counts the requests it gets and answers what it is told: the
stand-in for hosts a gateway must (or must never) fetch from."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Answer:
    """What the server answers: a status, headers and a body."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Loopback:
    """A running server: its URL, the paths it was asked for, the answer it gives."""

    url: str
    answer: Answer
    paths: list[str] = field(default_factory=list)

    @property
    def requests(self) -> int:
        return len(self.paths)


@contextmanager
def loopback(answer: Answer | None = None) -> Iterator[Loopback]:
    """Serve on 127.0.0.1 and a free port for the block."""
    state = Loopback("", answer or Answer())
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            with lock:
                state.paths.append(self.path)
            self.send_response(state.answer.status)
            for name, value in state.answer.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(state.answer.body)))
            self.end_headers()
            self.wfile.write(state.answer.body)

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
