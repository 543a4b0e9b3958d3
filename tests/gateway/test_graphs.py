"""Alert graphs, piece by piece: the expression and its threshold, the allowlist, bounded
fetches against loopback servers, the drawing pool's deadline, the config and its check."""

from __future__ import annotations

import asyncio
import gzip
import json
import subprocess
import sys
import threading
import time
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from tests.gateway.loopback import Answer, loopback
from wecom_bot.errors import ConfigError
from wecom_bot.gateway.config import GraphsConfig, GraphSourceConfig, load_config
from wecom_bot.gateway.graphs.chart import ChartRequest, Series
from wecom_bot.gateway.graphs.drawing import DrawPool, GraphDrawError
from wecom_bot.gateway.graphs.prometheus import Window, query_range
from wecom_bot.gateway.graphs.promql import expression_of, split_threshold
from wecom_bot.gateway.graphs.sources import Allowlist, GraphFetchError, bounded_get

SECRET = "s3cret-token-value-1234567890"


@pytest.mark.parametrize(
    ("expr", "query", "op", "value"),
    [
        ("up == 0", "up", "==", 0.0),
        ("rate(x[5m]) > 0.9", "rate(x[5m])", ">", 0.9),
        ('0.9 < rate(x{a="b>c"}[5m])', 'rate(x{a="b>c"}[5m])', ">", 0.9),
        ("10 >= y", "y", "<=", 10.0),
        ("sum by (a) (x) >= bool 10", "sum by (a) (x)", ">=", 10.0),
        ("(x / y) * 100 > on(job) group_left 80", "(x / y) * 100", ">", 80.0),
        ('x{job=~"a|b"} != -1e3', 'x{job=~"a|b"}', "!=", -1000.0),
        ("(x > 0x10)", "x", ">", 16.0),
        ("x < 10 # a comment > 5", "x", "<", 10.0),
        ("x > y", "x", None, None),
        ("up == 0 and on() vector(1)", "up == 0 and on() vector(1)", None, None),
        ("histogram_quantile(0.9, rate(h[5m]))", "histogram_quantile(0.9, rate(h[5m]))", None,
         None),
    ],
)  # fmt: skip
def test_the_threshold_is_taken_from_the_top_level_comparison(
    expr: str, query: str, op: str | None, value: float | None
) -> None:
    found = split_threshold(expr)
    assert (found.query, found.op, found.threshold) == (query, op, value)
    assert found.full == expr


def test_the_expression_comes_from_g0_expr_only() -> None:
    assert expression_of("http://p:9090/graph?g0.expr=up+%3D%3D+0&g0.tab=1") == "up == 0"
    assert expression_of("http://p:9090/graph?g1.expr=up") is None
    assert expression_of("http://p:9090/graph?g0.expr=a&g0.expr=b") is None
    assert expression_of("http://p:9090/graph?g0.expr=" + "x" * 30_000) is None
    assert expression_of("") is None


ALLOWED = [GraphSourceConfig(url="http://prom:9090/prom",
                             external_urls=["https://prom.example.com"])]  # fmt: skip


@pytest.mark.parametrize(
    ("url", "relative"),
    [
        ("http://prom:9090/prom/graph?g0.expr=up", "/graph"),
        ("http://PROM:9090/prom/graph", "/graph"),
        ("https://prom.example.com/graph?g0.expr=up", "/graph"),
        ("https://prom.example.com:443/graph", "/graph"),
        ("http://prom:9090/prometheus/graph", None),  # a prefix of a segment
        ("http://prom:9091/prom/graph", None),  # another port
        ("https://prom:9090/prom/graph", None),  # another scheme
        ("http://user@prom:9090/prom/graph", None),  # credentials
        ("http://prom:9090/prom@evil:80/prom/graph", None),
        ("http://evil/prom?x=http://prom:9090/prom/graph", None),
        ("http://prom:9090/prom/../admin", None),
        ("http://prom:9090/prom/%2e%2e/admin", None),
        ("http://prom:9090/prom/a%2fb", None),
        ("http://prom:9090\\@evil/prom/graph", None),
        ("http://prom:9090/prom/gr aph", None),
        ("file:///etc/passwd", None),
        ("gopher://prom:9090/prom", None),
        ("http://prom:99999/prom", None),
        ("//prom:9090/prom/graph", None),
    ],
)
def test_only_urls_under_a_listed_entry_are_allowed(url: str, relative: str | None) -> None:
    found = Allowlist("prometheus", ALLOWED).match(url)
    assert (found.relative if found else None) == relative
    if found is not None:
        # the request goes to the configured address, whatever host spelling the link had
        assert found.address("/api/v1/query_range") == "http://prom:9090/prom/api/v1/query_range"


