"""``wecom-bot gateway check`` and ``gateway routes test``: a config examined without serving.

- :func:`check_config` validates a config, renders every route against the samples and
  writes every heartbeat's messages.
- :func:`trace_routes` answers "where does this alert go?" like ``amtool config routes test``:
  the routes it takes, their bots and mentions, whether each is muted now, and the messages.

Neither needs the webhook keys: a key whose variable or file is not set here is reported as
not set (fine for a check) and everything else still runs, so a config can be checked in CI.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..limits import CONTENT_LIMITS, utf8_len
from .actions.notices import fired_for
from .config import GatewayConfig, load_config
from .heartbeats import take
from .model import Notification
from .routing import Matcher
from .runtime import Runtime, build_runtime
from .samples import sample_notifications
from .templates.renderer import RenderReport, TemplateError, is_summary_template

__all__ = ["check_config", "notification_for_labels", "parse_labels", "trace_routes"]


def _runtime(config: GatewayConfig, now: float | None = None) -> tuple[Runtime, dict[str, str]]:
    unresolved: dict[str, str] = {}
    clock = time.time if now is None else (lambda: now)
    runtime = build_runtime(config, store=None, metrics=None, clock=clock, unresolved=unresolved)
    return runtime, unresolved


def check_config(path: str | Path) -> dict[str, Any]:
    """Load ``path``, build everything it describes, and render each route with each sample.

    Returns:
        A report: ``ok``, the bots (masked), ``unresolved_keys`` (field -> why it is not set
        here; not an error), ``notes`` (settings left out that messages would gain from; not
        errors), routes, and per route/sample/bot the rendered parts with their byte sizes
        against the limit (and a preview of the content).

    Raises:
        ConfigError: the configuration itself is invalid (the message names the field).
    """
    config = load_config(path)
    runtime, unresolved = _runtime(config)
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
                    report = runtime.render_here(route, bot, sample)
                except TemplateError as exc:
                    ok = False
                    renders.append(
                        {**item, "ok": False, "parts": 0, "sizes": [], "error": exc.in_words}
                    )
                    continue
                payloads = [] if report is None else report.payloads
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
                        "warnings": [] if report is None else _warnings(runtime, sample, report),
                    }
                )
    _graph_credentials(config, unresolved)
    beats, beat_notes = _heartbeats(runtime)
    ok = ok and all(b["ok"] for b in beats)
    masked = config.masked()
    return {
        "ok": ok,
        "bots": {
            name: bot.get("key") or bot.get("key_env") for name, bot in masked["bots"].items()
        },
        "unresolved_keys": unresolved,
        "notes": _notes(config) + beat_notes,
        "routes": [r.name for r in routes],
        "renders": renders,
        "heartbeats": beats,
    }


def _heartbeats(runtime: Runtime) -> tuple[list[dict[str, Any]], list[str]]:
    """Each heartbeat's messages written for its bots, and what to know about it (a route its
    alerts would otherwise take, the Alertmanager side)."""
    from .heartbeats.messages import Moment, miss_text, recovery_text

    now = runtime.clock()
    out: list[dict[str, Any]] = []
    notes: list[str] = []
    for heartbeat in runtime.heartbeats:
        config = heartbeat.config
        moment = Moment(now=now, last_seen=now - config.expect_every - config.grace,
                        armed_at=now, source="alertmanager · receiver wecom",
                        expected_by=now)  # fmt: skip
        item: dict[str, Any] = {
            "name": config.name, "sources": list(config.sources),
            "matchers": list(config.matchers), "expect_every": config.expect_every,
            "grace": config.grace, "bots": list(config.bots), "ok": True, "messages": [],
        }  # fmt: skip
        for bot in config.bots:
            msgtype = runtime.config.bots[bot].msgtype
            for kind, write in (("miss", miss_text), ("recovery", recovery_text)):
                body = write(config, moment, timezone=runtime.config.timezone, syntax=msgtype)
                try:
                    report = runtime.renderer.compose(f"heartbeat-{kind}", body, msgtype=msgtype)
                except (TemplateError, ValueError) as exc:
                    item["ok"] = False
                    item["messages"].append({"bot": bot, "kind": kind, "error": str(exc)})
                    continue
                item["messages"].append(
                    {"bot": bot, "kind": kind, "msgtype": msgtype,
                     "sizes": [_size(p) for p in report.payloads],
                     "preview": report.payloads[0][msgtype]["content"]}
                )  # fmt: skip
        out.append(item)
        shadowed = _routes_shadowed(runtime, heartbeat.matchers)
        if shadowed:
            notes.append(
                f"heartbeat {config.name}: alerts matching {', '.join(config.matchers)} are "
                f"taken by the heartbeat before routing; route(s) {', '.join(shadowed)} that "
                "also match them never see them (fine if that is what you want)"
            )
        notes.append(
            f"heartbeat {config.name}: Alertmanager must repeat it more often than every "
            f"{fired_for(config.expect_every)} (its route's repeat_interval shorter than "
            "expect_every; see Heartbeats in docs/gateway.md)"
        )
    return out, notes


def _routes_shadowed(runtime: Runtime, matchers: Sequence[Matcher]) -> list[str]:
    """The routes (not the default) an alert with the labels the matchers ask for would take."""
    labels = {m.name: m.value for m in matchers if m.op == "="}
    if not labels:
        return []
    notification = notification_for_labels(labels, runtime.clock())
    return [r.name for r in runtime.router.match(notification)
            if r is not runtime.router.default_route]  # fmt: skip


ONE_LINE_MIN = 3
"""Lines the built-in template writes for a sample, from which a configured template that
writes the same sample on one line is warned about (its line breaks were likely eaten)."""


def _warnings(runtime: Runtime, sample: Notification, report: RenderReport) -> list[str]:
    """What a render that worked would still do badly: cut, split, or collapsed on one line."""
    warnings = list(report.warnings)
    if len(report.parts) > 1 and not any(w.startswith("cut to") for w in warnings):
        warnings.append(
            f"needs {len(report.parts)} messages: {report.size} bytes rendered, "
            f"{report.limit} fit in one"
        )
    if is_summary_template(report.used_template) and not is_summary_template(report.template):
        warnings.append(
            f"written as a storm summary, not with template {report.template!r}: its message "
            "would not fit one message (or the sample has more alerts than "
            "max_alerts_per_message)"
        )
    if report.used_template not in runtime.config.templates:
        return warnings  # a built-in one (or its summary): laid out by the gateway
    if all(_lines(part.payload, report.msgtype) <= 1 for part in report.parts):
        builtin = "generic" if sample.source == "generic" else "default"
        usual = runtime.builtin_renderer.render_check(builtin, sample, msgtype=report.msgtype)
        lines = _lines(usual.parts[0].payload, report.msgtype) if usual.parts else 0
        if lines >= ONE_LINE_MIN:
            warnings.append(
                f"the message is one line where the built-in template writes {lines} for this "
                "sample: a block tag at the end of a line takes that line's break with it "
                "(write {% endif +%}; see Whitespace in docs/templates.md)"
            )
    return warnings


def _lines(payload: dict[str, Any], msgtype: str) -> int:
    """The lines of a payload's content that hold text (a line of mentions alone not counted)."""
    content = str(payload[msgtype]["content"])
    return sum(1 for line in content.splitlines() if line.strip() and not line.startswith("<@"))


