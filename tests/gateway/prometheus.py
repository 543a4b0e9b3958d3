"""A real Prometheus (Debian's ``prometheus``) for tests: one process per call, on 127.0.0.1
and a free port, scraping itself every second, evaluating its rules every second, and sending
its alerts to an Alertmanager when given one."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.gateway.daemons import daemons
from tests.redis_server import free_port

# Debian's and upstream's name, or where WECOM_TEST_PROMETHEUS points (scripts/provision).
PROMETHEUS = os.environ.get("WECOM_TEST_PROMETHEUS") or shutil.which("prometheus")

RULE = """groups:
  - name: test
    rules:
      - alert: ScrapeTooBig
        expr: scrape_samples_scraped > 10
        for: 3s
        labels:
          severity: warning
        annotations:
          summary: "{{ $labels.instance }} scraped {{ $value }} samples"
"""
"""The rule the fixture loads: it fires 3 s after the first scrape (a Prometheus exposes
hundreds of samples about itself), so its series has a few points by then."""


@contextmanager
def prometheuses(tmp_path: Path) -> Iterator[Callable[..., str]]:
    """Yields ``start(alertmanager_url=None, rules=RULE, port=None) -> prometheus_url``
    (``port``: a port chosen beforehand, else a free one); every process
    started stops after. Its ``--web.external-url`` is the address it listens on, so the
    ``generatorURL`` of its alerts points at it."""
    if PROMETHEUS is None:
        pytest.fail("prometheus is not installed (apt-get install prometheus)")

    def start(
        alertmanager_url: str | None = None, rules: str = RULE, port: int | None = None
    ) -> str:
        port = port or free_port()
        url = f"http://127.0.0.1:{port}"
        n = len(group.procs)
        (tmp_path / f"rules-{n}.yml").write_text(rules, "utf-8")
        alerting = ""
        if alertmanager_url is not None:
            target = alertmanager_url.removeprefix("http://").rstrip("/")
            alerting = (
                "alerting:\n  alertmanagers:\n    - static_configs:\n"
                f"        - targets: ['{target}']\n"
            )
        config = tmp_path / f"prometheus-{n}.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            f"rule_files: ['{tmp_path / f'rules-{n}.yml'}']\n"
            + alerting
            + "scrape_configs:\n  - job_name: prometheus\n    static_configs:\n"
            f"      - targets: ['127.0.0.1:{port}']\n",
            "utf-8",
        )
        argv = [
            str(PROMETHEUS), f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / f'prometheus-data-{n}'}",
            f"--web.listen-address=127.0.0.1:{port}", f"--web.external-url={url}",
        ]  # fmt: skip
        return group.launch(argv, url, what="prometheus", timeout=30)

    with daemons() as group:
        yield start
