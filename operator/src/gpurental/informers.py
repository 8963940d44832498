"""List-then-watch of one kind of object, as client-go's reflector does it.

The operator's only way of reading the API's stream (kopf's watches are not used: measured at
3,000 running rentals, kopf's per-event processing was a fifth of the operator's CPU, and every
heartbeat comes back as a watch event). An informer lists its kind, hands the listing over,
then watches from the listing's resourceVersion, with bookmarks so a reconnect resumes where it
left off; when the server says that version is gone (410) it lists again and reports what
vanished in between as VANISHED, which a watch alone would never say.

It runs as a task on the event loop, over the operator's own aiohttp client: the listing in
pages (`limit`/`continue`, as client-go's reflector), so no single decode holds the loop for
long, and the watch's lines fed as they arrive, the loop given a turn every SLICE of them, so a
stop arriving in a burst of heartbeat echoes waits for one slice, not the burst.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from kubernetes.client.exceptions import ApiException

from gpurental.k8s import Kube
from gpurental.observed import controller_uid

log = logging.getLogger(__name__)

DELETED = "DELETED"
# A listed object that vanished while the watch was down: its last known identity only.
VANISHED = "VANISHED"
# Reconnect before the server's own timeout, so a silently dead connection is noticed: the
# server then replays from the last version seen (or a bookmark).
WATCH_SECONDS = 270
READ_TIMEOUT = WATCH_SECONDS + 30
MAX_BACKOFF = 30.0
# Objects fed per turn of the event loop: a listing of ten thousand rentals, or a burst of
# watch events, is fed in slices, so a stop arriving meanwhile waits for one slice.
SLICE = 256
# Watch events decoded and fed per turn: each costs a decode and a cache update (about 0.1 ms
# for a rental), so a stop's event never waits behind more than a few milliseconds of them.
EVENT_SLICE = 32
PAGE = 500  # objects per page of a listing (client-go's reflector asks for 500 too)

Sink = Callable[[str, dict[str, Any]], None]  # (event type, object)


@dataclass(frozen=True)
class Resource:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    label_selector: str | None = None

    def path(self, namespace: str | None) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else "/api/v1"
        if namespace and self.namespaced:
            return f"{base}/namespaces/{namespace}/{self.plural}"
        return f"{base}/{self.plural}"

    def query(self) -> dict[str, str]:
        return {"labelSelector": self.label_selector} if self.label_selector else {}


class Expired(Exception):
    """The watch's resourceVersion is older than the server keeps (410 Gone): list again."""


