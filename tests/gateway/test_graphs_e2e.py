"""Alert graphs end to end on real servers: a real Prometheus (scraping itself, a rule that
fires), a real Alertmanager, the gateway and the emulator; loopback servers stand in for the
hosts the gateway must never fetch from, and for Grafana's image renderer."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.emulator.conftest import Emu, new_key, running
from tests.gateway.alertmanager import alertmanagers
from tests.gateway.harness import (
    content_of,
    emulator_contents,
    gateway_config,
    one_alert,
    running_gateway,
    wait_for,
)
from tests.gateway.loopback import Answer, loopback
from tests.gateway.prometheus import prometheuses
from wecom_bot.emulator import EmulatorSettings
from wecom_bot.emulator.ratelimit import RateSpec
from wecom_bot.gateway.samples import grafana_firing
from wecom_bot.limits import IMAGE_MAX_BYTES

pytestmark = pytest.mark.alertmanager


@pytest.fixture(scope="module")
def emu() -> Iterator[Emu]:
    with running(EmulatorSettings(rate=RateSpec(20, 1.0))) as emulator:
        yield emulator


def _images(emu: Emu, key: str) -> list[bytes]:
    return [
        base64.b64decode(p["image"]["base64"])
        for p in emulator_contents(emu, key)
        if p["msgtype"] == "image"
    ]


def _graphs(running: Any) -> Any:
    return running.app.state.gateway.runtime.graphs


def _config(emu: Emu, key: str, tmp_path: Path, burst: int = 3, **graphs: Any) -> Any:
    return gateway_config(
        emu.url, key, f"sqlite:///{tmp_path / 'o.db'}", routes=[], graphs=graphs,
        storm_burst=burst,
    )  # fmt: skip


def test_a_prometheus_alert_arrives_as_its_text_then_its_chart(
    emu: Emu, tmp_path: Path
) -> None:
    key = new_key()
    with (
        alertmanagers(tmp_path) as start_am,
        prometheuses(tmp_path) as start_prometheus,
    ):
        # The gateway needs Prometheus' address, Prometheus needs Alertmanager's, and
        # Alertmanager the gateway's: the gateway starts first, told where Prometheus will be.
        from tests.redis_server import free_port

        port = free_port()
        prom_url = f"http://127.0.0.1:{port}"
        # A one-minute window at a 1 s step: the few seconds Prometheus has lived, point by point.
        config = _config(emu, key, tmp_path, prometheus=[prom_url], window="60s")
        with running_gateway(config) as gw:
            am = start_am(f"{gw.url}/alertmanager")
            started = start_prometheus(am, port=port)
            assert started == prom_url
            wait_for(lambda: len(_images(emu, key)) >= 1, timeout=60, what="the chart")
            payloads = emulator_contents(emu, key)
            kinds = [p["msgtype"] for p in payloads]
            first_text = next(i for i, p in enumerate(payloads) if "ScrapeTooBig" in content_of(p))
            assert kinds.index("image") > first_text  # the text, then its chart
            [png] = _images(emu, key)[:1]
            (tmp_path / "chart.png").write_bytes(png)
            assert len(png) <= IMAGE_MAX_BYTES
            image = Image.open(io.BytesIO(png))
            assert image.format == "PNG" and image.width >= 600
            graphs = _graphs(gw)
            request, (address, query, window) = graphs.last_request, graphs.last_query
            assert address == f"{prom_url}/api/v1/query_range"
            assert query == "scrape_samples_scraped"  # the left side, not the filter
            assert request.threshold.op == ">" and request.threshold.value == 10
            highlighted = [s for s in request.series if s.highlighted]
            assert len(highlighted) == 1
            assert highlighted[0].labels["instance"] == f"127.0.0.1:{port}"
            # The values drawn are the values Prometheus returns for the same query.
            direct = httpx.get(address, params={
                "query": query, "start": f"{window.start:.3f}", "end": f"{window.end:.3f}",
                "step": f"{window.step:g}",
            }).json()["data"]["result"]  # fmt: skip
            [same] = [r for r in direct if r["metric"]["instance"] == f"127.0.0.1:{port}"]
            expected = [(float(t), float(v)) for t, v in same["values"]]
            assert list(highlighted[0].points) == expected
            assert len(expected) >= 2
            assert graphs.outcomes["queued"] == 1
            assert gw.metric("wecom_bot_graphs_total") >= 1


def test_generator_urls_outside_the_allowlist_are_never_fetched(
    emu: Emu, tmp_path: Path
) -> None:
    key = new_key()
    with loopback() as outside, loopback(Answer(302)) as redirecting:
        redirecting.answer.headers["Location"] = f"{outside.url}/api/v1/query_range"
        allowed = f"{redirecting.url}/prom"
        host_port = outside.url.removeprefix("http://")
        bad = [
            f"{outside.url}/graph?g0.expr=up",  # not listed
            f"http://user:pw@{host_port}/graph?g0.expr=up",  # credentials
            f"{allowed}@{host_port}/graph?g0.expr=up",  # the listed URL as userinfo
            f"{redirecting.url}/other/graph?g0.expr=up",  # listed host, other path
            f"{redirecting.url}/prometheus/graph?g0.expr=up",  # a prefix, not a segment
            f"{allowed}/../graph?g0.expr=up",  # climbing out of the path
            f"https://{redirecting.url.removeprefix('http://')}/prom/graph?g0.expr=up",
            f"{outside.url}/prom/graph?g0.expr=up",  # the listed path on another port
            f"http://localhost:{host_port.split(':')[1]}/graph?g0.expr=up",
            f"{outside.url}\\@{redirecting.url.removeprefix('http://')}/prom/graph?g0.expr=up",
        ]
        # A burst that the test's dozen alerts never fill: each graph is tried at rest.
        config = _config(emu, key, tmp_path, burst=50, prometheus=[allowed])
        with running_gateway(config) as gw:
            for i, url in enumerate(bad):
                payload = one_alert(f"Outside{i}")
                payload["alerts"][0]["generatorURL"] = url
                assert gw.post("/alertmanager", payload).status_code == 200
                # one at a time: the bot stays at rest, so every graph gets as far as it can
                wait_for(lambda i=i: _graphs(gw).outcomes["skipped"] == i + 1,
                         what=f"generatorURL {i} skipped")  # fmt: skip
            # The listed one is queried; its answer is a redirect, which is not followed.
            payload = one_alert("Redirected")
            payload["alerts"][0]["generatorURL"] = f"{allowed}/graph?g0.expr=up"
            assert gw.post("/alertmanager", payload).status_code == 200
            wait_for(lambda: _graphs(gw).outcomes["failed"] == 1, what="the redirect refused")
            wait_for(lambda: len(emulator_contents(emu, key)) == len(bad) + 1, what="texts")
            assert gw.metric("wecom_bot_graphs_total") == len(bad) + 1  # skipped, failed
        assert outside.requests == 0
        assert redirecting.paths and all(
            p.startswith("/prom/api/v1/query_range?") for p in redirecting.paths
        )
        assert redirecting.requests == 1
        assert _images(emu, key) == []


def _noise_png(width: int, height: int) -> bytes:
    import os

    image = Image.frombytes("RGB", (width, height), os.urandom(width * height * 3))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


@pytest.mark.parametrize("size", ["small", "over 2 MiB"])
def test_a_grafana_image_is_passed_through(emu: Emu, tmp_path: Path, size: str) -> None:
    key = new_key()
    png = _noise_png(200, 120) if size == "small" else _noise_png(1100, 1000)
    assert (len(png) > IMAGE_MAX_BYTES) == (size != "small")
    with loopback(Answer(200, png, {"Content-Type": "image/png"})) as grafana:
        config = _config(emu, key, tmp_path, grafana=[f"{grafana.url}/grafana"])
        with running_gateway(config) as gw:
            payload = grafana_firing()
            for alert in payload["alerts"]:
                alert["imageURL"] = f"{grafana.url}/grafana/public/img/attachments/a.png"
            assert gw.post("/grafana", payload).status_code == 200
            wait_for(lambda: len(_images(emu, key)) == 1, timeout=30, what="the image")
            kinds = [p["msgtype"] for p in emulator_contents(emu, key)]
            assert kinds[-1] == "image" and kinds.index("image") > 0
        [got] = _images(emu, key)
        assert grafana.paths == ["/grafana/public/img/attachments/a.png"]
        assert len(got) <= IMAGE_MAX_BYTES
        decoded = Image.open(io.BytesIO(got))
        decoded.load()
        if size == "small":
            assert hashlib.md5(got).hexdigest() == hashlib.md5(png).hexdigest()  # as it was
        else:
            assert decoded.format == "JPEG" and decoded.width >= 600  # re-encoded to fit


@pytest.mark.parametrize("in_storms", [False, True])
def test_a_storm_of_1000_alerts_sends_no_graph_unless_configured(
    emu: Emu, tmp_path: Path, in_storms: bool
) -> None:
    key = new_key()
    with prometheuses(tmp_path) as start_prometheus:
        prom_url = start_prometheus()
        wait_for(lambda: _has_data(prom_url), what="prometheus' first scrape")
        config = _config(emu, key, tmp_path, prometheus=[prom_url], in_storms=in_storms)
        with running_gateway(config) as gw:
            started = time.monotonic()
            now = dt.datetime.now(dt.UTC).isoformat()
            for i in range(1000):
                payload = one_alert(f"Storm{i}")
                payload["alerts"][0]["generatorURL"] = f"{prom_url}/graph?g0.expr=up+%3D%3D+1"
                payload["alerts"][0]["labels"]["instance"] = "x"
                payload["alerts"][0]["startsAt"] = now
                assert gw.post("/alertmanager", payload).status_code == 200
            wait_for(lambda: _settled(gw), timeout=120, what="every alert delivered")
            wait_for(lambda: _graphs(gw).in_flight == 0, timeout=60, what="graphs settled")
            elapsed = time.monotonic() - started
            images = len(_images(emu, key))
            outcomes = dict(_graphs(gw).outcomes)
        print(f"storm of 1000 (in_storms={in_storms}): {images} graph(s) in {elapsed:.1f} s; "
              f"outcomes {outcomes}")  # fmt: skip
        if in_storms:
            assert 1 <= images <= elapsed / 1.0 + 1  # at most one per rate window (1 s)
        else:
            assert images == 0, outcomes
            assert outcomes.get("storm", 0) + outcomes.get("busy", 0) >= 1


def _has_data(prom_url: str) -> bool:
    answer = httpx.get(f"{prom_url}/api/v1/query", params={"query": "up"}, timeout=5)
    return bool(answer.json()["data"]["result"])


def _settled(gw: Any) -> bool:
    """Every notification rendered and queued, and every message delivered."""
    return (
        gw.metric("wecom_bot_messages_queued_total") >= 1000
        and gw.metric("wecom_bot_queue_depth") == 0
        and gw.metric("wecom_bot_inbox_depth") == 0
    )
