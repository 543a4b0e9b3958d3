"""Keep the garbage collector from pausing the gateway mid-request.

CPython's cyclic collector stops every thread while it runs, and a full (oldest-generation)
collection walks every container object the process holds. A started gateway holds about
85,000 of them (FastAPI, pydantic, Jinja2, its templates and config) that live as long as
the process; walking them took 50-90 ms each time here, several times a minute under load,
and that pause was most of the ingest p99. :func:`settle` moves what exists once the gateway
has started out of the collector's sight (:func:`gc.freeze`) and makes young collections
rarer, so a full collection walks only what arrived since. Reference counting still frees
everything that is not part of a cycle, and the collector still finds cycles among newer
objects.

Only the process that runs the gateway server calls :func:`settle` (``wecom-bot gateway``);
an application embedding :func:`wecom_bot.gateway.app.create_app` owns its own heap.
"""

from __future__ import annotations

import gc

__all__ = ["YOUNG_THRESHOLD", "resettle", "settle", "settled"]

YOUNG_THRESHOLD = 10_000
"""Allocations (minus deallocations) of container objects between two youngest-generation
collections; CPython's default is 700. A request allocates a few hundred, most of them gone
by its end, so a collection every ~700 promoted live request objects to older generations
and fed the full collections."""

_OLDER_THRESHOLDS = (20, 20)

_settled = False


def settle() -> None:
    """Collect once, freeze what is left (it lives as long as the process) and raise the
    youngest generation's threshold. Call once the server has started."""
    global _settled
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, *_OLDER_THRESHOLDS)
    _settled = True


def resettle() -> None:
    """After a config reload: give the frozen objects back to the collector, collect what the
    old config left unreachable, and freeze again. Does nothing unless :func:`settle` ran."""
    if not _settled:
        return
    gc.unfreeze()
    gc.collect()
    gc.freeze()


def settled() -> bool:
    """Whether :func:`settle` ran in this process."""
    return _settled
