"""``wecom-bot gateway check``: validate a config and render every route against samples."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from .config import load_config
from .runtime import build_runtime
from .samples import sample_notifications
from .templates import TemplateError


def check_config(path: str | Path) -> dict[str, Any]:
    """Load ``path``, build everything it describes, and render each route with each sample.

    Returns:
        A report: ``ok``, the bots (masked), routes, and per route/sample/bot the rendered
        parts with their byte sizes against the limit (and a preview of the content).

    Raises:
        ConfigError: the configuration itself is invalid (the message names the field).
    """
    config = load_config(path)
    runtime = build_runtime(config, store=None, metrics=None, clock=time.time)
    renders: list[dict[str, Any]] = []
    ok = True
    routes = [*runtime.router.routes, runtime.router.default_route]
    samples = sample_notifications()
    for route in [*routes, *runtime.webhook_routes.values()]:
        generic_route = route.name.startswith("webhook:")
        for sample in samples:
            if (sample.source == "generic") != generic_route:
                continue
            for bot in route.bots:
                msgtype = route.msgtype or config.bots[bot].msgtype
                item: dict[str, Any] = {
                    "route": route.name,
                    "sample": f"{sample.source}:{sample.status}",
                    "bot": bot,
                    "msgtype": msgtype,
                }
                try:
                    payloads = runtime.render(route, bot, sample)
                except TemplateError as exc:
                    ok = False
                    renders.append(
                        {**item, "ok": False, "parts": 0, "sizes": [], "error": str(exc)}
                    )
                    continue
                sizes = [_size(p) for p in payloads]
                first = payloads[0][msgtype]["content"] if payloads else ""
                renders.append(
                    {
                        **item,
                        "ok": True,
                        "parts": len(payloads),
                        "sizes": sizes,
                        "preview": first,
                        "skipped": not payloads,
                    }
                )
    masked = config.masked()
    return {
        "ok": ok,
        "bots": {
            name: bot.get("key") or bot.get("key_env") for name, bot in masked["bots"].items()
        },
        "routes": [r.name for r in routes],
        "renders": renders,
    }


def _size(payload: dict[str, Any]) -> tuple[int, int]:
    from ..limits import CONTENT_LIMITS, utf8_len

    msgtype = payload["msgtype"]
    return utf8_len(payload[msgtype]["content"]), CONTENT_LIMITS[msgtype]
