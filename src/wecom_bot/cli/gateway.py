"""``wecom-bot gateway``: run the alert gateway, or check a configuration."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from ..errors import ConfigError, WeComBotError
from .exit_codes import ExitCode

EXAMPLE = (
    "Examples:\n\n"
    "  wecom-bot gateway --config gateway.yaml\n\n"
    "  wecom-bot gateway check --config gateway.yaml\n\n"
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


def register(app: typer.Typer) -> None:
    """Add the ``gateway`` command group to the ``wecom-bot`` app."""
    app.add_typer(gateway_app)


def _fail(message: str, code: ExitCode = ExitCode.USAGE) -> typer.Exit:
    typer.echo(f"wecom-bot gateway: {message}", err=True)
    return typer.Exit(code)


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
        raise _fail("give the configuration with --config FILE (see --help)")
    import uvicorn

    from ..gateway.app import create_app
    from ..gateway.config import load_config
    from ..gateway.serving import server_config, unauthenticated_exposure

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
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
        raise _fail(str(exc)) from None
    bind_host = loaded.listen_host
    bind_port = loaded.listen_port if port is None else port
    typer.echo(f"wecom-bot gateway: config {config}, store {_store_shown(loaded.store)}")
    typer.echo(f"  listening on http://{bind_host}:{bind_port}  (POST /alertmanager, /grafana, "
               "/webhook/NAME; GET /metrics /healthz /readyz)")  # fmt: skip
    sys.stdout.flush()
    server = uvicorn.Server(server_config(app, loaded, host=bind_host, port=bind_port))
    server.run()
    if not server.started:  # the port was taken, or the lifespan failed (logged)
        raise typer.Exit(ExitCode.FAILURE)


def _store_shown(url: str) -> str:
    from ..masking import redact

    return redact(url.split("@")[-1] if "@" in url else url)


@gateway_app.command("check")
def check(
    config: ConfigOption,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Validate a configuration and render every route's template against sample payloads.

    Prints each rendered message with its byte size against the limit; exits 2 on any error.
    """
    from ..gateway.check import check_config

    try:
        report = check_config(config)
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    except WeComBotError as exc:
        raise _fail(f"a template does not render: {exc}") from None
    if as_json:
        typer.echo(json.dumps(report, ensure_ascii=False, indent=2))
    else:
        _print_report(report)
    if not report["ok"]:
        raise typer.Exit(ExitCode.USAGE)


def _print_report(report: dict[str, Any]) -> None:
    typer.echo(f"config OK: {len(report['bots'])} bot(s), {len(report['routes'])} route(s)")
    for item in report["renders"]:
        marker = "ok " if item["ok"] else "ERR"
        typer.echo(
            f"[{marker}] route {item['route']} · sample {item['sample']} · bot {item['bot']} · "
            f"{item['msgtype']} · {item['parts']} message(s)"
        )
        for size, limit in item["sizes"]:
            typer.echo(f"      {size} / {limit} bytes")
        if item.get("error"):
            typer.echo(f"      {item['error']}")
        if item.get("preview"):
            for line in item["preview"].splitlines()[:12]:
                typer.echo(f"      │ {line}")