def _get(url: str, entry: GraphSourceConfig, **bounds: float) -> bytes:
    source = Allowlist("grafana", [entry]).match(url)
    assert source is not None

    async def run() -> bytes:
        async with httpx.AsyncClient(follow_redirects=False, trust_env=False) as client:
            return await bounded_get(
                client, source, source.address(), max_bytes=int(bounds.get("max_bytes", 1000)),
                timeout=bounds.get("timeout", 5.0),
            )  # fmt: skip

    return asyncio.run(run())


def test_a_redirect_is_not_followed() -> None:
    with loopback() as elsewhere, loopback(Answer(302)) as listed:
        listed.answer.headers["Location"] = f"{elsewhere.url}/x"
        with pytest.raises(GraphFetchError, match="HTTP 302"):
            _get(f"{listed.url}/a.png", GraphSourceConfig(url=listed.url))
    assert listed.requests == 1 and elsewhere.requests == 0


def test_an_answer_over_the_byte_bound_is_refused() -> None:
    with loopback(Answer(200, b"x" * 5000)) as server:
        with pytest.raises(GraphFetchError, match="over 1000 bytes"):
            _get(f"{server.url}/a.png", GraphSourceConfig(url=server.url))
        assert _get(f"{server.url}/a.png", GraphSourceConfig(url=server.url), max_bytes=5000)


def test_a_compressed_answer_is_refused_before_it_is_inflated() -> None:
    # Accept-Encoding: identity is asked for; a server that sends gzip anyway (here 64 MiB of
    # zeros in 64 KiB) must not be inflated: one read of it would decode to 64 MiB at once.
    bomb = gzip.compress(bytes(64 * 1024 * 1024), compresslevel=9)
    answer = Answer(200, bomb, {"Content-Encoding": "gzip", "Content-Type": "image/png"})
    with loopback(answer) as server:
        tracemalloc.start()
        try:
            with pytest.raises(GraphFetchError, match="Content-Encoding 'gzip'"):
                _get(f"{server.url}/a.png", GraphSourceConfig(url=server.url), max_bytes=10**6)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert server.requests == 1
    assert len(bomb) < 10**6 and peak < 4 * 10**6


def test_a_query_answer_that_is_not_a_matrix_is_named_in_a_short_reason() -> None:
    # A value the gateway cannot read is not echoed whole into the log line and the
    # playground's reason (the answer may be megabytes; float() quotes it all).
    value = "1e3\n" + "9" * 200_000 + " <@all>"
    series = [{"metric": {"job": "x"}, "values": [[1700000000, value]]}]
    answer = {"status": "success", "data": {"resultType": "matrix", "result": series}}
    body = json.dumps(answer).encode()
    config = GraphsConfig(prometheus=["http://127.0.0.1:1"])
    with loopback(Answer(200, body)) as server:
        source = Allowlist("prometheus", [GraphSourceConfig(url=server.url)]).match(
            f"{server.url}/graph?g0.expr=up"
        )
        assert source is not None

        async def run() -> None:
            async with httpx.AsyncClient(trust_env=False) as client:
                await query_range(client, source, "up", Window(0, 60, 15), config)

        with pytest.raises(GraphFetchError, match="not a query_range answer") as caught:
            asyncio.run(run())
        assert server.requests == 1
    assert len(str(caught.value)) < 300


