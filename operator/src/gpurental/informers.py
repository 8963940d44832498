"""List-then-watch of one kind of object, as client-go's reflector does it.

The operator's only way of reading the API's stream (kopf's watches are not used: measured at
3,000 running rentals, kopf's per-event processing was a fifth of the operator's CPU, and every
heartbeat comes back as a watch event). An informer lists its kind, hands the listing over,
then watches from the listing's resourceVersion, with bookmarks so a reconnect resumes where it
left off; when the server says that version is gone (410) it lists again and reports what
vanished in between as VANISHED, which a watch alone would never say.

The official client is synchronous, so the blocking HTTP runs in one daemon thread per stream:
the thread reads and decodes lines (orjson: a rental's watch event in 16 us against the standard
library's 56, and the thread holds the GIL the loop needs meanwhile) and hands them to the
event loop in batches (one wake-up per batch, not per line); only the loop side touches
`known` and calls the sink, so the cache it feeds is never touched from two threads.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
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
# Objects fed per turn of the event loop: a listing of ten thousand rentals is fed in slices,
# so a stop arriving meanwhile waits for one slice (tens of ms), not for the whole listing.
SLICE = 256

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


def _lines(response: Any) -> Iterator[bytes]:
    """The stream's lines (one JSON watch event each), as they arrive."""
    buffer = b""
    for chunk in response.stream(amt=None, decode_content=False):
        buffer += chunk
        *complete, buffer = buffer.split(b"\n")
        yield from (line for line in complete if line.strip())


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
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: collections.deque[tuple[Any, ...]] = collections.deque()
        self._scheduled = False
        self._closed = False
        self._response: Any = None
        self._version: str | None = None  # the thread's: where the next watch starts
        self.known: dict[tuple[str, str], Identity] = {}
        self._before: dict[tuple[str, str], Identity] = {}  # during a listing: the last one

    def __repr__(self) -> str:
        return f"<Informer {self._path}>"

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        threading.Thread(target=self._run, name=f"watch{self._path}", daemon=True).start()

    def close(self) -> None:
        self._closed = True
        response = self._response
        if response is not None:
            with contextlib.suppress(Exception):
                response.shutdown()  # unblocks the thread's read

    # --- the thread ------------------------------------------------------------------------

    def _run(self) -> None:
        failures = 0
        while not self._closed:
            try:
                if self._version is None:
                    self._list()
                self._watch()
                failures = 0
            except Expired:
                log.info("%s: resourceVersion expired; listing again", self._path)
                self._version = None
            except Exception as exc:
                if self._closed:
                    return
                failures += 1
                delay = min(MAX_BACKOFF, 0.5 * 2 ** min(failures, 6))
                level = logging.WARNING if failures < 3 or failures % 20 == 0 else logging.DEBUG
                log.log(level, "%s: %s; retrying in %.1fs", self._path, _why(exc), delay)
                time.sleep(delay)

    def _list(self) -> None:
        listing = self.kube.get_path(self._path, self.resource.query())
        self._version = str((listing.get("metadata") or {}).get("resourceVersion") or "")
        items = listing.get("items") or []
        self._post(("LISTING",))
        for start in range(0, len(items), SLICE):
            self._post(("LISTED", items[start:start + SLICE]))
        self._post(("LISTED_ALL",))

    def _watch(self) -> None:
        query = {**self.resource.query(), "watch": "true", "allowWatchBookmarks": "true",
                 "timeoutSeconds": str(WATCH_SECONDS)}
        if self._version:
            query["resourceVersion"] = self._version
        try:
            self._response = self.kube.open_path(self._path, query, timeout=(10, READ_TIMEOUT))
        except ApiException as exc:
            if exc.status == 410:
                raise Expired from None
            raise
        try:
            for line in _lines(self._response):
                self._event(orjson.loads(line))
        finally:
            self._response.release_conn()
            self._response = None

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
            self._post(("EVENT", kind, obj))

    def _post(self, item: tuple[Any, ...]) -> None:
        """Hand an item to the loop; wake it only if no wake-up is pending."""
        assert self._loop is not None
        self._pending.append(item)
        if not self._scheduled:
            self._scheduled = True
            try:
                self._loop.call_soon_threadsafe(self._drain)
            except RuntimeError:  # the loop is closed: the operator is exiting
                self._closed = True

    # --- the event loop ------------------------------------------------------------------

    def _drain(self) -> None:
        # Cleared before popping: an item the thread appends from now on schedules a new
        # drain, so none is left behind.
        self._scheduled = False
        budget = SLICE
        while self._pending and budget > 0:
            item = self._pending.popleft()
            budget -= len(item[1]) if item[0] == "LISTED" else 1
            try:
                self._feed(item)
            except Exception:  # one bad object must not stop the stream's feed
                log.exception("%s: feeding a watch event failed", self._path)
        if self._pending and not self._scheduled:
            # The rest at the loop's next turn: whatever else is ready runs first.
            assert self._loop is not None
            self._scheduled = True
            self._loop.call_soon(self._drain)

    def _feed(self, item: tuple[Any, ...]) -> None:
        what = item[0]
        if what == "EVENT":
            self._changed(item[1], item[2])
        elif what == "LISTING":
            self._before, self.known = self.known, {}
        elif what == "LISTED":
            for obj in item[1]:
                identity = _identity(obj)
                self.known[identity[:2]] = identity
                self.sink("ADDED", obj)
        else:  # LISTED_ALL: what the listing no longer has vanished while the watch was down
            for key, identity in self._before.items():
                if key not in self.known:
                    self.sink(VANISHED, _stub(identity))
            self._before = {}
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
