"""History states of notifications folded into digests, through a real gateway and emulator.

A storm on a slow rate makes the dispatcher fold the backlog into digests. The history must
call a notification ``delivered`` only once everything it was sent as has reached WeCom: the
checks below look at each entry while the storm drains, not only at the end, and compare
every ``delivered`` they see with what the emulator holds at that moment.
"""

from __future__ import annotations

import re
from typing import Any

from tests.emulator.conftest import Emu
from tests.gateway.harness import content_of, emulator_contents, running_gateway, wait_for
from tests.gateway.harness import one_alert as notification
from wecom_bot.masking import key_fingerprint

from .support import BASIC, Console, add_fault, canary_key, console_config, secrets_of

# One send per second and a backlog that must drain within three: the first message goes out
# alone, the rest is folded into several digests, of which only one fits in each second.
SLOW = {"rate": "1/1s", "coalesce_after": "3s"}
STORM = 30
_NAME = re.compile(r"\bStorm\d{2}\b")


def post(console: Console, name: str, team: str = "web") -> str:
    answer = console.gw.post(
        "/alertmanager", notification(name, team), headers={"Authorization": BASIC}
    )
    assert answer.status_code == 200, answer.text
    nid: str = answer.json()["notification_id"]
    return nid


def received(emu: Emu, key: str) -> list[str]:
    """The contents the emulator accepted for ``key``, in order."""
    return [content_of(p) for p in emulator_contents(emu, key)]


def entry(console: Console, nid: str) -> dict[str, Any] | None:
    """The history entry (with records and events), or None before it is written."""
    answer = console.get(f"/api/v1/history/{nid}")
    if answer.status_code == 404:
        return None
    assert answer.status_code == 200, answer.text
    data: dict[str, Any] = answer.json()
    return data


