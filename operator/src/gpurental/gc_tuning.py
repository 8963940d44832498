"""The garbage collector, kept off the stop path of a long-lived heap of rentals' cache.

CPython's cyclic collector stops the event loop for as long as it takes to walk every tracked
object of the generations it collects; a full (generation-2) collection walks the whole heap,
hundreds of milliseconds at ten thousand rentals, and every such pause delays whatever stop
or pause the operator was about to carry out. The cache (views, status dicts, kopf's bodies) is
long-lived and acyclic: walking it again and again finds nothing.

So every `refreeze` seconds whatever survived so far moves to the permanent generation
(`gc.freeze()`, no collection: nearly free), which no later collection walks; a full
collection then walks only what arrived since. The young generations keep CPython's
thresholds: they collect the short-lived cycles (tasks, exceptions) before they could be
frozen, in pauses of a millisecond or two. (Larger young thresholds made every gen-1
collection walk hundreds of thousands of objects: p99 stop latency at 1,000 rentals went from
9 ms to 172 ms.) Once per `thaw` period everything is unfrozen and collected once, so cycles
that died frozen are reclaimed at most that late. Every pause is timed into
gpurental_gc_pause_seconds{generation}.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from typing import Any

from gpurental import metrics

log = logging.getLogger(__name__)

REFREEZE_SECONDS = 10.0
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
    if not any(isinstance(cb, PauseTimer) for cb in gc.callbacks):
        gc.callbacks.append(PauseTimer())


def freeze_survivors() -> None:
    """Freeze everything tracked so far. (Never ask `gc.get_freeze_count()` here: it counts
    by walking the frozen list, millions of objects, a 2 % CPU cost every 10 s at 3,000
    rentals in a profile; the freeze itself splices two lists.)"""
    gc.freeze()


def thaw() -> None:
    """Unfreeze everything and collect it once: cycles that died while frozen (rare: the
    cache holds none) are reclaimed at most a thaw period late."""
    gc.unfreeze()
    gc.collect()


async def keep_tuned(refreeze: float = REFREEZE_SECONDS, thaw_every: float = THAW_SECONDS
                     ) -> None:
    """The periodic part, as one task for the operator's lifetime."""
    since_thaw = 0.0
    while True:
        await asyncio.sleep(refreeze)
        since_thaw += refreeze
        if since_thaw >= thaw_every:
            since_thaw = 0.0
            started = time.perf_counter()
            thaw()
            log.info("gc: thawed and collected in %.0f ms", (time.perf_counter() - started) * 1000)
        freeze_survivors()
