"""A separate process that uses a SQLite outbox, for the crash and concurrency tests.

Usage: ``python _worker.py MODE URL [ARGS...]`` (URL: a store URL for ``open_store``); it
reports on stdout, one JSON value a line.

* ``hold URL NOW LIMIT LEASE``: claim ``LIMIT`` records of bot ``ops`` at time ``NOW``, print
  their ids, then hang (the test kills it with SIGKILL).
* ``enqueue URL``: enqueue one message at a time forever, printing each id once committed.
* ``drain URL NOW``: print ``"ready"``, wait for a line on stdin, then claim and ack batches of
  bot ``ops`` until none is left; print every claimed id.
"""

from __future__ import annotations

import asyncio
import json
import sys

from wecom_bot.store import NewMessage, open_store
from wecom_bot.store.redis import RedisOutbox


def say(value: object) -> None:
    sys.stdout.write(json.dumps(value) + "\n")
    sys.stdout.flush()


async def main(mode: str, url: str, *args: str) -> None:
    store = open_store(url)
    if isinstance(store, RedisOutbox):  # the tests drive leases with their own NOW
        await store.close()
        store = RedisOutbox.from_url(url, server_leases=False)
    if mode == "hold":
        now, limit, lease = float(args[0]), int(args[1]), float(args[2])
        claimed = await store.claim("ops", limit=limit, lease_seconds=lease, now=now)
        say([r.id for r in claimed])
        await asyncio.sleep(3600)
    elif mode == "enqueue":
        n = 0
        while True:
            n += 1
            message = NewMessage(
                bot="ops", payload={"msgtype": "text", "text": {"content": f"m{n}"}}
            )
            [record_id] = await store.enqueue([message])
            say(record_id)
    elif mode == "drain":
        now = float(args[0])
        say("ready")
        sys.stdin.readline()
        seen: list[int] = []
        while batch := await store.claim("ops", limit=3, lease_seconds=600, now=now):
            seen.extend(r.id for r in batch)
            await store.ack([r.id for r in batch], now=now)
        say(seen)
    await store.close()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:]))
