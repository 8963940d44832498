"""Serving one watch request: initial state or replay from a resourceVersion, then live events.

Follows the apiserver: no resourceVersion (or "0") starts with synthetic ADDED events for the
current state; a specific version replays only newer events, or answers a `410 Expired` ERROR
event when those were compacted; bookmarks are sent when allowed; `timeoutSeconds` ends it.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from . import errors, tables
from .api import render, selector, wants_table
from .encoding import dumps
from .faults import FaultRule
from .resources import ResourceType
from .routing import Target
from .store import Store
from .watch import Event, Watcher

DEFAULT_TIMEOUT = 1800.0  # the apiserver's --min-request-timeout, randomized up to twice that


class WatchOptions:
    def __init__(self, query: Mapping[str, str], accept: str) -> None:
        self.rv = query.get("resourceVersion") or ""
        self.bookmarks = query.get("allowWatchBookmarks") == "true"
        self.send_initial = query.get("sendInitialEvents") == "true"
        self.table = wants_table(accept)
        self.include = query.get("includeObject", "Metadata")
        try:
            asked = float(query.get("timeoutSeconds") or 0)
        except ValueError as exc:
            raise errors.bad_request(f"invalid timeoutSeconds: {query['timeoutSeconds']}") \
                from exc
        # 0 or absent: the server's own randomized request timeout.
        self.timeout = asked if asked > 0 else DEFAULT_TIMEOUT * (1 + random.random())


class WatchStream:
    """One open watch from registration to close."""

    def __init__(self, store: Store, target: Target, query: Mapping[str, str], accept: str,
                 bookmark_interval: float, faults: list[FaultRule]) -> None:
        self.store = store
        self.rt: ResourceType = target.rt
        self.opts = WatchOptions(query, accept)
        self.bookmark_interval = bookmark_interval
        self.faults = [f for f in faults if f.watch]
        self.sent = 0
        self.table_headers_sent = False
        self.history = store.collection(self.rt).history
        self.watcher = Watcher(target.namespace, selector(target, query))

    def start(self) -> list[bytes] | None:
        """Register the watcher; returns lines to send first, or None for 410 Gone.

        Synchronous: nothing can be written between taking the snapshot and registering.
        """
        opts = self.opts
        lines: list[bytes] = []
        if opts.send_initial or opts.rv in ("", "0"):
            for stored in self.store.collection(self.rt).iter(self.watcher.namespace):
                if self.watcher.visible(stored):
                    lines.append(self._line("ADDED", stored.obj, render(self.rt, stored)))
            if opts.send_initial and opts.bookmarks:
                lines.append(self._bookmark(initial_end=True))
        else:
            try:
                since = int(opts.rv)
            except ValueError as exc:
                raise errors.bad_request(f"invalid resource version: {opts.rv}") from exc
            events = self.history.since(since)
            if events is None:
                return None
            for event in events:
                self.watcher.offer(event)
        self.history.watchers.add(self.watcher)
        return lines

    def stop(self) -> None:
        self.history.watchers.discard(self.watcher)
        self.watcher.closed = True

    def gone_line(self) -> bytes:
        since = self.opts.rv
        status = errors.ApiError(410, "Expired",
                                 f"too old resource version: {since} "
                                 f"({self.history.compacted_rv + 1})").status()
        return dumps({"type": "ERROR", "object": status}) + b"\n"

    def _line(self, kind: str, obj: dict[str, Any], raw: bytes) -> bytes:
        if self.opts.table:
            meta = {"resourceVersion": obj["metadata"].get("resourceVersion", "")}
            tab = tables.table(self.rt, [obj], meta, self.opts.include,
                               headers=not self.table_headers_sent)
            self.table_headers_sent = True
            return dumps({"type": kind, "object": tab}) + b"\n"
        return b'{"type":"' + kind.encode() + b'","object":' + raw + b"}\n"

    def _event_line(self, event: Event, kind: str) -> bytes:
        if self.opts.table or event.new.obj.get("apiVersion") != self.rt.api_version:
            return self._line(kind, event.new.obj, render(self.rt, event.new))
        return event.line(kind)

    def _bookmark(self, initial_end: bool = False) -> bytes:
        meta: dict[str, Any] = {"resourceVersion": str(self.store.rv)}
        if initial_end:
            meta["annotations"] = {"k8s.io/initial-events-end": "true"}
        obj = {"kind": self.rt.kind, "apiVersion": self.rt.api_version, "metadata": meta}
        return dumps({"type": "BOOKMARK", "object": obj}) + b"\n"

    def _fault_after(self) -> FaultRule | None:
        for rule in self.faults:
            if self.sent >= rule.after_events:
                return rule
        return None

    async def run(self, request: web.BaseRequest, resp: web.StreamResponse,
                  first: list[bytes]) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.opts.timeout
        if first:
            await resp.write(b"".join(first))
            self.sent += len(first)
        queue = self.watcher.queue
        while True:
            fault = self._fault_after()
            if fault is not None:
                if fault.watch == "gone":
                    await resp.write(self.gone_line())
                return
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            wait = min(remaining, self.bookmark_interval) if self.opts.bookmarks else remaining
            try:
                item = await asyncio.wait_for(queue.get(), wait)
            except TimeoutError:
                if self.opts.bookmarks and deadline - loop.time() > 0:
                    await resp.write(self._bookmark())
                continue
            if item is None:
                return
            chunk = [self._event_line(*item)]
            while not queue.empty() and len(chunk) < 512:
                nxt = queue.get_nowait()
                if nxt is None:
                    await resp.write(b"".join(chunk))
                    return
                chunk.append(self._event_line(*nxt))
            await resp.write(b"".join(chunk))
            self.sent += len(chunk)