async def _lines(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """The stream's lines (one JSON watch event each), as they arrive, however long."""
    buffer = b""
    async for chunk in chunks:
        buffer += chunk
        *complete, buffer = buffer.split(b"\n")
        for line in complete:
            if line.strip():
                yield line


Identity = tuple[str, str, str, str | None]  # namespace, name, uid, controlling owner's uid


def _identity(obj: dict[str, Any]) -> Identity:
    meta = obj.get("metadata") or {}
    return (meta.get("namespace") or "", meta.get("name") or "", meta.get("uid") or "",
            controller_uid(obj))


def _stub(identity: Identity) -> dict[str, Any]:
    """What a VANISHED object is reported as: enough to find it, and its rental, again."""
    namespace, name, uid, owner = identity
    meta: dict[str, Any] = {"name": name, "uid": uid}
    if namespace:
        meta["namespace"] = namespace
    if owner:
        meta["ownerReferences"] = [{"controller": True, "uid": owner}]
    return {"metadata": meta}


class Informer:
    """One kind in one namespace (or all of them), fed to `sink` on the event loop."""

    def __init__(self, kube: Kube, resource: Resource, namespace: str | None,
                 sink: Sink) -> None:
        self.kube = kube
        self.resource = resource
        self.namespace = namespace
        self.sink = sink
        self.synced = asyncio.Event()  # the first listing has been handed to the sink
        self._path = resource.path(namespace)
        self._task: asyncio.Task[None] | None = None
        self._version: str | None = None  # where the next watch starts
        self.known: dict[tuple[str, str], Identity] = {}
        # During a listing: what was known before it (None when no listing is under way).
        self._before: dict[tuple[str, str], Identity] | None = None

    def __repr__(self) -> str:
        return f"<Informer {self._path}>"

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"watch{self._path}")

    async def close(self) -> None:
        """Stop the stream (its connection closed) and wait until it has."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        failures = 0
        while True:
            try:
                if self._version is None:
                    await self._list()
                await self._watch()
                failures = 0
            except Expired:
                log.info("%s: resourceVersion expired; listing again", self._path)
                self._version = None
            except Exception as exc:
                failures += 1
                delay = min(MAX_BACKOFF, 0.5 * 2 ** min(failures, 6))
                level = logging.WARNING if failures < 3 or failures % 20 == 0 else logging.DEBUG
                log.log(level, "%s: %s; retrying in %.1fs", self._path, _why(exc), delay)
                await asyncio.sleep(delay)

    async def _list(self) -> None:
        self._listing_starts()
        query = {**self.resource.query(), "limit": str(PAGE)}
        while True:
            try:
                page = await self.kube.list_page(self._path, query)
            except ApiException as exc:
                if exc.status == 410:  # the continue token expired: list from the start
                    raise Expired from None
                raise
            items = page.get("items") or []
            for start in range(0, len(items), SLICE):
                self._listed(items[start:start + SLICE])
                await asyncio.sleep(0)
            meta = page.get("metadata") or {}
            if not meta.get("continue"):
                break
            query["continue"] = str(meta["continue"])
        self._listed_all()
        self._version = str(meta.get("resourceVersion") or "")

    async def _watch(self) -> None:
        query = {**self.resource.query(), "watch": "true", "allowWatchBookmarks": "true",
                 "timeoutSeconds": str(WATCH_SECONDS)}
        if self._version:
            query["resourceVersion"] = self._version
        try:
            async with self.kube.watch(self._path, query, read_timeout=READ_TIMEOUT) as chunks:
                fed = 0
                async for line in _lines(chunks):
                    self._event(orjson.loads(line))
                    fed += 1
                    if fed % EVENT_SLICE == 0:
                        await asyncio.sleep(0)  # a burst: let a waiting stop run
        except ApiException as exc:
            if exc.status == 410:
                raise Expired from None
            raise

    def _event(self, event: dict[str, Any]) -> None:
        kind, obj = event.get("type"), event.get("object") or {}
        if kind == "ERROR":
            if obj.get("code") == 410:
                raise Expired
            raise RuntimeError(f"watch error {obj.get('code')}: {obj.get('message')}")
        version = (obj.get("metadata") or {}).get("resourceVersion")
        if version:
            self._version = str(version)
        if kind != "BOOKMARK":
            try:
                self._changed(str(kind), obj)
            except Exception:  # one bad object must not stop the stream's feed
                log.exception("%s: feeding a watch event failed", self._path)

    # --- the listing's bookkeeping: what vanished while the watch was down ---------------

    def _listing_starts(self) -> None:
        # A listing cut off half-way is started again: what it had fed so far counts as
        # known before, so an object it fed and the next listing lacks is VANISHED too.
        before = self._before if self._before is not None else {}
        self._before = {**before, **self.known}
        self.known = {}

    def _listed(self, items: list[dict[str, Any]]) -> None:
        for obj in items:
            identity = _identity(obj)
            self.known[identity[:2]] = identity
            try:
                self.sink("ADDED", obj)
            except Exception:
                log.exception("%s: feeding a listed object failed", self._path)

    def _listed_all(self) -> None:
        for key, identity in (self._before or {}).items():
            if key not in self.known:
                self.sink(VANISHED, _stub(identity))
        self._before = None
        self.synced.set()

    def _changed(self, kind: str, obj: dict[str, Any]) -> None:
        identity = _identity(obj)
        if kind == DELETED:
            self.known.pop(identity[:2], None)
        else:
            self.known[identity[:2]] = identity
        self.sink(kind, obj)


def _why(exc: Exception) -> str:
    if isinstance(exc, ApiException):
        return f"{exc.status} {exc.reason}"
    return f"{type(exc).__name__}: {exc}"
