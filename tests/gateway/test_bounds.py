"""Slow and greedy clients against ``wecom-bot gateway`` run as a user runs it.

The attacks: connections that never finish their request head (slow loris), bodies that
trickle, one address opening hundreds of connections, and a 100 MB body to the console API.
Each is cut off within its bound while ``/healthz`` keeps answering within a second, and the
process's memory does not follow the body.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.emulator.conftest import Emu, new_key, running
from tests.gateway.harness import GatewayProcess, gateway_config, write_config
from tests.gateway.test_render_limits import Prober
from tests.redis_server import free_port
from wecom_bot.emulator import EmulatorSettings

HEADER_TIMEOUT = 1.0
BODY_TIMEOUT = 2.0
PER_CLIENT = 40
MiB = 1024 * 1024
INGEST_CAP = 8 * MiB  # an ingest path reads a body up to this much before refusing it


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    with running(EmulatorSettings(rate=None)) as emu:
        yield from _gateway(emu, tmp_path_factory.mktemp("bounds"))


def _gateway(emu: Emu, tmp: Path) -> Iterator[GatewayProcess]:
    config = gateway_config(
        emu.url,
        new_key(),
        "memory://",
        max_body_bytes=INGEST_CAP,
        server={
            "header_timeout": HEADER_TIMEOUT,
            "body_timeout": BODY_TIMEOUT,
            "max_connections_per_client": PER_CLIENT,
        },
    )
    process = GatewayProcess(write_config(tmp / "gw.yaml", config), free_port())
    process.start()
    try:
        yield process
    finally:
        process.stop()


def connect(gateway: GatewayProcess, source: str = "127.0.0.1") -> socket.socket:
    sock = socket.create_connection(
        ("127.0.0.1", gateway.port), timeout=10, source_address=(source, 0)
    )
    return sock


def closed_within(sock: socket.socket, seconds: float) -> bytes | None:
    """What the server sent before closing, or None if it kept the connection open."""
    sock.settimeout(0.2)
    received = b""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            continue
        except ConnectionResetError:
            return received
        if not chunk:
            return received
        received += chunk
    return None


def drain(sock: socket.socket, seconds: float = 2.0) -> bytes:
    """Whatever the server still sends, until it closes or ``seconds`` pass."""
    return closed_within(sock, seconds) or b""


def rss(gateway: GatewayProcess, field: str = "VmRSS") -> int:
    assert gateway.proc is not None
    for line in Path(f"/proc/{gateway.proc.pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise AssertionError(field)


def test_slow_loris_connections_are_cut_off_and_probes_answer(gateway: GatewayProcess) -> None:
    sources = [f"127.0.0.{i}" for i in range(2, 7)]
    with Prober(gateway.url) as prober:
        socks = []
        for source in sources:
            for _ in range(PER_CLIENT - 5):
                sock = connect(gateway, source)
                sock.sendall(b"POST /alertmanager HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: a")
                socks.append(sock)
        idle = [connect(gateway, "127.0.0.8") for _ in range(10)]  # not even a request line
        opened = time.monotonic()
        # Keep trickling one header byte at a time: each byte must not extend the deadline.
        for _ in range(5):
            time.sleep(0.2)
            for sock in socks:
                try:
                    sock.sendall(b"a")
                except OSError:
                    pass
        results = [closed_within(sock, HEADER_TIMEOUT + 3) for sock in socks + idle]
        cut_after = time.monotonic() - opened
        for sock in socks + idle:
            sock.close()
    assert all(result is not None for result in results), "a slow connection was kept open"
    assert cut_after < HEADER_TIMEOUT + 3.5
    assert prober.count >= 5 and not prober.failures, prober.failures
    assert prober.slowest < 1.0, f"/healthz took {prober.slowest:.2f} s"


@pytest.mark.parametrize("path", ["/alertmanager", "/api/v1/playground/render", "/-/reload"])
def test_a_trickled_body_gets_408(gateway: GatewayProcess, path: str) -> None:
    sock = connect(gateway)
    sock.sendall(
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        "Content-Length: 1000\r\n\r\n{".encode()
    )
    started = time.monotonic()
    answer = b""
    for _ in range(int(BODY_TIMEOUT * 4) + 8):
        try:
            sock.sendall(b" ")
        except OSError:
            break
        sock.settimeout(0.5)
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            continue
        answer += chunk
        if not chunk or b"\r\n\r\n" in answer:
            break
    answer += drain(sock)  # the body may follow the head in another packet
    sock.close()
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b"server.body_timeout" in answer
    assert BODY_TIMEOUT - 0.2 < time.monotonic() - started < BODY_TIMEOUT + 3


def test_one_address_cannot_hold_every_connection(gateway: GatewayProcess) -> None:
    held = [connect(gateway, "127.0.0.9") for _ in range(PER_CLIENT)]
    try:
        extra = connect(gateway, "127.0.0.9")
        answer = closed_within(extra, 3)
        extra.close()
        assert answer is not None and answer.startswith(b"HTTP/1.1 503"), answer
        assert b"too many connections from this address" in answer
        started = time.monotonic()
        assert httpx.get(gateway.url + "/healthz", timeout=5).status_code == 200
        assert time.monotonic() - started < 1.0
    finally:
        for sock in held:
            sock.close()


def send_huge(gateway: GatewayProcess, path: str, *, chunked: bool, size: int) -> bytes:
    """Send a ``size``-byte JSON body to ``path``; returns the answer's head and body."""
    sock = connect(gateway)
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {size}"
    sock.sendall(
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"{framing}\r\n\r\n".encode()
    )
    block = b'{"payload":"' + b"x" * (MiB - 20) + b'"}'
    sent = 0
    sock.settimeout(0.0)
    answer = b""
    try:
        while sent < size:
            piece = block[: min(len(block), size - sent)]
            data = b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece
            sock.setblocking(True)
            sock.settimeout(5)
            sock.sendall(data)
            sent += len(piece)
            sock.setblocking(False)
            try:
                answer += sock.recv(65536)
            except BlockingIOError:
                continue
            if answer:
                break
    except OSError:
        pass  # the server answered and closed while we were still sending
    sock.setblocking(True)
    sock.settimeout(5)
    try:
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    except OSError:
        pass
    sock.close()
    return answer


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
@pytest.mark.parametrize(
    "path", ["/api/v1/playground/render", "/api/v1/config/reload", "/alertmanager"]
)
def test_a_100_mb_body_gets_413_and_memory_stays_flat(
    gateway: GatewayProcess, path: str, chunked: bool
) -> None:
    rss_before, peak_before = rss(gateway), rss(gateway, "VmHWM")
    answer = send_huge(gateway, path, chunked=chunked, size=100 * 1024 * 1024)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:300]
    assert b"max_api_body_bytes" in answer or b"max_body_bytes" in answer
    grown = rss(gateway) - rss_before
    peak = rss(gateway, "VmHWM") - max(peak_before, rss_before)
    # The API paths refuse past 1 MiB; an ingest path holds at most its cap of a chunked body.
    allowed = 20 * MiB + (INGEST_CAP if path == "/alertmanager" else 0)
    assert grown < allowed and peak < allowed, (grown, peak)
    assert httpx.get(gateway.url + "/healthz", timeout=5).status_code == 200
