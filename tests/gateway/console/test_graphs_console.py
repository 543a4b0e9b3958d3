"""The console and alert graphs: the playground previews a payload's graph against a real
Prometheus (through the same allowlist as real alerts), and the history shows the image a
notification was followed by."""

from __future__ import annotations

import base64
import datetime as dt
import io
from pathlib import Path
from typing import Any

import httpx
from PIL import Image

from tests.emulator.conftest import Emu
from tests.gateway.console.support import Console, canary_key, console_config, secrets_of
from tests.gateway.harness import one_alert, running_gateway, wait_for
from tests.gateway.loopback import loopback
from tests.gateway.prometheus import prometheuses


def _payload(generator_url: str, port: int) -> dict[str, Any]:
    payload = one_alert("ScrapeTooBig")
    alert = payload["alerts"][0]
    alert["generatorURL"] = generator_url
    alert["labels"].update(instance=f"127.0.0.1:{port}", job="prometheus")
    alert["startsAt"] = dt.datetime.now(dt.UTC).isoformat()
    return payload


def test_the_playground_previews_a_graph_and_the_history_shows_it(
    emu: Emu, tmp_path: Path
) -> None:
    key = canary_key()
    with prometheuses(tmp_path) as start, loopback() as outside:
        prom = start()
        port = int(prom.rsplit(":", 1)[1])
        wait_for(
            lambda: httpx.get(f"{prom}/api/v1/query", params={"query": "up"}).json()["data"][
                "result"
            ],
            what="prometheus' first scrape",
        )
        config = console_config(
            emu.url, key, "memory://", graphs={"prometheus": [prom], "window": "60s"},
            routes=[],
        )  # fmt: skip
        with running_gateway(config) as gw:
            console = Console(gw, secrets_of(key))
            expr = "scrape_samples_scraped%20%3E%2010"
            body = {"source": "alertmanager",
                    "payload": _payload(f"{prom}/graph?g0.expr={expr}", port)}  # fmt: skip
            answer = console.post("/api/v1/playground/graph", body)
            assert answer.status_code == 200, answer.text
            data = answer.json()
            assert data["from"] == "graphs.prometheus[0]"
            assert data["chart"]["threshold"] == {"op": ">", "value": 10.0}
            assert [s["highlighted"] for s in data["chart"]["series"]] == [True]
            assert '<img class="wb-image-img" src="data:image/png;base64,' in data["html"]
            src = data["html"].split('src="data:image/png;base64,', 1)[1].split('"', 1)[0]
            assert Image.open(io.BytesIO(base64.b64decode(src))).width >= 600

            # The playground is no way around the allowlist.
            body["payload"] = _payload(f"{outside.url}/graph?g0.expr=up", port)
            refused = console.post("/api/v1/playground/graph", body)
            assert refused.status_code == 422
            assert "not under graphs.prometheus (never queried)" in refused.json()["error"]
            assert outside.requests == 0

            # A real alert: its history entry lists the image after the text.
            sent = console.post("/alertmanager?wait=true",
                                _payload(f"{prom}/graph?g0.expr={expr}", port))  # fmt: skip
            assert sent.status_code == 200, sent.text
            nid = sent.json()["notification_id"]

            def image_record() -> dict[str, Any] | None:
                entry = console.json(f"/api/v1/history/{nid}")
                images = [d for d in entry["digests"] if d["kind"] == "image"]
                return images[0] if images and images[0]["status"] == "sent" else None

            wait_for(lambda: image_record() is not None, timeout=30, what="the graph sent")
            entry = console.json(f"/api/v1/history/{nid}")
            [text] = entry["messages"]
            [image] = [d for d in entry["digests"] if d["kind"] == "image"]
            assert image["id"] > text["record_id"]
            assert "wb-image-img" in image["html"]

            # Without graphs configured, the preview says so.
            off = console_config(emu.url, key, "memory://", routes=[])
        with running_gateway(off) as gw_off:
            answer = Console(gw_off, secrets_of(key)).post("/api/v1/playground/graph", body)
            assert answer.status_code == 409 and "graphs are off" in answer.json()["error"]
