"""The one worker loop every work queue runs (client-go's processNextWorkItem).

A worker takes the earliest due key, runs one pass for it and marks it done, so a key is
never in two passes at once (the queue guarantees it). A pass that succeeds forgets the key's
failures; a write that lost an optimistic-concurrency race (409) refreshes what the cache had
stale and goes again at once; any other failure goes again after a rate-limited backoff that
grows per consecutive failure of that key and honours a server's Retry-After. Every pass is
timed and every retry counted, per queue.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

from kubernetes.client.exceptions import ApiException

from gpurental import metrics
from gpurental.deadlines import Backoff
from gpurental.k8s import Conflict
from gpurental.workqueue import WorkQueue

log = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)

Pass = Callable[[K], Awaitable[None]]
DEFAULT_BACKOFF = Backoff()


def retry_after(exc: Exception) -> float | None:
    """A 429's Retry-After, in seconds, if the server sent one."""
    if isinstance(exc, ApiException) and exc.status == 429:
        value = (exc.headers or {}).get("Retry-After")
        if value and value.isdigit():
            return float(value)
    return None


class WorkLoop(Generic[K]):
    """Runs `reconcile` for the keys of one queue, with `workers` passes in parallel."""

    def __init__(self, name: str, queue: WorkQueue[K], reconcile: Pass[K], *,
                 refresh: Pass[K] | None = None, workers: int = 1,
                 backoff: Backoff = DEFAULT_BACKOFF, timed: bool = False) -> None:
        self.name = name  # the queue's label in metrics and logs: rentals, wallets, offers
        self.queue = queue
        self._reconcile = reconcile
        self._refresh = refresh  # re-reads a key's object after a conflict
        self.workers = workers
        self.backoff = backoff
        self._timed = timed  # rental passes feed gpurental_reconcile_duration_seconds
        self._failures: dict[K, int] = {}

    async def run(self) -> None:
        await asyncio.gather(*(self._work() for _ in range(self.workers)))

    async def _work(self) -> None:
        while True:
            try:
                await self.process_next()
            except Exception:  # a worker must outlive any one pass: the others wait on it
                log.exception("%s worker: unexpected error; continuing", self.name)

    async def process_next(self) -> None:
        key = await self.queue.get()
        try:
            await self._handle(key)
        finally:
            self.queue.done(key)

    async def _handle(self, key: K) -> None:
        started = time.monotonic()
        result = "ok"
        try:
            await self._reconcile(key)
            self._failures.pop(key, None)
        except Conflict:
            result = "conflict"
            try:
                await self._after_conflict(key)
            except Exception as exc:  # the re-read failed too (a 500, a timeout)
                result = "error"
                self._retry_later(key, exc)
        except Exception as exc:
            result = "error"
            self._retry_later(key, exc)
        finally:
            if self._timed:
                metrics.labelled(metrics.RECONCILE_DURATION, result).observe(
                    time.monotonic() - started)

    async def _after_conflict(self, key: K) -> None:
        # The cache held an older version than the server: a pass on it again would lose
        # the same race. Re-read it (or, without a way to, let the watch catch up briefly).
        if self._refresh is not None:
            await self._refresh(key)
            self.queue.add(key)
        else:
            self.queue.add(key, self.backoff.base / 5)

    def _retry_later(self, key: K, exc: Exception) -> None:
        failures = self._failures.get(key, 0) + 1
        self._failures[key] = failures
        delay = self.backoff.delay(failures, retry_after(exc))
        if self._timed:
            metrics.RECONCILE_ERRORS.inc()
        metrics.labelled(metrics.WORK_RETRIES, self.name).inc()
        log.warning("%s pass of %s failed (%s); retrying in %.1fs", self.name, key, exc, delay,
                    exc_info=not isinstance(exc, ApiException))
        self.queue.add(key, delay)

    def forget(self, key: K) -> None:
        """The object is gone: its failures no longer count."""
        self._failures.pop(key, None)
