"""``/readyz`` of a running gateway reflects that delivery runs (issue 18): a dispatcher worker
that died makes it not ready, with the reason."""

from __future__ import annotations

from pathlib import Path

from tests.gateway.harness import gateway_config, running_gateway, wait_for

KEY = "0123456789abcdef0123456789abcdef0123"


def test_readyz_is_not_ready_once_a_dispatcher_worker_has_died(tmp_path: Path) -> None:
    config = gateway_config("http://127.0.0.1:9", KEY, f"sqlite:///{tmp_path / 'outbox.db'}")
    with running_gateway(config) as gw:
        assert gw.client.get("/readyz").status_code == 200
        dispatcher = gw.app.state.gateway.runtime.dispatcher
        task = dispatcher._tasks["ops"]
        task.get_loop().call_soon_threadsafe(task.cancel)  # as if it had crashed
        wait_for(task.done, timeout=10, what="the worker to end")
        answer = gw.client.get("/readyz")
        assert answer.status_code == 503, answer.text
        assert "dispatcher" in answer.json()["reason"]
        assert gw.client.get("/healthz").status_code == 200  # alive, just not ready
