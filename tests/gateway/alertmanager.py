"""A real Alertmanager (Debian's prometheus-alertmanager) for tests: one process per call, on
127.0.0.1 and a free port, its ``externalURL`` the address it listens on."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.gateway.daemons import daemons
from tests.redis_server import free_port

# Debian's name, upstream's name, or where WECOM_TEST_ALERTMANAGER points (scripts/provision).
ALERTMANAGER = (
    os.environ.get("WECOM_TEST_ALERTMANAGER")
    or shutil.which("prometheus-alertmanager")
    or shutil.which("alertmanager")
)


@contextmanager
def alertmanagers(tmp_path: Path) -> Iterator[Callable[..., str]]:
    """Yields ``start(webhook_url, bearer=None, repeat_interval="1h") -> alertmanager_url``
    (``bearer``: the token its webhook sends; ``webhook_url`` may be a list: one webhook per
    URL); every process started stops after.

    Alertmanager groups by ``alertname``, waits 1 s before a group's first notification and
    between its updates, repeats after ``repeat_interval``, and sends resolved notifications.
    """
    if ALERTMANAGER is None:
        pytest.fail(
            "prometheus-alertmanager is not installed (apt-get install prometheus-alertmanager)"
        )

    def start(
        webhook_url: str | list[str], bearer: str | None = None, repeat_interval: str = "1h"
    ) -> str:
        port = free_port()
        auth = (
            f"        http_config:\n          authorization:\n            credentials: '{bearer}'\n"
            if bearer
            else ""
        )
        url = f"http://127.0.0.1:{port}"
        n = len(group.procs)
        config = tmp_path / f"am-{n}.yml"
        urls = [webhook_url] if isinstance(webhook_url, str) else webhook_url
        hooks = "".join(
            f"      - url: '{url}'\n        send_resolved: true\n" + auth for url in urls
        )
        config.write_text(
            "route:\n"
            "  receiver: wecom\n"
            "  group_by: [alertname]\n"
            "  group_wait: 1s\n"
            "  group_interval: 1s\n"
            f"  repeat_interval: {repeat_interval}\n"
            "receivers:\n"
            "  - name: wecom\n"
            "    webhook_configs:\n" + hooks,
            "utf-8",
        )
        argv = [
            str(ALERTMANAGER), f"--config.file={config}",
            f"--storage.path={tmp_path / f'am-data-{n}'}",
            f"--web.listen-address=127.0.0.1:{port}", f"--web.external-url={url}",
            "--cluster.listen-address=",
        ]  # fmt: skip
        return group.launch(argv, url, what="alertmanager", timeout=15)

    with daemons() as group:
        start.procs = group.procs  # type: ignore[attr-defined]  # to stop, pause or kill one
        yield start
