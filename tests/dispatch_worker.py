"""A dispatcher in its own process, for crash tests: ``python -m tests.dispatch_worker DB URL KEY``.

It drains the SQLite outbox to the emulator at 20/1.05s and exits when the outbox is empty.
"""

from __future__ import annotations

import asyncio
import sys

from wecom_bot.dispatcher import BotTarget, Dispatcher, DispatcherSettings, local_limiter
from wecom_bot.retry import RetryPolicy
from wecom_bot.store import open_store


async def main(db: str, base_url: str, key: str) -> None:
    store = open_store(f"sqlite:///{db}")
    dispatcher = Dispatcher(
        store,
        {"ops": BotTarget(name="ops", keys=(key,), base_url=base_url, timeout=2.0)},
        limiter=local_limiter("20/1.05s"),
        retry=RetryPolicy(max_attempts=30, base_delay=0.02, max_delay=0.2, rate_window=1.0),
        settings=DispatcherSettings(lease_seconds=1.0, coalesce_after=1000.0, batch=5),
    )
    await dispatcher.start()
    while await store.pending_count():
        await asyncio.sleep(0.05)
    await dispatcher.stop()
    await store.close()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