@contextmanager
def _chunked_forever() -> Iterator[str]:
    """A server that sends a body without Content-Length, a chunk every 50 ms, for 30 s."""
    stop = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for _ in range(600):
                if stop.is_set():
                    break
                self.wfile.write(b"a\r\n0123456789\r\n")
                self.wfile.flush()
                time.sleep(0.05)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        stop.set()
        server.shutdown()
        server.server_close()


def test_a_trickling_answer_is_cut_at_the_deadline() -> None:
    with _chunked_forever() as url:
        with pytest.raises(GraphFetchError, match="did not answer within 0.5 s"):
            _get(f"{url}/a.png", GraphSourceConfig(url=url), timeout=0.5, max_bytes=10**6)


def test_credentials_come_from_the_environment_and_are_sent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GRAPH_TOKEN", SECRET)

    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            seen.append(self.headers.get("Authorization", ""))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        entry = GraphSourceConfig(url=url, bearer_token_env="GRAPH_TOKEN")
        assert _get(f"{url}/a.png", entry) == b"ok"
    finally:
        server.shutdown()
        server.server_close()
    assert seen == [f"Bearer {SECRET}"]


def _chart() -> ChartRequest:
    now = time.time()
    points = [(now - 600 + 10 * i, float(i % 7)) for i in range(61)]
    return ChartRequest(
        title="HighLoad instance=web-1", subtitle="load > 5", start=now - 600, end=now,
        timezone="Asia/Shanghai", series=[Series({"instance": "web-1"}, points, True)],
    )  # fmt: skip


def test_a_chart_past_its_deadline_is_dropped_and_its_worker_replaced() -> None:
    pool = DrawPool()

    async def run() -> tuple[str, bytes]:
        await pool.draw(_chart(), timeout=60)  # warm: the worker has imported matplotlib
        try:
            await pool.draw(_chart(), timeout=0.001)
        except GraphDrawError as exc:
            error = str(exc)
        else:
            error = ""
        return error, await pool.draw(_chart(), timeout=60)

    try:
        error, png = asyncio.run(run())
    finally:
        pool.close()
    assert "took longer than 0.001 s (killed)" in error
    assert png.startswith(b"\x89PNG")


def test_something_that_is_not_an_image_is_refused_by_the_pool() -> None:
    pool = DrawPool()
    try:
        with pytest.raises(GraphDrawError, match="not an image"):
            asyncio.run(pool.fit(b"<html>login</html>", timeout=60))
    finally:
        pool.close()


BASE = "bots: {ops: {key: abc}}\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("graphs: {prometheus: [http://p:9090], windw: 1h}", "did you mean 'window'"),
        ("graphs: {prometheus: [{url: http://p, passwrd_env: X}]}", "did you mean 'password_env'"),
        (f'graphs: {{prometheus: ["http://u:{SECRET}@p:9090"]}}', "must not hold credentials"),
        ("graphs: {prometheus: [{url: http://p, username: u}]}", "needs username and password_env"),
        ('graphs: {grafana: ["http://g?x=1"]}', "without query"),
        ("graphs: {routes: [critcal]}", "no route named 'critcal'"),
        ("graphs: {max_series: 500}", "max_series"),
    ],
)
def test_a_bad_graphs_section_is_explained(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        load_config(text=BASE + text)
    assert SECRET not in str(caught.value)


def test_check_reports_unset_credentials_and_a_missing_matplotlib(tmp_path: Path) -> None:
    path = tmp_path / "gw.yaml"
    path.write_text(
        BASE + "graphs: {prometheus: [{url: http://p:9090, bearer_token_env: NOT_SET_28}]}\n"
    )
    code = (
        "import json, sys; sys.modules['matplotlib'] = None\n"
        "from wecom_bot.gateway.check import check_config\n"
        f"r = check_config({str(path)!r}); print(json.dumps([r['unresolved_keys'], r['notes']]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    unresolved, notes = json.loads(out)
    assert "NOT_SET_28" in unresolved["graphs.prometheus[0].bearer_token_env"]
    assert any("matplotlib is not installed" in n and "[graphs]" in n for n in notes)
