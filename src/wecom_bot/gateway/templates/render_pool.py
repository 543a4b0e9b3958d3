"""Rendering away from the event loop: worker processes with a memory limit and a deadline.

The sandbox (:mod:`.sandbox`) stops a template that builds too much or runs
too long as it goes, but it runs in the process that also answers probes and ingests alerts.
:class:`RenderPool` renders templates the gateway did not write itself (configured ones and
those typed in the console playground) in separate processes, so that:

* the event loop only waits on a pipe: probes, ingest and delivery go on during a render;
* a worker's address space is capped (``RLIMIT_AS``): a render that gets past the sandbox's
  budget fails with a memory error in the worker, not in the gateway;
* a render that does not answer within its timeout (plus a short grace for the sandbox's own
  clock to stop it cleanly) has its worker killed and replaced: nothing a template does can
  keep the gateway from answering, or from stopping on SIGTERM;
* a template that went past its timeout is cut off for a while (``cut_off`` seconds, the same
  template text): its renders fail at once with :class:`TemplateCutOff`, those already waiting
  for a worker included, so one slow template does not keep the workers from the others. The
  gateway renders the built-in template instead meanwhile.

The worker compiles the templates too (a hostile template can make compiling slow), and keeps
the last few renderers it built, so a configuration is compiled once per worker.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ...storm import AlertBrief
from ..model import Notification
from ..routing import Mentions
from ..workers import WorkerDied, WorkerPool, WorkerTimeout, serve
from .errors import (
    TemplateError,
    TemplateLimitError,
    TemplateRenderError,
    plain_reason,
)
from .renderer import SUMMARY_TEMPLATE, MsgType, Renderer, RendererSettings, RenderReport

__all__ = ["CUT_OFF_SECONDS", "RenderPool", "RenderPoolClosed", "TemplateCutOff", "serve_worker"]

logger = logging.getLogger("wecom_bot.gateway")

_GRACE = 1.0
"""Seconds past a render's timeout before its worker is killed (the sandbox stops it first)."""
_CACHED_RENDERERS = 8
CUT_OFF_SECONDS = 60.0
"""How long the gateway's pool cuts off a template that went past its timeout."""


class RenderPoolClosed(RuntimeError):
    """The gateway is stopping: the render was abandoned (nothing is lost: the journal or the
    caller keeps what was to be rendered)."""


class TemplateCutOff(TemplateLimitError):
    """The template is cut off: a render of it went past its timeout a moment ago, so it is
    not given a worker until ``cut_off`` seconds have passed (see :class:`RenderPool`)."""


_TIMED_OUT = "took longer than"
"""What the reason of a render stopped at its timeout says (the sandbox's or the pool's)."""


@dataclass(frozen=True)
class _Job:
    settings: RendererSettings
    template: str
    notification: Notification | None  # None for a summary
    msgtype: MsgType
    mentions: Mentions | None
    now: datetime
    links: Any = None
    summary: _SummaryJob | None = None
    summarize: bool | None = None  # the form to write (see Renderer.render_check)


@dataclass(frozen=True)
class _SummaryJob:
    """A storm summary to write instead of a notification to render."""

    briefs: tuple[AlertBrief, ...]
    max_messages: int | None
    notifications: int
    running_total: tuple[tuple[str, int], ...] | None = None


