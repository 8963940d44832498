"""A delaying, de-duplicating work queue of rental keys (client-go's workqueue, in asyncio).

Owns the rule that one rental is reconciled by at most one worker at a time: a key added while
it is being processed is parked and handed out again when that worker is done, due when it
was parked (an urgent key stays urgent). A key added twice keeps its earliest due time, which
is how every deadline (provisioning timeout, heartbeat, expiry, wallet exhaustion) shares one
timer instead of a task per rental.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


URGENT_HEADSTART = 86_400.0  # seconds an urgent key is dated back: ahead of any real backlog


class WorkQueue(Generic[K]):
    def __init__(self, monotonic: Callable[[], float]) -> None:
        self._monotonic = monotonic
        self._heap: list[tuple[float, int, K]] = []
        self._due: dict[K, float] = {}  # key -> earliest due time of its live heap entry
        self._processing: set[K] = set()
        self._parked: dict[K, float] = {}  # re-added while processing
        self._seq = itertools.count()
        self._wakeup = asyncio.Event()
        # Only the worker holding this lock watches the clock; the others wait on the lock,
        # which hands over to one of them at a time: an add() wakes one worker, never all of
        # them (32, at every heartbeat of ten thousand rentals) to find nothing to do.
        self._leader = asyncio.Lock()

    def __len__(self) -> int:
        return len(self._due) + len(self._parked)

    def add(self, key: K, delay: float = 0.0, urgent: bool = False) -> None:
        """Queue key after delay seconds. An urgent key goes before every ordinary due one:
        a user's stop must not wait behind a backlog of overdue heartbeats (at a thousand
        running rentals that backlog made stop latency seconds instead of milliseconds)."""
        due = self._monotonic() + max(delay, 0.0) - (URGENT_HEADSTART if urgent else 0.0)
        if key in self._processing:
            self._parked[key] = min(due, self._parked.get(key, due))
            return
        self._schedule(key, due)

    def _schedule(self, key: K, due: float) -> None:
        if key in self._due and self._due[key] <= due:
            return
        self._due[key] = due
        heapq.heappush(self._heap, (due, next(self._seq), key))
        self._wakeup.set()

    def due_in(self, key: K) -> float | None:
        """Seconds until the key is due, if it is queued."""
        due = self._due.get(key, self._parked.get(key))
        return None if due is None else due - self._monotonic()

    async def get(self) -> K:
        """Wait for the earliest due key and mark it as being processed."""
        async with self._leader:
            while True:
                self._drop_stale()
                wait = None
                if self._heap:
                    due, _, key = self._heap[0]
                    wait = due - self._monotonic()
                    if wait <= 0:
                        heapq.heappop(self._heap)
                        del self._due[key]
                        self._processing.add(key)
                        return key
                self._wakeup.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(wait):
                        await self._wakeup.wait()

    def done(self, key: K) -> None:
        self._processing.discard(key)
        due = self._parked.pop(key, None)
        if due is not None:
            # Its due time as parked, not as a delay from now: a stop seen during the pass
            # keeps its headstart (re-added "now", it went behind every overdue heartbeat:
            # a 17 s stop at ten thousand running).
            self._schedule(key, due)

    def _drop_stale(self) -> None:
        # Entries superseded by an earlier due time stay in the heap until they surface.
        while self._heap:
            due, _, key = self._heap[0]
            if self._due.get(key) == due:
                return
            heapq.heappop(self._heap)
