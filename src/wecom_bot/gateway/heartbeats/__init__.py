"""Heartbeats: the gateway as the dead man's switch of the alerting pipeline.

Alertmanager's always-firing ``Watchdog`` (kube-prometheus ships it) reaches the gateway every
``repeat_interval``; when it stops for ``expect_every + grace``, the pipeline is broken and
the groups hear it once; when it comes back, they hear that once too. :mod:`.match` takes the
heartbeats out of notifications before routing (the runtime holds them compiled);
:mod:`.switch` keeps their state in the store and writes the messages (:mod:`.messages`).
"""

from .match import Heartbeat, Taken, compile_heartbeats, take

__all__ = ["Heartbeat", "Taken", "compile_heartbeats", "take"]
