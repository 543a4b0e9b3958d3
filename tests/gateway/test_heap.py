"""The gateway process's heap settling (``wecom_bot.gateway.heap``), in fresh interpreters:
freezing is process-wide, so it is never tried inside the test process."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from wecom_bot.gateway import heap


def run_python(code: str) -> dict[str, object]:
    """Run ``code`` in a fresh interpreter; it prints one JSON object."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_settle_freezes_what_lives_and_makes_young_collections_rarer() -> None:
    result = run_python(
        """
        import gc, json
        from wecom_bot.gateway import heap
        before = (gc.get_freeze_count(), heap.settled())
        heap.settle()
        print(json.dumps({"before": before, "frozen": gc.get_freeze_count(),
                          "threshold": gc.get_threshold(), "settled": heap.settled()}))
        """
    )
    assert result["before"] == [0, False]
    assert isinstance(result["frozen"], int) and result["frozen"] > 1000
    assert result["threshold"] == [heap.YOUNG_THRESHOLD, 20, 20]
    assert result["settled"] is True


def test_resettle_collects_what_a_reload_left_and_freezes_again() -> None:
    result = run_python(
        """
        import gc, json, weakref
        from wecom_bot.gateway import heap

        class Config:  # a stand-in for a runtime: cyclic, so only the collector frees it
            pass

        def cycle():
            old = Config()
            old.me = old
            return weakref.ref(old)

        heap.resettle()  # before settle: does nothing
        untouched = gc.get_freeze_count() == 0
        old = cycle()
        heap.settle()
        # An unreachable cycle frozen by settle() would never be freed; settle collects first.
        freed_by_settle = old() is None
        kept = Config(); kept.me = kept
        ref = weakref.ref(kept)
        heap.settle()
        del kept  # what a reload drops: frozen, so only resettle() can free it
        gc.collect()
        frozen_survives = ref() is not None
        heap.resettle()
        print(json.dumps({"untouched": untouched, "freed_by_settle": freed_by_settle,
                          "frozen_survives": frozen_survives, "freed": ref() is None,
                          "frozen_again": gc.get_freeze_count() > 1000}))
        """
    )
    assert result == {
        "untouched": True,
        "freed_by_settle": True,
        "frozen_survives": True,
        "freed": True,
        "frozen_again": True,
    }
