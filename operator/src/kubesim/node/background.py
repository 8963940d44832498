"""Fire-and-forget work (status writes, Events, bindings) with bounded concurrency."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from .client import ApiError

log = logging.getLogger("kubesim.node")


class Background:
    """Runs fire-and-forget coroutines with bounded concurrency, keeping references to them."""

    def __init__(self, concurrency: int = 16):
        self._sem = asyncio.Semaphore(concurrency)
        self._tasks: set[asyncio.Task[None]] = set()

    def spawn(self, coro: Any, name: str = "") -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(self._guarded(coro, name))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _guarded(self, coro: Any, name: str) -> None:
        try:
            async with self._sem:
                await coro
        except asyncio.CancelledError:
            raise
        except ApiError as exc:
            if exc.status not in (404, 409):
                log.warning("%s: %s", name, exc)
        except Exception:
            log.exception("%s failed", name)

    async def cancel_all(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
