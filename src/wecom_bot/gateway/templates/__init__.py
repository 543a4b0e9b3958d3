"""Templates: the stage that writes an alert as WeCom messages.

:mod:`.renderer` renders notifications with the built-in templates (the ``.j2`` files here) or
configured ones, in a sandbox (:mod:`.sandbox`) where every sender string is escaped for the
msgtype (:mod:`.untrusted`, :mod:`.escaping`); :mod:`.summaries` writes storms from the alerts
themselves; :mod:`.render_pool` runs configured templates away from the event loop.
"""

from .renderer import (
    BUILTIN_TEMPLATES,
    AlertView,
    MsgType,
    NotificationView,
    RenderedPart,
    Renderer,
    RendererSettings,
    RenderLimits,
    RenderReport,
    TemplateError,
    TemplateLimitError,
    TemplateRenderError,
)

__all__ = [
    "BUILTIN_TEMPLATES",
    "AlertView",
    "MsgType",
    "NotificationView",
    "RenderLimits",
    "RenderReport",
    "RenderedPart",
    "Renderer",
    "RendererSettings",
    "TemplateError",
    "TemplateLimitError",
    "TemplateRenderError",
]
