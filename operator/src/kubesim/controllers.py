"""The controllers the apiserver cannot do without: garbage collection and namespace cleanup.

They run as background tasks on the server's loop, after the request that triggered them has
been answered, the way kube-controller-manager acts asynchronously on a real cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from .errors import ApiError
from .resources import ResourceType
from .store import NS_GR, Store, loads

log = logging.getLogger(__name__)


class Controllers:
    """Garbage collector (background and foreground propagation) and namespace finalizer."""

    def __init__(self, store: Store, delay: float = 0.0) -> None:
        self.store = store
        self.delay = delay  # seconds between an owner's removal and its dependents' deletion
        self.queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None
        store.on_removed = lambda uid: self.queue.put_nowait(("removed", uid))
        store.on_namespace_terminating = lambda ns: self.queue.put_nowait(("namespace", ns))
        store.on_foreground = lambda: self.queue.put_nowait(("foreground", ""))
        store.on_graceful = self._schedule_grace_expiry

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self.task:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task

    async def _run(self) -> None:
        while True:
            what, arg = await self.queue.get()
            if self.delay:
                await asyncio.sleep(self.delay)
            try:
                if what == "removed":
                    self.collect(arg)
                elif what == "foreground":
                    self._release_foreground()
                else:
                    asyncio.get_running_loop().create_task(self.finalize_namespace(arg))
            except Exception:  # a controller bug must not stop collection for good
                log.exception("controller failed on %s %s", what, arg)

    def collect(self, owner_uid: str) -> None:
        """An owner is gone: delete dependents left without owners, unlink the others."""
        store = self.store
        for gr, ns, name in list(store.dependents.pop(owner_uid, ())):
            rt = store.type_for(gr)
            coll = store.collections.get(gr)
            found = coll.get(ns, name) if coll else None
            if rt is None or found is None:
                continue
            refs = found.obj["metadata"].get("ownerReferences") or []
            alive = [r for r in refs if r.get("uid") != owner_uid and r.get("uid") in store.uids]
            with contextlib.suppress(ApiError):
                if alive:
                    store.strip_owner(gr, ns, name, owner_uid)
                else:
                    store.delete(rt, ns, name, {"propagationPolicy": "Background"})
        self._release_foreground()

    def _schedule_grace_expiry(self, rt: ResourceType, namespace: str, name: str, uid: str,
                               grace: int) -> None:
        """When a pod's grace period runs out, finish its deletion as the kubelet would."""
        def expire() -> None:
            found = self.store.collection(rt).get(namespace, name)
            if found is None or found.obj["metadata"]["uid"] != uid:
                return
            with contextlib.suppress(ApiError):
                self.store.delete(rt, namespace, name,
                                  {"gracePeriodSeconds": 0, "preconditions": {"uid": uid}})
        asyncio.get_running_loop().call_later(grace, expire)

    def _release_foreground(self) -> None:
        """Owners deleted in the foreground finish once none of their dependents remain."""
        store = self.store
        for gr, coll in list(store.collections.items()):
            rt = store.type_for(gr)
            if rt is None:
                continue
            for stored in list(coll.iter(None)):
                meta = stored.obj["metadata"]
                if "foregroundDeletion" not in (meta.get("finalizers") or []):
                    continue
                deps = store.dependents.get(meta["uid"])
                if deps:
                    for dgr, dns, dname in list(deps):
                        drt = store.type_for(dgr)
                        if drt is not None:
                            with contextlib.suppress(ApiError):
                                store.delete(drt, dns, dname)
                    continue
                store.remove_finalizer(rt, meta.get("namespace", ""), meta["name"],
                                       "foregroundDeletion")

    async def finalize_namespace(self, namespace: str) -> None:
        """Delete everything in a terminating namespace, then the namespace itself."""
        store = self.store
        requested: set[str] = set()
        while True:
            remaining = 0
            for gr, coll in list(store.collections.items()):
                rt = store.type_for(gr)
                if rt is None or not rt.namespaced:
                    continue
                for stored in list(coll.iter(namespace)):
                    remaining += 1
                    uid = stored.obj["metadata"]["uid"]
                    if uid not in requested:
                        requested.add(uid)
                        with contextlib.suppress(ApiError):
                            store.delete(rt, namespace, stored.obj["metadata"]["name"])
            if remaining == 0:
                break
            await asyncio.sleep(0.05)
        ns_type = store.type_for(NS_GR)
        namespaces = store.collections.get(NS_GR)
        found = namespaces.get("", namespace) if namespaces else None
        if ns_type is None or found is None:
            return
        if found.obj["metadata"].get("finalizers"):
            return  # someone else's finalizer: the namespace goes when they remove it
        obj = loads(found.raw)
        obj.setdefault("spec", {})["finalizers"] = []
        store._commit(ns_type, obj, found, "DELETED")
