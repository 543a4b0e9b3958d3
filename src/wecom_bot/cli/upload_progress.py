"""An httpx client whose upload bodies report their progress (``send file``/``voice`` on a TTY).

A module of its own so that the other commands never import httpx.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx

from .. import limits
from .output import ProgressReporter

_UPLOAD_CHUNK = 64 * 1024


class _ProgressStream(httpx.SyncByteStream):
    """Hands the body to the network in small pieces and reports each one sent."""

    def __init__(self, inner: httpx.SyncByteStream, reporter: ProgressReporter) -> None:
        self._inner = inner
        self._reporter = reporter

    def __iter__(self) -> Iterator[bytes]:
        for chunk in iter(self._inner):
            for start in range(0, len(chunk), _UPLOAD_CHUNK):
                piece = chunk[start : start + _UPLOAD_CHUNK]
                yield piece
                self._reporter.advance(len(piece))

    def close(self) -> None:
        self._inner.close()


class _ProgressTransport(httpx.BaseTransport):
    """Wraps a transport so that upload bodies report their progress."""

    def __init__(self, inner: httpx.BaseTransport, reporter: ProgressReporter) -> None:
        self._inner = inner
        self._reporter = reporter

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        stream = request.stream
        if request.url.path.endswith(limits.UPLOAD_PATH) and isinstance(
            stream, httpx.SyncByteStream
        ):
            self._reporter.reset()
            request.stream = _ProgressStream(stream, self._reporter)
        return self._inner.handle_request(request)

    def close(self) -> None:
        self._inner.close()


def progress_client(timeout: float, reporter: ProgressReporter) -> httpx.Client:
    """A client that reports to ``reporter`` as it sends an upload body."""
    return httpx.Client(
        timeout=timeout, transport=_ProgressTransport(httpx.HTTPTransport(), reporter)
    )