class RenderPool:
    """Renders templates in worker processes (see the module docs).

    Args:
        workers: how many renders can run at once (one process each).
        memory_bytes: the address-space limit of each worker process.
        cut_off: seconds a template is cut off after a render of it went past its timeout
            (0: never; the console's playground shows every render's own outcome).
    """

    def __init__(
        self, *, workers: int = 1, memory_bytes: int = 512 * 1024 * 1024, cut_off: float = 0.0
    ) -> None:
        if workers < 1:
            raise ValueError("workers: must be at least 1")
        self.workers = workers
        self.memory_bytes = memory_bytes
        self.cut_off = cut_off
        # (template, summary?, the configured templates) -> monotonic end of its cut-off
        self._cut: dict[tuple[str, bool, tuple[tuple[str, str], ...]], float] = {}
        self.processes = WorkerPool(
            f"{__name__}:serve_worker", workers=workers, memory_bytes=memory_bytes,
            thread_name="wecom-bot-render", respawn=True,
        )  # fmt: skip
        """The worker processes."""

    def start(self) -> None:
        """Start the workers (rendering works without it: they start at first use)."""
        self.processes.start()

    async def render_check(
        self,
        settings: RendererSettings,
        template: str,
        notification: Notification,
        *,
        msgtype: MsgType = "markdown",
        mentions: Mentions | None = None,
        now: datetime,
        links: Any = None,
        summarize: bool | None = None,
    ) -> RenderReport:
        """:meth:`Renderer.render_check` in a worker, with the templates of ``settings``.

        Args:
            settings: the renderer to build (templates, time zone, limits ...).
            template: the template name.
            notification: what to render.
            msgtype: the msgtype to render.
            mentions: who to mention.
            now: the time the render sees (durations, ``now``).
            links: the notification's action links (signed here: workers have no secret).
            summarize: the form to write, as :meth:`Renderer.render_check`'s.

        Raises:
            TemplateError: the template is unknown or does not compile.
            TemplateRenderError: it failed at run time or rendered nothing.
            TemplateLimitError: it went past a bound: the sandbox's, the worker's memory, or
                its timeout (then the worker was killed and replaced).
            RenderPoolClosed: the pool is closed (the gateway is stopping).
        """
        job = _Job(
            settings, template, notification, msgtype, mentions, now, links, summarize=summarize
        )
        return await self._submit(job)

    async def render_summary(
        self,
        settings: RendererSettings,
        briefs: Sequence[AlertBrief],
        *,
        msgtype: MsgType = "markdown",
        max_messages: int | None = None,
        notifications: int = 1,
        running_total: Mapping[str, int] | None = None,
        now: datetime,
    ) -> RenderReport:
        """:meth:`Renderer.render_summary` in a worker (a configured ``summary`` template).

        Raises:
            As :meth:`render_check`.
        """
        totals = None if running_total is None else tuple(running_total.items())
        summary = _SummaryJob(tuple(briefs), max_messages, notifications, totals)
        job = _Job(settings, SUMMARY_TEMPLATE, None, msgtype, None, now, None, summary)
        return await self._submit(job)

    async def _submit(self, job: _Job) -> RenderReport:
        if self.processes.closed:
            raise RenderPoolClosed("the gateway is stopping")
        # A summary is cut off as the summary template, whichever route's notification it was.
        summary = job.summary is not None or job.summarize is True
        key = (SUMMARY_TEMPLATE if summary else job.template, summary, job.settings.templates)
        self._check_cut(key)
        # admitted: it may have waited behind the render that was cut off
        outcome = await self._run(job, admitted=lambda: self._check_cut(key))
        if self.cut_off > 0 and outcome[0] in ("limit", "error") and _TIMED_OUT in str(outcome[1]):
            if key not in self._cut:
                logger.warning(
                    "template %r went past its timeout: cut off for %g s (the built-in "
                    "template renders instead meanwhile)", key[0], self.cut_off,
                )  # fmt: skip
            self._cut[key] = time.monotonic() + self.cut_off
        return _result(outcome, job.template)

    def _check_cut(self, key: tuple[str, bool, tuple[tuple[str, str], ...]]) -> None:
        until = self._cut.get(key)
        if until is None:
            return
        left = until - time.monotonic()
        if left <= 0:
            del self._cut[key]
            return
        raise TemplateCutOff(
            f"template {key[0]!r} is cut off for {left:.0f} s more: a render of it went past "
            "its timeout (render limits)",
            template=key[0],
            reason="cut off: a render of it went past its timeout (render limits)",
        )

    async def _run(self, job: _Job, *, admitted: Callable[[], None]) -> tuple[str, Any]:
        try:
            return await self.processes.run(
                job, job.settings.limits.timeout + _GRACE, admitted=admitted
            )
        except WorkerTimeout:
            return "limit", f"took longer than {job.settings.limits.timeout:g} s (killed)"
        except WorkerDied as exc:
            if self.processes.closed:
                return "closed", "the gateway is stopping"
            logger.warning("render worker died (%s); starting another", exc)
            limit = self.memory_bytes // (1024 * 1024)
            return "limit", f"the render process died (its memory limit is {limit} MiB)"

    def close(self) -> None:
        """Kill the workers (a render in progress fails); the pool cannot be used again."""
        self.processes.close()


def _result(outcome: tuple[str, Any], template: str) -> RenderReport:
    kind, value = outcome
    if kind == "ok":
        report: RenderReport = value
        return report
    if kind == "error":
        name, message, where, line, column, reason = value
        cls = {
            "TemplateError": TemplateError,
            "TemplateRenderError": TemplateRenderError,
            "TemplateLimitError": TemplateLimitError,
        }.get(name, TemplateRenderError)
        raise cls(message, template=where, line=line, column=column, reason=reason)
    if kind == "closed":
        raise RenderPoolClosed(value)
    raise TemplateLimitError(
        f"template {template!r} stopped: {value} (render limits)",
        template=template,
        reason=f"stopped: {value} (render limits)",
    )


# --------------------------------------------------------------------------- the worker


def serve_worker(fd: int, memory_bytes: int) -> None:
    """A render worker's main loop, on the socket ``fd``: build (and keep) renderers, render,
    answer; until the socket closes. Run by :class:`RenderPool` in a fresh interpreter."""
    renderers: OrderedDict[RendererSettings, Renderer] = OrderedDict()
    clock: list[datetime] = []
    serve(fd, memory_bytes, lambda job: _render(job, renderers, clock))


def _render(
    job: _Job, renderers: OrderedDict[RendererSettings, Renderer], clock: list[datetime]
) -> tuple[str, Any]:
    clock[:] = [job.now]
    try:
        renderer = renderers.get(job.settings)
        if renderer is None:
            renderer = Renderer.from_settings(job.settings, clock=lambda: clock[0])
            renderers[job.settings] = renderer
            while len(renderers) > _CACHED_RENDERERS:
                renderers.popitem(last=False)
        renderers.move_to_end(job.settings)
        if job.summary is not None:
            report = renderer.render_summary(
                job.summary.briefs, msgtype=job.msgtype, max_messages=job.summary.max_messages,
                notifications=job.summary.notifications,
                running_total=dict(job.summary.running_total or ()) or None,
            )  # fmt: skip
        else:
            assert job.notification is not None
            report = renderer.render_check(
                job.template, job.notification, msgtype=job.msgtype, mentions=job.mentions,
                links=job.links, summarize=job.summarize,
            )  # fmt: skip
        return "ok", report
    except TemplateError as exc:
        return "error", (
            type(exc).__name__, str(exc), exc.template, exc.line, exc.column, exc.reason,
        )  # fmt: skip
    except MemoryError:
        renderers.clear()
        return "memory", "ran out of memory"
    except Exception as exc:  # e.g. a payload the message model refuses
        message, reason = f"{type(exc).__name__}: {exc}", plain_reason(exc)
        return "error", ("TemplateRenderError", message, job.template, None, None, reason)
