"""Storm delivery: 1,000 alerts to one key at once, in rate-limit windows.

WeCom accepts 20 messages per robot per 60 s and answers errcode 45009 past that. The window
is scaled down to 1 s on both sides (emulator ``--rate 20/1s``; client limiter 20 per 1.05 s,
the gateway's 5 % margin), and every time below is expressed in windows, so "2 windows"
means 2 minutes against WeCom. The same run compares three ways of sending the storm, each
to a fresh key of the same emulator process:

* **outbox + dispatcher** (what the gateway does): each alert enqueued on its own into an
  SQLite outbox while the dispatcher runs; a backlog that cannot drain within half a window
  (the default 30 s of 60 s) becomes digests that keep every alert;
* **naive**: one message per alert with ``Bot(retry=False)``, no limiter (what peers do);
* **Bot(rate_limit=...)**: one message per alert through the SDK's limiter, no digests.

An alert counts as delivered when its marker (``storm-0042``) appears in a message the
emulator accepted; "visible after" is when the first such message was received.

Run: ``.venv/bin/python -m bench.bench_storm``.
"""

from __future__ import annotations

import asyncio
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench._common import machine, table, today
from bench.bench_sdk import emulator_process, new_key
from wecom_bot import Bot, DeliveryError, MarkdownMessage, RetryPolicy
from wecom_bot.dispatcher import BotTarget, Dispatcher, DispatcherSettings, local_limiter
from wecom_bot.limits import ERRCODE_RATE_LIMITED
from wecom_bot.masking import key_fingerprint
from wecom_bot.store import NewMessage, open_store

WINDOW = 1.0
"""Seconds standing for WeCom's 60 s window."""
SCALE = WINDOW / 60.0
EMULATOR_RATE = f"20/{WINDOW:g}s"
CLIENT_RATE = f"20/{WINDOW * 1.05:g}s"
ALERTS = 1000
_MARKER = re.compile(r"storm-(\d{4})")


def alert_content(i: int) -> str:
    """A rendered alert like the gateway's default markdown template, marker on line one."""
    return (
        f'**<font color="warning">[FIRING]</font> HighCPU** storm-{i:04d}\n'
        f"> instance: node-{i % 97}:9100 · severity: warning\n"
        "> summary: CPU usage above 90% for 5 minutes"
    )


def scaled_retry() -> RetryPolicy:
    """The dispatcher's default retry policy with its times scaled to the window."""
    return RetryPolicy(
        max_attempts=10, base_delay=0.5 * SCALE, max_delay=30 * SCALE, rate_window=WINDOW
    )


@dataclass
class StormResult:
    """One way of sending the storm, as the emulator saw it.

    Attributes:
        method: how the storm was sent.
        alerts: alerts in the storm.
        delivered: alerts whose marker appears in an accepted message.
        messages: messages the emulator accepted.
        rejected_45009: answers with errcode 45009.
        last_visible_windows: windows from the first alert to the last delivered alert being
            visible (None when nothing was delivered).
        elapsed_windows: windows the sender was busy (until it returned or gave up).
        reported_ok: sends the sender itself considered successful (None when not applicable).
    """

    method: str
    alerts: int
    delivered: int
    messages: int
    rejected_45009: int
    last_visible_windows: float | None
    elapsed_windows: float
    reported_ok: int | None = None

    @property
    def delivered_pct(self) -> float:
        """Share of alerts delivered, in percent."""
        return 100.0 * self.delivered / self.alerts


def emulator_entries(base_url: str, key: str) -> list[dict[str, Any]]:
    """Every entry (accepted and rejected) the emulator recorded for ``key``, oldest first."""
    out: list[dict[str, Any]] = []
    since = 0
    with httpx.Client(base_url=base_url, timeout=30) as client:
        while True:
            answer = client.get(
                f"/api/groups/{key_fingerprint(key)}/messages",
                params={"since_id": since, "limit": 1000},
            )
            if answer.status_code == 404:
                return out
            answer.raise_for_status()
            page = answer.json()
            out.extend(page["messages"])
            if not page["more"]:
                return out
            since = page["next_since_id"]


def summarise(
    method: str,
    base_url: str,
    key: str,
    alerts: int,
    started: float,
    elapsed: float,
    reported_ok: int | None = None,
) -> StormResult:
    """Read back what the emulator received for ``key`` and score it."""
    entries = emulator_entries(base_url, key)
    accepted = [e for e in entries if e["status"] == "accepted"]
    first_seen: dict[int, float] = {}
    for entry in accepted:
        content = str(entry["payload"].get(entry["msgtype"], {}).get("content", ""))
        for match in _MARKER.finditer(content):
            first_seen.setdefault(int(match.group(1)), entry["received_at"])
    last = max(first_seen.values(), default=None)
    return StormResult(
        method=method,
        alerts=alerts,
        delivered=len(first_seen.keys() & set(range(alerts))),
        messages=len(accepted),
        rejected_45009=sum(1 for e in entries if e["errcode"] == ERRCODE_RATE_LIMITED),
        last_visible_windows=None if last is None else (last - started) / WINDOW,
        elapsed_windows=elapsed / WINDOW,
        reported_ok=reported_ok,
    )


