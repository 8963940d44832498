"""The garbage collector, tuned for a long-lived heap of ten thousand rentals' cache.

CPython's cyclic collector stops the event loop for as long as it takes to walk every tracked
object of the generations it collects; a full (generation-2) collection walks the whole heap,
hundreds of milliseconds at ten thousand rentals, and every such pause delays whatever stop
or pause the operator was about to carry out. The cache (views, status dicts, kopf's bodies) is
long-lived and acyclic: walking it again and again finds nothing.

So: (1) the young generations are collected less often (most garbage here is freed by
reference counting, the collector only ever finds cycles), (2) after each `refreeze` period the
survivors of a collection of what is not yet frozen move to the permanent generation
(`gc.freeze()`), which no later collection walks, so an automatic full collection only walks
what arrived since, and (3) once per `thaw` period everything is unfrozen and collected once,
so cyclic garbage among frozen objects cannot pile up for longer than that. Every pause is
timed into gpurental_gc_pause_seconds{generation}.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from typing import Any

from gpurental import metrics

log = logging.getLogger(__name__)

# gen0 at 50,000 allocations (default 700): a young collection every few hundred watch
# events, not every few; gen1 and gen2 keep CPython's ratios.
THRESHOLDS = (50_000, 10, 10)
REFREEZE_SECONDS = 60.0
THAW_SECONDS = 3600.0


class PauseTimer:
    """A gc.callbacks hook timing each collection into the pause histogram."""

    def __init__(self) -> None:
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        elif self._started:
            metrics.GC_PAUSE.labels(generation=str(info.get("generation"))).observe(
                time.perf_counter() - self._started)
            self._started = 0.0


def install() -> None:
    gc.set_threshold(*THRESHOLDS)
    if not any(isinstance(cb, PauseTimer) for cb in gc.callbacks):
        gc.callbacks.append(PauseTimer())


def freeze_survivors() -> int:
    """Collect what is not frozen yet and freeze what survives; returns the frozen count."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def thaw() -> None:
    """Unfreeze everything and collect it once: cyclic garbage among frozen objects (rare:
    the cache holds no cycles) is reclaimed at most a thaw period late."""
    gc.unfreeze()
    gc.collect()


async def keep_tuned(refreeze: float = REFREEZE_SECONDS, thaw_every: float = THAW_SECONDS
                     ) -> None:
    """The periodic part, as one task for the operator's lifetime."""
    since_thaw = 0.0
    while True:
        await asyncio.sleep(refreeze)
        since_thaw += refreeze
        started = time.perf_counter()
        if since_thaw >= thaw_every:
            since_thaw = 0.0
            thaw()
        frozen = freeze_survivors()
        log.debug("gc: %d objects frozen in %.0f ms", frozen,
                  (time.perf_counter() - started) * 1000)
