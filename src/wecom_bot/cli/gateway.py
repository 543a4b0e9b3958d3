"""``wecom-bot gateway``: run the alert gateway, or check a configuration."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from ..errors import ConfigError, WeComBotError
from .errors import CliUsageError
from .exit_codes import ExitCode
from .listening import open_listener
from .output import command_scope, fail_now

EXAMPLE = (
    "Examples:\n\n"
    "  wecom-bot gateway --config gateway.yaml\n\n"
    "  wecom-bot gateway check --config gateway.yaml\n\n"
    "  wecom-bot gateway routes test --config gateway.yaml alertname=DiskFull severity=critical\n\n"
    "Point Alertmanager at it: receivers: [{name: wecom, webhook_configs: "
    "[{url: 'http://127.0.0.1:9095/alertmanager'}]}]"
)

gateway_app = typer.Typer(
    name="gateway",
    help=(
        "Receive Alertmanager, Grafana and JSON webhooks and deliver them to WeCom groups "
        "under the rate limit, through a durable outbox.\n\n" + EXAMPLE
    ),
    invoke_without_command=True,
    no_args_is_help=False,
)

ConfigOption = Annotated[
    Path,
    typer.Option(
        "--config",
        "-c",
        help="The gateway's YAML configuration (see docs/gateway.md).",
        envvar="WECOM_BOT_GATEWAY_CONFIG",
        show_envvar=True,
    ),
]


routes_app = typer.Typer(
    name="routes",
    help="Inspect the routing of a configuration.",
    no_args_is_help=True,
)
gateway_app.add_typer(routes_app)


def register(app: typer.Typer) -> None:
    """Add the ``gateway`` command group to the ``wecom-bot`` app."""
    app.add_typer(gateway_app)


@gateway_app.callback()
def run(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            help="The gateway's YAML configuration (see docs/gateway.md).",
            envvar="WECOM_BOT_GATEWAY_CONFIG",
            show_envvar=True,
        ),
    ] = None,
    host: Annotated[str | None, typer.Option(help="Listen address (overrides the config).")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port (overrides the config).")] = None,
    log_level: Annotated[
        str,
        typer.Option(
            "--log-level",
            help="DEBUG, INFO, WARNING or ERROR. INFO logs one line per notification received "
            "and per delivery, retry and dead letter; DEBUG adds every HTTP request.",
            envvar="WECOM_BOT_LOG_LEVEL",
            show_envvar=True,
        ),
    ] = "INFO",
    log_format: Annotated[
        str,
        typer.Option(
            "--log-format",
            help="text, or json: one JSON object per line with the event's fields.",
            envvar="WECOM_BOT_LOG_FORMAT",
            show_envvar=True,
        ),
    ] = "text",
    require_auth: Annotated[
        bool,
        typer.Option(
            "--require-auth/--no-require-auth",
            help="Refuse to start when listening beyond loopback with no auth in the config "
            "(the container image turns it on; without it such a start is only warned about).",
            envvar="WECOM_BOT_GATEWAY_REQUIRE_AUTH",
            show_envvar=True,
        ),
    ] = False,
) -> None:
    """Run the gateway in the foreground (SIGHUP reloads the config, SIGTERM stops)."""
    if ctx.invoked_subcommand is not None:
        return
    if config is None:
        raise fail_now(ctx, CliUsageError("give the configuration with --config FILE (see --help)"))
    import uvicorn

    from ..gateway.app import create_app
    from ..gateway.config import load_config
    from ..gateway.logs import configure_logging
    from ..gateway.serving import server_config, unauthenticated_exposure

    try:
        configure_logging(log_level, log_format)
        loaded = load_config(config)
        if host:
            loaded = loaded.model_copy(update={"listen_host": host})
        if require_auth and (warning := unauthenticated_exposure(loaded)) is not None:
            raise ConfigError(
                f"refusing to start: {warning} (WECOM_BOT_GATEWAY_REQUIRE_AUTH is on; set it "
                "to 0 to start anyway)"
            )
        app = create_app(loaded, config_path=config, settle_heap=True)
    except ConfigError as exc:
        raise fail_now(ctx, exc) from None
    bind_host = loaded.listen_host
    # Bound here, before serving: a taken port ends the command with the one exit code the
    # server commands share (6), and port 0 shows the port it got.
    sock = open_listener(ctx, bind_host, loaded.listen_port if port is None else port)
    bind_port = sock.getsockname()[1]
    shown = "127.0.0.1" if bind_host in ("", "0.0.0.0", "::") else bind_host
    shown = f"[{shown}]" if ":" in shown else shown
    base = f"http://{shown}:{bind_port}"
    typer.echo(f"wecom-bot gateway: config {config}, store {_store_shown(loaded.store)}")
    typer.echo(f"  listening on {base}  (POST /alertmanager, /grafana, "
               "/webhook/NAME; GET /metrics /healthz /readyz)")  # fmt: skip
    typer.echo(f"  console {base}/ui  ·  SIGHUP reloads the config, SIGTERM stops")
    sys.stdout.flush()
    server = uvicorn.Server(server_config(app, loaded, host=bind_host, port=bind_port))
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
    if not server.started:  # the lifespan failed (logged)
        raise typer.Exit(ExitCode.FAILURE)


def _store_shown(url: str) -> str:
    from ..masking import redact

    return redact(url.split("@")[-1] if "@" in url else url)


@gateway_app.command("check")
def check(
    ctx: typer.Context,
    config: ConfigOption,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    strict: Annotated[
        bool,
        typer.Option(
            "--strict",
            help="Also fail (exit 2) when a key or secret (actions.secret) is not set.",
        ),
    ] = False,
) -> None:
    """Validate a configuration and render every route's template against sample payloads.

    Prints each rendered message with its byte size against the limit; exits 2 on any error.
    Keys and secrets need not be set: a key or the actions secret whose variable or file is
    missing is reported by name as not set (ok for a check; never its value) and everything
    else is still checked, so CI can run it without secrets. --strict makes that an error.
    """
    from ..gateway.check import check_config

    with command_scope(ctx, json_mode=as_json) as out:
        try:
            report = check_config(config)
        except ConfigError:
            raise
        except WeComBotError as exc:
            raise CliUsageError(f"a template does not render: {exc}") from None
        if out.json_mode:
            out.json(report)
        else:
            _print_report(report)
    if strict and report["unresolved_keys"]:
        typer.echo("--strict: not set: " + ", ".join(sorted(report["unresolved_keys"])), err=True)
        raise typer.Exit(ExitCode.USAGE)
    if not report["ok"]:
        raise typer.Exit(ExitCode.USAGE)


def _print_report(report: dict[str, Any]) -> None:
    typer.echo(f"config OK: {len(report['bots'])} bot(s), {len(report['routes'])} route(s)")
    _print_unresolved(report)
    for note in report["notes"]:
        typer.echo(f"note: {note}")
    for item in report["renders"]:
        marker = "ERR" if not item["ok"] else "WRN" if item.get("warnings") else "ok "
        typer.echo(
            f"[{marker}] route {item['route']} · sample {item['sample']} · bot {item['bot']} · "
            f"{item['msgtype']} · {item['parts']} message(s)"
        )
        for size, limit in item["sizes"]:
            typer.echo(f"      {size} / {limit} bytes")
        if item.get("error"):
            typer.echo(f"      {item['error']}")
        for warning in item.get("warnings", []):
            typer.echo(f"      warning: {warning}")
        if item.get("preview"):
            for line in item["preview"].splitlines()[:12]:
                typer.echo(f"      │ {line}")
    for beat in report.get("heartbeats", []):
        typer.echo(
            f"[{'ok ' if beat['ok'] else 'ERR'}] heartbeat {beat['name']} · "
            f"{', '.join(beat['sources'])} · {' '.join(beat['matchers']) or 'every call'} · "
            f"every {beat['expect_every']:g}s + {beat['grace']:g}s · bots {', '.join(beat['bots'])}"
        )
        for message in beat["messages"]:
            if message.get("error"):
                typer.echo(f"      {message['kind']} for {message['bot']}: {message['error']}")
                continue
            typer.echo(f"      {message['kind']} for {message['bot']} · {message['msgtype']}")
            for line in message["preview"].splitlines()[:6]:
                typer.echo(f"      │ {line}")


def _print_unresolved(report: dict[str, Any]) -> None:
    for field, why in report["unresolved_keys"].items():
        what = f"key of {field}" if field.startswith("bots.") else field
        typer.echo(f"{what}: not set (ok for check): {why}")


@routes_app.command("test")
def routes_test(
    ctx: typer.Context,
    config: ConfigOption,
    labels: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[NAME=VALUE]...",
            help="The alert's labels, e.g. alertname=X severity=critical.",
        ),
    ] = None,
    payload: Annotated[
        Path | None,
        typer.Option(
            "--payload", help="A whole notification (JSON) instead of labels.", dir_okay=False
        ),
    ] = None,
    source: Annotated[
        str, typer.Option(help="What sent --payload: alertmanager or grafana.")
    ] = "alertmanager",
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Show where an alert goes: the routes it takes, their bots and mentions, whether each is
    muted now, and the messages it becomes with their sizes (like amtool config routes test).

    Keys need not be set. Exits 2 when the config, the labels or the payload are invalid.
    """
    from ..gateway.check import notification_for_labels, parse_labels, trace_routes

    with command_scope(ctx, json_mode=as_json) as out:
        now = time.time()
        if payload is not None:
            if labels:
                raise CliUsageError("give labels or --payload, not both")
            notification = _notification_from_file(payload, source)
        elif labels:
            notification = notification_for_labels(parse_labels(labels), now)
        else:
            raise CliUsageError("give the alert's labels (NAME=VALUE ...) or --payload FILE")
        report = trace_routes(config, notification, now)
        if out.json_mode:
            out.json(report)
            return
        _print_unresolved(report)
        for beat in report["heartbeats"]:
            out.line(
                f"taken by heartbeat {beat['heartbeat']}: {beat['alerts']} alert(s), not routed"
                + ("" if beat["beats"] else " (resolved: not a beat)")
            )
        shown = ", ".join(f"{k}={v!r}" for k, v in report["labels"].items())
        out.line(f"{report['source']} {report['status']} {{{shown}}}: "
                 f"{len(report['routes'])} route(s)")  # fmt: skip
        for route in report["routes"]:
            mentions = route["mentions"]["users"] + route["mentions"]["mobiles"]
            muting = route["muting"]
            state = (
                f"muted now ({muting['reason']}; {muting['action']})"
                if muting["muted"]
                else "active now"
            )
            out.line(
                f"route {route['route']}{' (default)' if route['default'] else ''} · "
                f"bots {', '.join(route['bots'])} · "
                f"mentions {', '.join(mentions) if mentions else 'none'} · {state}"
            )
            for message in route["messages"]:
                parts = message["parts"]
                out.line(f"  bot {message['bot']} · {message['msgtype']} · "
                         f"{len(parts)} message(s)")  # fmt: skip
                for part in parts:
                    out.line(f"    {part['bytes']} / {part['limit']} bytes")
                    for line in part["content"].splitlines():
                        out.line(f"      │ {line}")


def _notification_from_file(path: Path, source: str) -> Any:
    from ..gateway.intake.sources import parse_alertmanager, parse_grafana

    parsers = {"alertmanager": parse_alertmanager, "grafana": parse_grafana}
    if source not in parsers:
        raise CliUsageError(f"--source must be alertmanager or grafana, got {source!r}")
    try:
        data = json.loads(path.read_text("utf-8"))
    except OSError as exc:
        raise CliUsageError(f"cannot read {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise CliUsageError(f"{path} is not JSON: {exc}") from None
    try:
        return parsers[source](data)
    except ValueError as exc:
        raise CliUsageError(f"{path} is not a {source} notification: {exc}") from None
