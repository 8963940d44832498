"""Watch fan-out: a bounded event history per collection and one queue per watcher.

Each event carries the already-serialized object, so fanning out to N watchers costs N queue
puts and N small byte concatenations, however long the history grows; resuming a watch finds
its place in the history by binary search.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Matcher = Callable[[dict[str, Any]], bool]


@dataclass(eq=False, slots=True)
class Stored:
    """An object as stored: the dict (never mutated once stored) and its JSON bytes."""

    obj: dict[str, Any]
    raw: bytes

    @property
    def namespace(self) -> str:
        return self.obj["metadata"].get("namespace", "")

    @property
    def rv(self) -> int:
        return int(self.obj["metadata"]["resourceVersion"])


@dataclass(eq=False, slots=True)
class Event:
    """One change: the new state (or the last state, for DELETED) and the previous state."""

    rv: int
    type: str  # ADDED | MODIFIED | DELETED
    new: Stored
    old: Stored | None

    def line(self, kind: str) -> bytes:
        """`{"type":...,"object":...}\\n` around the stored bytes (not kept: history would
        hold every object twice for a memcpy saved per watcher)."""
        return b'{"type":"' + kind.encode() + b'","object":' + self.new.raw + b"}\n"


class Watcher:
    """One open watch: filters the collection's events and queues what it must send."""

    MAX_BACKLOG = 100_000  # a watcher this far behind is dropped, as the apiserver does

    def __init__(self, namespace: str | None, match: Matcher | None) -> None:
        self.namespace = namespace
        self.match = match
        self.queue: asyncio.Queue[tuple[Event, str] | None] = asyncio.Queue()
        self.closed = False

    def visible(self, stored: Stored | None) -> bool:
        if stored is None:
            return False
        if self.namespace is not None and stored.namespace != self.namespace:
            return False
        return self.match is None or self.match(stored.obj)

    def offer(self, event: Event) -> None:
        """Queue the event as this watcher sees it (selectors can turn MODIFIED into ADDED)."""
        now = self.visible(event.new)
        if event.type == "ADDED":
            kind = "ADDED" if now else ""
        elif event.type == "DELETED":
            kind = "DELETED" if now else ""
        else:
            before = self.visible(event.old)
            kind = ("MODIFIED" if before else "ADDED") if now else ("DELETED" if before else "")
        if kind:
            self.push(event, kind)

    def push(self, event: Event, kind: str) -> None:
        if self.closed:
            return
        if self.queue.qsize() > self.MAX_BACKLOG:
            self.close()
            return
        self.queue.put_nowait((event, kind))

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.queue.put_nowait(None)


class History:
    """The last `size` events of one collection, and its open watchers."""

    def __init__(self, size: int) -> None:
        self.events: deque[Event] = deque(maxlen=size)
        self.compacted_rv = 0  # events at or below this version are gone
        self.watchers: set[Watcher] = set()

    def append(self, event: Event) -> None:
        if len(self.events) == self.events.maxlen:
            self.compacted_rv = self.events[0].rv
        self.events.append(event)
        for watcher in list(self.watchers):
            watcher.offer(event)

    def since(self, rv: int) -> list[Event] | None:
        """Events newer than `rv`, or None when some of them were compacted away (410)."""
        if rv < self.compacted_rv:
            return None
        events = self.events
        if not events or events[-1].rv <= rv:
            return []
        # Binary search: versions are increasing along the deque.
        lo, hi = 0, len(events)
        while lo < hi:
            mid = (lo + hi) // 2
            if events[mid].rv <= rv:
                lo = mid + 1
            else:
                hi = mid
        return [events[i] for i in range(lo, len(events))]
