"""A local emulator of the WeCom group-robot webhook API, for tests and development.

Run it with ``wecom-bot emulator`` or build it in-process::

    from wecom_bot.emulator import EmulatorSettings, create_app

    app = create_app(EmulatorSettings(db=":memory:"))

Production code (gateway, CLI send) never imports this package.
"""

from .app import create_app
from .faults import Fault, FaultKind
from .ratelimit import RateSpec
from .settings import EmulatorSettings
from .state import Emulator

__all__ = ["Emulator", "EmulatorSettings", "Fault", "FaultKind", "RateSpec", "create_app"]