async def _dispatch_storm(base_url: str, key: str, alerts: int, deadline_windows: float) -> float:
    """Enqueue the storm one alert at a time while the dispatcher drains; returns its start."""
    with tempfile.TemporaryDirectory(prefix="wecom-storm-") as tmp:
        store = open_store(f"sqlite:///{Path(tmp) / 'outbox.db'}")
        dispatcher = Dispatcher(
            store,
            {"ops": BotTarget(name="ops", keys=(key,), base_url=base_url, timeout=2.0)},
            limiter=local_limiter(CLIENT_RATE),
            retry=scaled_retry(),
            settings=DispatcherSettings(
                coalesce_after=30 * SCALE, idle_poll=SCALE, lease_seconds=60.0
            ),
        )
        await dispatcher.start()
        started = time.time()
        try:
            for i in range(alerts):
                payload = {"msgtype": "markdown", "markdown": {"content": alert_content(i)}}
                await store.enqueue([NewMessage(bot="ops", payload=payload)])
                dispatcher.notify("ops")
            limit = started + deadline_windows * WINDOW
            while await store.pending_count("ops") and time.time() < limit:
                await asyncio.sleep(0.02)
        finally:
            await dispatcher.stop()
            await store.close()
        return started


def storm_dispatcher(
    base_url: str, alerts: int, deadline_windows: float = 30, label: str = ""
) -> StormResult:
    """The gateway's way: outbox + dispatcher with digests."""
    key = new_key()
    started = asyncio.run(_dispatch_storm(base_url, key, alerts, deadline_windows))
    elapsed = time.time() - started
    return summarise(
        f"outbox (SQLite) + dispatcher, limiter 20/1.05 windows, digests{label}",
        base_url, key, alerts, started, elapsed,
    )  # fmt: skip


def _one_per_alert(base_url: str, alerts: int, label: str, **bot_options: Any) -> StormResult:
    """Send one message per alert with a :class:`Bot` built with ``bot_options``."""
    key = new_key()
    ok = 0
    started = time.time()
    with Bot(key, base_url=base_url, **bot_options) as bot:
        for i in range(alerts):
            try:
                bot.send(MarkdownMessage(content=alert_content(i)))
                ok += 1
            except DeliveryError:
                pass
    elapsed = time.time() - started
    return summarise(label, base_url, key, alerts, started, elapsed, reported_ok=ok)


def storm_naive(base_url: str, alerts: int) -> StormResult:
    """One message per alert, no limiter, no retry: what peers do."""
    return _one_per_alert(
        base_url, alerts, "naive: Bot(retry=False), one message per alert, no limiter",
        retry=False,
    )  # fmt: skip


def storm_limited_bot(base_url: str, alerts: int) -> StormResult:
    """One message per alert through the SDK's limiter (no digests)."""
    return _one_per_alert(
        base_url, alerts, "Bot(rate_limit=20/1.05 windows), one message per alert",
        rate_limit=CLIENT_RATE, retry=scaled_retry(),
    )  # fmt: skip


def run(alerts: int = ALERTS, repeats: int = 3, limited_bot: bool = True) -> list[StormResult]:
    """Send the storm the three ways against one emulator process (20 per window).

    Args:
        alerts: alerts in the storm.
        repeats: runs of the dispatcher storm (each to a fresh key): a scaled window leaves
            50 ms of margin where WeCom's leaves 3 s, so scheduling jitter shows; every run
            is reported.
        limited_bot: include the ``Bot(rate_limit=...)`` run, which takes alerts/20 windows.
    """
    with emulator_process(rate=EMULATOR_RATE) as emu:
        results = [
            storm_dispatcher(
                emu.url, alerts, label=f" (run {i + 1}/{repeats})" if repeats > 1 else ""
            )
            for i in range(repeats)
        ]
        results.append(storm_naive(emu.url, alerts))
        if limited_bot:
            results.append(storm_limited_bot(emu.url, alerts))
    return results


def goals(result: StormResult) -> dict[str, bool]:
    """The storm goals of issue 4, each met or not."""
    return {
        "100 % delivered": result.delivered == result.alerts,
        "zero 45009": result.rejected_45009 == 0,
        "every alert visible within 2 windows": (
            result.last_visible_windows is not None and result.last_visible_windows <= 2.0
        ),
        "<= 40 messages": result.messages <= 40,
    }


def report(results: list[StormResult]) -> str:
    """The Markdown section of :func:`run`'s figures."""
    rows = []
    for r in results:
        last = "—" if r.last_visible_windows is None else f"{r.last_visible_windows:.2f}"
        rows.append(
            [
                r.method,
                f"{r.delivered}/{r.alerts} ({r.delivered_pct:.1f} %)",
                str(r.messages),
                str(r.rejected_45009),
                last,
                f"{r.elapsed_windows:.2f}",
                "—" if r.reported_ok is None else str(r.reported_ok),
            ]
        )
    return (
        f"{results[0].alerts} alerts to one key at once; window = {WINDOW:g} s standing for "
        f"60 s (emulator {EMULATOR_RATE}, client {CLIENT_RATE}); coalesce after half a "
        "window. Times in windows from the first alert.\n\n"
        + table(
            [
                "method",
                "alerts delivered",
                "messages used",
                "45009 answers",
                "last alert visible after (windows)",
                "sender busy (windows)",
                "sender reported sent",
            ],
            rows,
        )
    )


def main() -> str:
    """Run and return the Markdown report."""
    return f"Measured {today()} on {machine()}.\n\n" + report(run())


if __name__ == "__main__":
    print(main())