EXTERNAL_URL_NOTE = (
    "external_url is not set: storm summaries carry no link to the console's history (where "
    "every alert of a storm is whole), and messages carry no action links (认领 · 静默 · 详情). "
    "Set external_url to the address people reach the gateway at (see docs/actions.md)."
)


def _notes(config: GatewayConfig) -> list[str]:
    """What the messages miss under ``config`` for a setting left out (not an error)."""
    notes = [] if config.external_url else [EXTERNAL_URL_NOTE]
    if config.graphs.enabled and not _installed("matplotlib"):
        from ..cli.launcher import checkout_root, install_command

        notes.append(
            "graphs: sources are configured but matplotlib is not installed here, so charts "
            "are dropped (alerts still go, as text): install the [graphs] extra: "
            + install_command(["graphs"], checkout_root())
        )
    return notes


def _installed(module: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # blocked (sys.modules[name] = None) or broken
        return False


def _graph_credentials(config: GatewayConfig, unresolved: dict[str, str]) -> None:
    """Record the graph sources' credentials not set here, as the bots' keys are."""
    from ..errors import SecretNotSetError

    for kind in ("prometheus", "grafana"):
        for index, entry in enumerate(getattr(config.graphs, kind)):
            field = f"graphs.{kind}[{index}]"
            try:
                entry.credentials(field)
            except SecretNotSetError as exc:
                name, _, why = str(exc).partition(": ")
                unresolved[name] = why or str(exc)


def parse_labels(items: list[str]) -> dict[str, str]:
    """``["alertname=X", "severity=critical"]`` -> a label set.

    Raises:
        ConfigError: an item is not ``name=value``.
    """
    labels: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ConfigError(f"label {item!r}: write labels as name=value")
        labels[name.strip()] = value
    return labels


def notification_for_labels(labels: Mapping[str, str], now: float) -> Notification:
    """One firing Alertmanager alert with ``labels``, as Alertmanager would send it."""
    from .intake.sources import parse_alertmanager

    started = datetime.fromtimestamp(now, UTC).isoformat().replace("+00:00", "Z")
    return parse_alertmanager(
        {
            "receiver": "wecom-bot",
            "status": "firing",
            "alerts": [
                {
                    "status": "firing",
                    "labels": dict(labels),
                    "annotations": {},
                    "startsAt": started,
                    "endsAt": "0001-01-01T00:00:00Z",
                    "generatorURL": "",
                    "fingerprint": "",
                }
            ],
            "groupLabels": {"alertname": labels["alertname"]} if "alertname" in labels else {},
            "commonLabels": dict(labels),
            "commonAnnotations": {},
            "externalURL": "",
            "version": "4",
            "groupKey": "{}:{}",
            "truncatedAlerts": 0,
        }
    )


def trace_routes(
    path: str | Path, notification: Notification, now: float | None = None
) -> dict[str, Any]:
    """Where ``notification`` goes under the config at ``path``, and what it becomes.

    Args:
        path: the gateway's configuration file.
        notification: what arrives (see :func:`notification_for_labels` for a label set).
        now: the moment to judge muting and on-call at (default: the clock).

    Returns:
        ``routes``: per route taken, in order: its ``bots``, ``mentions`` (``users``,
        ``mobiles``), ``muting`` (``muted`` and, when muted, ``action``, ``reason`` and
        ``resumes_at``) and ``messages``: per bot the msgtype and each rendered part with its
        content, its UTF-8 size and the limit. ``heartbeats``: the heartbeats that take some
        of its alerts before routing (``heartbeat``, ``alerts``, ``beats``: whether a firing
        one counts as a beat); what they take is not routed. Also ``unresolved_keys`` as in
        :func:`check_config`.

    Raises:
        ConfigError: the configuration is invalid.
        TemplateError: a route's template fails on this notification.
    """
    config = load_config(path)
    when = time.time() if now is None else now
    runtime, unresolved = _runtime(config, when)
    split = take(runtime.heartbeats, notification)
    heartbeats = [
        {"heartbeat": name, "alerts": count,
         "beats": any(h.name == name for h in split.beats)}
        for name, count in split.taken.items()
    ]  # fmt: skip
    taken: list[dict[str, Any]] = []
    routed = [] if split.rest is None else runtime.router.match(split.rest)
    notification = split.rest or notification
    for route in routed:
        mentions = runtime.mentions_for(route, notification, when)
        muting = runtime.muting(route.name, when)
        messages = []
        for bot in route.bots:
            msgtype = runtime.msgtype_for(route, bot)
            payloads = runtime.render(route, bot, notification, when)
            parts = [
                {"content": p[msgtype]["content"], "bytes": size, "limit": limit}
                for p in payloads
                for size, limit in [_size(p)]
            ]
            messages.append({"bot": bot, "msgtype": msgtype, "parts": parts})
        taken.append(
            {
                "route": route.name,
                "default": route is runtime.router.default_route,
                "bots": list(route.bots),
                "mentions": {"users": list(mentions.userids), "mobiles": list(mentions.mobiles)},
                "muting": {"muted": False}
                if muting is None
                else {"muted": True, **muting.to_json()},
                "messages": messages,
            }
        )
    return {
        "source": notification.source,
        "status": notification.status,
        "labels": dict(notification.common_labels),
        "alerts": len(notification.alerts),
        "unresolved_keys": unresolved,
        "heartbeats": heartbeats,
        "routes": taken,
    }


def _size(payload: dict[str, Any]) -> tuple[int, int]:
    msgtype = payload["msgtype"]
    return utf8_len(payload[msgtype]["content"]), CONTENT_LIMITS[msgtype]
