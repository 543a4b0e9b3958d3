"""An MCP server so AI assistants can post to WeCom groups safely (``wecom-bot mcp``).

The tools wrap the SDK: every message type with the models' validation, byte-exact
splitting, the per-key rate limit and a dry run, with keys masked in everything they answer.
Needs the ``mcp`` extra (``pip install 'wecom-bot[mcp]'``).
"""

from .bots import BotEntry, BotRegistry, read_limits
from .server import build_server, run_http, run_stdio
from .tools import TOOL_NAMES, WeComTools

__all__ = [
    "TOOL_NAMES",
    "BotEntry",
    "BotRegistry",
    "WeComTools",
    "build_server",
    "read_limits",
    "run_http",
    "run_stdio",
]
