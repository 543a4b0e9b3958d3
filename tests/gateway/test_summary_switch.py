"""The switch between a route's per-alert template and the storm summary is made by bytes.

A notification of several alerts is written per alert when that rendering fits one message
(mention line included), else as a summary; ``max_alerts_per_message`` only says when the
summary is used without trying. Every path that renders a notification (``gateway check`` and
the CLI, the gateway's ingest with its render pool, the console's playground) picks the same
form for the same notification.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.emulator.conftest import Emu, new_key, running
from tests.gateway.harness import (
    content_of,
    emulator_contents,
    gateway_config,
    running_gateway,
    wait_for,
)
from wecom_bot.emulator import EmulatorSettings
from wecom_bot.gateway.intake.sources import parse_alertmanager
from wecom_bot.gateway.model import Notification
from wecom_bot.gateway.routing import Mentions
from wecom_bot.gateway.runtime import build_runtime
from wecom_bot.gateway.samples import alertmanager_firing
from wecom_bot.gateway.templates.render_pool import RenderPool
from wecom_bot.gateway.templates.renderer import MsgType, Renderer, TemplateRenderError
from wecom_bot.limits import CONTENT_LIMITS

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
MSGTYPES: tuple[MsgType, ...] = ("markdown", "markdown_v2", "text")


def payload_of(count: int, description: str | None = None, pad: int = 0) -> dict[str, Any]:
    """The sample notification (severity, summary, description, runbook) with ``count``
    alerts, one per ``db-NN`` instance (``pad`` more bytes in each instance)."""
    payload = alertmanager_firing(now=NOW)
    first = payload["alerts"][0]
    annotations = dict(first["annotations"])
    if description is not None:
        annotations["description"] = description
    payload["alerts"] = [
        dict(
            first,
            labels={**first["labels"], "instance": f"db-{i:02d}{'x' * pad}:9100"},
            annotations=annotations,
            fingerprint=f"{i:016x}",
        )
        for i in range(count)
    ]
    return payload


def typical(count: int, description: str | None = None, pad: int = 0) -> Notification:
    return parse_alertmanager(payload_of(count, description, pad))


def is_summary(template: str) -> bool:
    return template.startswith("summary")


@pytest.mark.parametrize("msgtype", MSGTYPES)
def test_no_cliff_a_typical_notification_takes_one_message_from_1_to_40_alerts(
    msgtype: MsgType,
) -> None:
    renderer = Renderer(max_alerts=20, clock=lambda: NOW)
    forms = []
    for count in range(1, 41):
        notification = typical(count)
        report = renderer.render_check("default", notification, msgtype=msgtype)
        per_alert = renderer.render_check("default", notification, msgtype=msgtype, summarize=False)
        assert len(report.parts) == 1, (count, report.size)
        if count == 1:
            assert not is_summary(report.used_template)  # one alert: always its template
        elif count > 20:
            assert is_summary(report.used_template)  # past max_alerts: without trying
        else:
            # Per alert exactly when that fits one message: the same rendering, byte for byte.
            assert is_summary(report.used_template) != per_alert.fits, count
            if per_alert.fits:
                assert report.payloads == per_alert.payloads
        if is_summary(report.used_template):
            assert f"× {count}" in report.content and "db-" in report.content
        forms.append(is_summary(report.used_template))
    # The typical notification switches once, at a byte size, and stays a summary.
    switch = forms.index(True)
    assert 2 <= switch < 20 and all(forms[switch:]), forms


@pytest.mark.parametrize("msgtype", ["markdown", "markdown_v2"])
def test_the_mention_line_counts_toward_one_message(msgtype: MsgType) -> None:
    # (text carries mentions in the payload's lists, outside the content and its limit)
    renderer = Renderer(max_alerts=20, clock=lambda: NOW)
    mentions = Mentions(("alice", "bob"))
    limit = CONTENT_LIMITS[msgtype]

    def sizes(padding: int) -> tuple[int, int]:
        notification = typical(2, pad=padding)
        bare = renderer.render_check("default", notification, msgtype=msgtype, summarize=False)
        mentioned = renderer.render_check(
            "default", notification, msgtype=msgtype, mentions=mentions, summarize=False
        )
        return bare.size, mentioned.size

    # Two alerts whose instances fill a message but for the mention line.
    padding = (limit - sizes(0)[0]) // 2
    while sizes(padding)[0] > limit:
        padding -= 1
    bare_size, mentioned_size = sizes(padding)
    assert bare_size <= limit < mentioned_size, (bare_size, mentioned_size)
    notification = typical(2, pad=padding)
    alone = renderer.render_check("default", notification, msgtype=msgtype)
    assert not is_summary(alone.used_template) and len(alone.parts) == 1
    with_mentions = renderer.render_check(
        "default", notification, msgtype=msgtype, mentions=mentions
    )
    assert is_summary(with_mentions.used_template) and len(with_mentions.parts) == 1
    if msgtype == "markdown":
        assert with_mentions.content.endswith("<@alice><@bob>")
    else:
        assert with_mentions.content.endswith("cc: alice, bob")


def test_above_max_alerts_the_route_template_is_not_even_tried() -> None:
    # This template fails whenever it runs: above the bound it must not run at all.
    renderer = Renderer({"boom": "{{ 1 // (total - total) }}"}, max_alerts=3, clock=lambda: NOW)
    assert renderer.form_of(typical(4)) == "summary"
    report = renderer.render_check("boom", typical(4))
    assert is_summary(report.used_template) and "× 4" in report.content
    assert renderer.form_of(typical(3)) == "fit"
    with pytest.raises(TemplateRenderError, match="boom"):
        renderer.render_check("boom", typical(3))  # tried: it fails, as a route's would


def test_form_of_each_kind_of_notification() -> None:
    renderer = Renderer(max_alerts=20)
    assert renderer.form_of(typical(1)) == "alerts"
    assert renderer.form_of(typical(2)) == "fit"
    assert renderer.form_of(typical(20)) == "fit"
    assert renderer.form_of(typical(21)) == "summary"
    generic = Notification("generic", "firing", raw={"a": 1})
    assert renderer.form_of(generic) == "alerts"
    # No bound: never a summary, every alert rendered by the route's template.
    unbounded = Renderer(clock=lambda: NOW)
    assert unbounded.form_of(typical(500)) == "alerts"
    assert unbounded.render_check("default", typical(30)).used_template == "default"


# --------------------------------------------------------------------------- same form everywhere

# A configured per-alert template (it renders in the pool): one line per alert, and a long
# annotation line each, so that about ten alerts fill a markdown message.
MINE = (
    "{% for a in alerts %}mine {{ a.labels.instance }}: {{ a.annotations.description }}\n"
    "{% endfor %}"
)
MY_SUMMARY = (
    "my summary of {{ total }}: {% for g in groups %}{{ g.entries | join(' ') }}{% endfor %}"
)
CASES = [(2, None), (9, "d" * 380), (12, "d" * 380), (25, None)]


def _config(
    templates: dict[str, str],
    route_template: str,
    emu_url: str = "http://127.0.0.1:9",
    key: str = "",
    store: str = "memory://",
    **overrides: Any,
) -> Any:
    return gateway_config(
        emu_url, key or new_key(), store, templates=templates, routes=[],
        default_route={"name": "default", "bots": ["ops"], "template": route_template,
                       "mentions": {"users": ["oncall"]}},
        **overrides,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("templates", "route_template"),
    [
        ({"mine": MINE}, "mine"),  # per-alert configured, summary built in
        ({"summary": MY_SUMMARY}, "default"),  # per-alert built in, summary configured
        ({"mine": MINE, "summary": MY_SUMMARY}, "mine"),
    ],
)
async def test_ingest_check_and_playground_pick_the_same_form(
    templates: dict[str, str], route_template: str
) -> None:
    config = _config(templates, route_template)
    pool = RenderPool(workers=1)
    playground = RenderPool(workers=1)
    try:
        pooled = build_runtime(config, store=None, metrics=None, clock=lambda: NOW.timestamp(),
                               render_pool=pool)  # fmt: skip
        local = build_runtime(config, store=None, metrics=None, clock=lambda: NOW.timestamp())
        route = local.router.default_route
        forms = []
        for count, description in CASES:
            notification = typical(count, description)
            # gateway check and the CLI: everything in this process.
            checked = local.render(route, "ops", notification)
            # the gateway's ingest: configured templates in the render pool.
            ingested = await pooled.render_async(route, "ops", notification)
            # the console's playground: the configured templates, in its own pool.
            tried = await pooled.render_report(
                route_template, notification, msgtype="markdown",
                mentions=route.mentions_for(notification),
                settings=pooled.renderer.settings, pool=playground,
            )  # fmt: skip
            assert ingested == checked == tried.payloads, count
            assert len(checked) == 1
            per_alert = local.renderer.render_check(
                route_template, notification, mentions=route.mentions_for(notification),
                summarize=False,
            )  # fmt: skip
            assert is_summary(tried.used_template) == (count > 20 or not per_alert.fits)
            forms.append(is_summary(tried.used_template))
        assert forms[0] is False and forms[-1] is True  # both forms were exercised
        if route_template == "mine":  # 9 long alerts fit one message, 12 do not
            assert forms == [False, False, True, True]
    finally:
        pool.close()
        playground.close()


@pytest.fixture(scope="module")
def emu() -> Iterator[Emu]:
    with running(EmulatorSettings(rate=None)) as emulator:
        yield emulator


def test_the_gateway_sends_what_gateway_check_renders(emu: Emu, tmp_path: Path) -> None:
    key = new_key()
    config = _config(
        {"mine": MINE}, "mine", emu.url, key, f"sqlite:///{tmp_path / 'o.db'}", storm_burst=10
    )
    checked = build_runtime(config, store=None, metrics=None, clock=lambda: NOW.timestamp())
    route = checked.router.default_route
    with running_gateway(config) as gw:
        for count, description in CASES:
            payload = payload_of(count, description)
            payload["groupKey"] = f"case-{count}"
            assert gw.post("/alertmanager", payload).status_code == 200
        wait_for(lambda: len(emulator_contents(emu, key)) >= len(CASES), what="four messages")
    sent = [content_of(p) for p in emulator_contents(emu, key)]
    assert len(sent) == len(CASES)
    for count, description in CASES:
        [expected] = checked.render(route, "ops", typical(count, description))
        if count < 12:  # per alert, as gateway check wrote it
            assert content_of(expected).startswith("mine db-00:9100")
            assert content_of(expected) in sent
        else:  # a summary in both
            assert f"FIRING · {count}" in content_of(expected)
            assert any(f"FIRING · {count}" in text for text in sent), count