def unsent(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The entry's live outbox records (not folded into a digest) that are not sent yet."""
    return [r for r in data["records"] if r["replaced_by"] is None and r["status"] != "sent"]


def check_delivered_is_true(data: dict[str, Any], name: str, texts: list[str]) -> None:
    """A ``delivered`` entry's alert is at WeCom (``texts``: one bot's received contents).

    ``texts`` must be read after ``data``: whatever the entry says was sent is then in them.
    """
    if data["state"] == "delivered":
        assert any(name in text for text in texts), (
            f"{name} is delivered but the emulator has not received it "
            f"({len(texts)} messages so far; records still queued: "
            f"{[(r['id'], r['bot'], r['status']) for r in unsent(data)]})"
        )


def digest_sends(data: dict[str, Any], bot: str) -> list[dict[str, Any]]:
    return [
        e for e in data["events"]
        if e["kind"] == "sent" and e["bot"] == bot and "in a digest" in e["detail"]
    ]  # fmt: skip


def _must(console: Console, nid: str) -> dict[str, Any]:
    data = entry(console, nid)
    assert data is not None, f"no history entry for {nid}"
    return data


def two_bot_config(emu_url: str, key_a: str, key_b: str) -> Any:
    """Bot ``a`` takes the storm; notifications of team ``pair`` go to ``a`` and ``b``."""
    return console_config(
        emu_url,
        key_a,
        "memory://",
        bots={
            "a": {"key": key_a, "msgtype": "markdown"},
            "b": {"key": key_b, "msgtype": "markdown"},
        },
        routes=[{"name": "pair", "matchers": ['team="pair"'], "bots": ["a", "b"]}],
        default_route={"name": "default", "bots": ["a"]},
        webhooks={},
        **SLOW,
    )


def storm_with_pair(console: Console) -> tuple[dict[str, str], str]:
    """Post the storm with ``StormPair`` (routed to both bots) in its middle."""
    ids: dict[str, str] = {}
    pair = ""
    for i in range(STORM):
        ids[f"Storm{i:02d}"] = post(console, f"Storm{i:02d}")
        if i == STORM // 3:
            pair = post(console, "StormPair", team="pair")
    return ids, pair


def test_a_second_bot_still_retrying_keeps_the_notification_from_being_delivered(
    emu: Emu,
) -> None:
    key_a, key_b = canary_key(), canary_key()
    # Bot b answers errcode -1 (transient) until the fault is cleared below.
    add_fault(emu, key_b, -1, count=1000)
    with running_gateway(two_bot_config(emu.url, key_a, key_b)) as gw:
        console = Console(gw, secrets_of(key_a) + secrets_of(key_b))
        ids, pair = storm_with_pair(console)
        states: list[str] = []

        def look() -> dict[str, Any] | None:
            data = entry(console, pair)
            if data is not None:
                states.append(data["state"])
                check_delivered_is_true(data, "StormPair", received(emu, key_b))
                check_delivered_is_true(data, "StormPair", received(emu, key_a))
            return data

        def digested_then_retried() -> bool:
            # a's digest went out, and b failed again after it: the recomputation that
            # followed the digest's "sent" is written (events are written in order).
            data = look()
            if data is None or not digest_sends(data, "a"):
                return False
            sent_at = digest_sends(data, "a")[0]["at"]
            return any(
                e["kind"] == "retried" and e["bot"] == "b" and e["at"] > sent_at
                for e in data["events"]
            )

        wait_for(digested_then_retried, timeout=12, what="a's digest, then b retrying")
        data = _must(console, pair)
        assert data["state"] == "retrying", data["state"]
        [pending] = [r for r in unsent(data) if r["bot"] == "b"]
        assert pending["status"] == "pending" and pending["attempts"] >= 2
        assert [m["bot"] for m in data["messages"]] == ["a", "b"]
        a_texts = received(emu, key_a)
        carrier = [t for t in a_texts if "StormPair" in t]
        assert carrier and len(set(_NAME.findall(carrier[0]))) > 1, "a did not send it in a digest"
        assert not received(emu, key_b)
        assert "delivered" not in states

        answer = emu.client.delete(f"/api/groups/{key_fingerprint(key_b)}/faults")
        assert answer.status_code == 200, answer.text

        def delivered() -> bool:
            found = look()
            return found is not None and found["state"] == "delivered"

        wait_for(delivered, timeout=12, what="StormPair delivered once b recovered")
        assert any("StormPair" in t for t in received(emu, key_b))
        for name, nid in ids.items():
            assert _must(console, nid)["state"] == "delivered", name


def test_a_dead_second_message_leaves_the_notification_dead_despite_its_digest(
    emu: Emu,
) -> None:
    key_a, key_b = canary_key(), canary_key()
    add_fault(emu, key_b, 93000)  # an invalid key: permanent, dead-lettered at once
    with running_gateway(two_bot_config(emu.url, key_a, key_b)) as gw:
        console = Console(gw, secrets_of(key_a) + secrets_of(key_b))
        ids, pair = storm_with_pair(console)
        states: list[str] = []

        def a_side_done() -> bool:
            data = entry(console, pair)
            if data is None:
                return False
            states.append(data["state"])
            a_records = [r for r in data["records"] if r["bot"] == "a"]
            return bool(digest_sends(data, "a")) and all(r["status"] == "sent" for r in a_records)

        wait_for(a_side_done, timeout=15, what="every digest carrying StormPair sent")
        # Everything that carried StormPair went out before this one was posted, so once it
        # is delivered, every recomputation those sends caused has been written.
        tail = post(console, "StormTail")

        def tail_delivered() -> bool:
            data = entry(console, tail)
            states.append(_must(console, pair)["state"])
            return data is not None and data["state"] == "delivered"

        wait_for(tail_delivered, timeout=15, what="a notification posted after the storm")
        data = _must(console, pair)
        assert data["state"] == "dead", data["state"]
        assert "delivered" not in states
        dead = [e for e in data["events"] if e["kind"] == "dead_lettered"]
        assert [(e["bot"], e["errcode"]) for e in dead] == [("b", 93000)]
        assert any("StormPair" in t for t in received(emu, key_a))
        assert not received(emu, key_b)
        for name, nid in ids.items():
            assert _must(console, nid)["state"] == "delivered", name


def test_a_digested_storm_is_delivered_only_once_every_digest_arrived(emu: Emu) -> None:
    key = canary_key()
    config = console_config(emu.url, key, "memory://", **SLOW)
    with running_gateway(config) as gw:
        console = Console(gw, secrets_of(key))
        ids = {f"Storm{i:02d}": post(console, f"Storm{i:02d}") for i in range(STORM)}

        def all_delivered() -> bool:
            states: dict[str, str | None] = {}
            entries = {name: entry(console, nid) for name, nid in ids.items()}
            texts = received(emu, key)
            for name, data in entries.items():
                states[name] = None if data is None else data["state"]
                if data is not None:
                    check_delivered_is_true(data, name, texts)
            return all(state == "delivered" for state in states.values())

        wait_for(all_delivered, timeout=20, what="every notification of the storm delivered")

        texts = received(emu, key)
        digests = [t for t in texts if len(set(_NAME.findall(t))) > 1]
        assert digests, f"no digest among {len(texts)} messages: the backlog was not folded"
        assert len(texts) < STORM, "every notification went out alone"
        for name in ids:
            assert any(name in text for text in texts), f"{name} never reached the emulator"
        # The shortcut path ran: some notification's only message went out inside a digest.
        folded = [name for name, nid in ids.items() if digest_sends(_must(console, nid), "ops")]
        assert len(folded) > 1, "no notification was recorded as sent in a digest"
        for name in folded:
            [message] = _must(console, ids[name])["messages"]
            assert message["record_id"] is not None
