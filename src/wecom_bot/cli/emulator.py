"""``wecom-bot emulator``: run the local WeCom webhook emulator in the foreground."""

from __future__ import annotations

import logging
import sys
from enum import StrEnum
from types import FrameType
from typing import Annotated, Any

import typer

from ..errors import ConfigError
from .listening import open_listener
from .output import fail_now

DEFAULT_DB = "wecom-bot-emulator.sqlite3"


class LimitsChoice(StrEnum):
    """The values of ``--limits``."""

    DOCUMENTED = "documented"
    LIVE = "live"


def register(app: typer.Typer) -> None:
    """Add the ``emulator`` command to the ``wecom-bot`` app."""
    app.command(
        "emulator",
        help=(
            "Run a local emulator of the WeCom group-robot webhook API.\n\n"
            "It speaks the same HTTP API as https://qyapi.weixin.qq.com (send, upload_media), "
            "stores what it receives, and has an inspection API under /api and a page at /.\n\n"
            "By default it accepts what live WeCom is seen or believed to accept beyond its docs "
            "(any Content-Type, recoverable JSON, unknown fields) and marks such messages with "
            "warnings; --strict refuses them instead.\n\n"
            "Example:  wecom-bot emulator --port 0 --db :memory: --rate 20/1s"
        ),
    )(emulator)


def emulator(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on; 0 picks a free one.")] = 8080,
    db: Annotated[
        str, typer.Option(help="SQLite file to keep messages in, or :memory:.")
    ] = DEFAULT_DB,
    keys: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated keys to accept (default: any well-formed key).",
            envvar="WECOM_BOT_EMULATOR_KEYS",
            show_envvar=True,
        ),
    ] = None,
    rate: Annotated[
        str, typer.Option(help="Per-key limit on accepted messages, e.g. 20/60s or 20/1s.")
    ] = "20/60s",
    no_rate_limit: Annotated[
        bool, typer.Option("--no-rate-limit", help="Accept any number of messages.")
    ] = False,
    limits: Annotated[
        LimitsChoice,
        typer.Option(
            help=(
                "Size limits to enforce: 'documented' (text 2048 bytes) or 'live' (text up to "
                "the 5120 bytes live WeCom accepts, with a warning)."
            ),
        ),
    ] = LimitsChoice.DOCUMENTED,
    strict: Annotated[
        bool,
        typer.Option(
            "--strict",
            help=(
                "Refuse what live WeCom lets through beyond its documentation: a body without "
                "Content-Type application/json (40058), JSON that is not strict (40008), "
                "unknown fields (40058). Not with --limits live."
            ),
        ),
    ] = False,
    allow_host: Annotated[
        list[str] | None,
        typer.Option(
            "--allow-host",
            help="A name the page and the /api endpoints answer to, besides localhost, "
            "--host and IP addresses (repeat it; '*' for any). The WeCom API answers any.",
        ),
    ] = None,
) -> None:
    """Start the emulator and serve until interrupted (Ctrl-C)."""
    import uvicorn

    from ..emulator import EmulatorSettings, create_app
    from ..exposure import default_hosts

    try:
        settings = EmulatorSettings.from_options(
            db=db,
            keys=keys,
            rate=None if no_rate_limit else rate,
            strict=strict,
            limits=limits.value,
            allowed_hosts=(*default_hosts(host), *(allow_host or ())),
        )
    except ConfigError as exc:
        raise fail_now(ctx, exc) from None
    sock = open_listener(ctx, host, port)

    app = create_app(settings)
    bound_host, bound_port = sock.getsockname()[:2]
    shown = "127.0.0.1" if bound_host in ("0.0.0.0", "::") else bound_host
    if ":" in shown:
        shown = f"[{shown}]"
    base = f"http://{shown}:{bound_port}"
    typer.echo(f"wecom-bot emulator listening on {base}")
    typer.echo(f"  use {base} in place of https://qyapi.weixin.qq.com, e.g.")
    typer.echo(
        f"  curl '{base}/cgi-bin/webhook/send?key=YOUR_KEY' -H 'Content-Type: application/json' "
        """-d '{"msgtype":"text","text":{"content":"hello"}}'"""
    )
    typer.echo(f"  page {base}/  ·  inspection API {base}/api/groups  ·  events {base}/api/events")
    limit = str(settings.rate) if settings.rate else "off"
    keys_note = f"{len(settings.keys)} key(s)" if settings.keys else "any key"
    typer.echo(f"  store {settings.db}  ·  rate limit {limit}  ·  accepting {keys_note}")
    leniency = "strict" if settings.strict else "lenient as live"
    typer.echo(f"  requests {leniency}  ·  {settings.limits} limits")
    sys.stdout.flush()

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    # access_log off: uvicorn would print request URLs, and a send URL carries the key.
    config = uvicorn.Config(
        app, log_level="warning", access_log=False, lifespan="on", timeout_graceful_shutdown=5
    )
    server = _server(config, app)
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass  # uvicorn re-raises the Ctrl-C it handled gracefully
    finally:
        sock.close()


def _server(config: Any, app: Any) -> Any:
    """A uvicorn server that ends the emulator's event streams when asked to stop.

    uvicorn waits for open responses before it stops and an event stream never ends by
    itself, so the first Ctrl-C (or SIGTERM) also tells the streams to finish.
    """
    import uvicorn

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            emulator = getattr(app.state, "emulator", None)
            if emulator is not None:
                emulator.close_streams()
            super().handle_exit(sig, frame)

    return Server(config)
