"""Informer: list + watch into a cache, surviving disconnects and 410 Gone."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import aiohttp

from .client import ApiError, KubeClient
from .objects import Obj, object_key

log = logging.getLogger("kubesim.node")

Handler = Callable[[str, Obj, Obj | None], None]


class Informer:
    """Keeps ``cache`` equal to a collection and calls ``handler(type, obj, old)`` on changes.

    Watches resume from the last seen resourceVersion (bookmarks included); a ``410 Gone``
    answer or ERROR event triggers a relist whose differences are replayed as synthetic
    ADDED / MODIFIED / DELETED events, so the handler never misses a transition.
    """

    def __init__(self, client: KubeClient, path: str, handler: Handler, *,
                 watch_timeout: int = 240, page_size: int = 500):
        self.client = client
        self.path = path
        self.handler = handler
        self.cache: dict[str, Obj] = {}
        self.synced = asyncio.Event()
        self._rv = ""
        self._watch_timeout = watch_timeout
        self._page_size = page_size

    async def run(self) -> None:
        failures = 0
        while True:
            try:
                await self._relist()
                failures = 0
                await self._watch_until_gone()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures += 1
                log.warning("informer %s: %s; relisting", self.path, exc)
                await asyncio.sleep(min(0.1 * 2**failures, 5.0))

    async def _list_all(self) -> tuple[list[Obj], str]:
        items: list[Obj] = []
        params = {"limit": str(self._page_size)}
        while True:
            body = await self.client.request("GET", self.path, params=params)
            items.extend(body.get("items") or [])
            meta = body.get("metadata") or {}
            if not meta.get("continue"):
                return items, str(meta.get("resourceVersion", ""))
            params = {"limit": str(self._page_size), "continue": meta["continue"]}

    async def _relist(self) -> None:
        items, self._rv = await self._list_all()
        old_cache = dict(self.cache)
        # Mutated in place: the scheduler and kubelet hold references to this dict.
        self.cache.clear()
        self.cache.update((object_key(o), o) for o in items)
        for key, old in old_cache.items():
            if key not in self.cache:
                self._emit("DELETED", old, old)
        for key, obj in self.cache.items():
            previous = old_cache.get(key)
            if previous is None:
                self._emit("ADDED", obj, None)
            elif _rv_of(previous) != _rv_of(obj):
                self._emit("MODIFIED", obj, previous)
        self.synced.set()

    async def _watch_until_gone(self) -> None:
        """Watch from the last resourceVersion; return when a relist is needed (410)."""
        while True:
            params = {"watch": "true", "resourceVersion": self._rv,
                      "allowWatchBookmarks": "true", "timeoutSeconds": str(self._watch_timeout)}
            try:
                async for event in self.client.watch(self.path, params,
                                                     read_timeout=self._watch_timeout + 30):
                    if not self._apply(event):
                        return
            except ApiError as exc:
                if exc.status == 410:
                    return
                raise
            except (aiohttp.ClientError, TimeoutError) as exc:
                log.debug("watch %s interrupted (%s); resuming from %s", self.path, exc, self._rv)
                await asyncio.sleep(0.2)

    def _apply(self, event: Obj) -> bool:
        """Apply one watch event; False when the server says our resourceVersion is gone."""
        kind, obj = event.get("type"), event.get("object") or {}
        if kind == "ERROR":
            if obj.get("code") == 410:
                return False
            raise ApiError(int(obj.get("code") or 500), obj)
        self._rv = _rv_of(obj) or self._rv
        if kind == "BOOKMARK":
            return True
        key = object_key(obj)
        old = self.cache.get(key)
        if kind == "DELETED":
            self.cache.pop(key, None)
        else:
            self.cache[key] = obj
        self._emit(str(kind), obj, old)
        return True

    def _emit(self, kind: str, obj: Obj, old: Obj | None) -> None:
        try:
            self.handler(kind, obj, old)
        except Exception:
            log.exception("handler for %s failed on %s %s", self.path, kind, object_key(obj))


def _rv_of(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion", ""))
