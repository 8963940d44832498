"""The controllers the apiserver cannot do without: garbage collection and namespace cleanup.

They run as background tasks on the server's loop, after the request that triggered them has
been answered, the way kube-controller-manager acts asynchronously on a real cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from . import endpointslices
from .deletion import CRD_CLEANUP, FOREGROUND, PVC_PROTECTION
from .encoding import loads
from .errors import ApiError
from .resources import CRD_GR, NS_GR, POD_GR, PVC_GR, SERVICE_GR, SLICE_GR, ResourceType
from .store import Store


def _shut_down(pod: dict[str, Any]) -> bool:
    """Deleted with no grace left: its kubelet has stopped it (pvc-protection's podIsShutDown)."""
    meta = pod.get("metadata") or {}
    return bool(meta.get("deletionTimestamp")) and meta.get("deletionGracePeriodSeconds") == 0


ROOT_CA_DESCRIPTION = (
    "Contains a CA bundle that can be used to verify the kube-apiserver when using internal "
    "endpoints such as the internal service IP or kubernetes.default.svc. No other usage is "
    "guaranteed across distributions of Kubernetes clusters.")

log = logging.getLogger(__name__)


class Controllers:
    """Garbage collector (background and foreground propagation) and namespace finalizer."""

    def __init__(self, store: Store, delay: float = 0.0) -> None:
        self.store = store
        self.delay = delay  # seconds between an owner's removal and its dependents' deletion
        self.queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None
        store.on_removed = self._removed
        self._removal_waiters: list[asyncio.Future[None]] = []
        store.on_terminating = self._terminating
        store.on_pod_changed = self._pod_changed
        self._protected_claims: set[tuple[str, str]] = set()  # terminating PVCs still in use
        self._claims_queued: set[str] = set()  # namespaces with a claims pass already queued
        self._slices_queued: set[str] = set()  # namespaces with an EndpointSlice pass queued
        store.on_service_changed = self._queue_slices
        # Owners waiting in foreground deletion. Tracked, not found by scanning, so that a
        # namespace drain stays linear: scanning every object after every removal is quadratic
        # (some 20 s of a stalled server for a 2,000-object namespace).
        self._foreground: set[tuple[tuple[str, str], str, str]] = set()
        store.on_foreground = self._foreground_started
        store.on_graceful = self._schedule_grace_expiry
        store.on_namespace_added = lambda name: self.queue.put_nowait(("populate", name))
        # The CA bundle kube-root-ca.crt publishes (the serving certificate's, with --tls).
        self.root_ca = ""

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
                elif what == "namespace":
                    asyncio.get_running_loop().create_task(self.finalize_namespace(arg))
                elif what == "crd":
                    asyncio.get_running_loop().create_task(self.finalize_crd(arg))
                elif what == "claims":
                    self._claims_queued.discard(arg)
                    self.release_claims(arg)
                elif what == "populate":
                    self.populate_namespace(arg)
                elif what == "slices":
                    self._slices_queued.discard(arg)
                    self.sync_slices(arg)
            except Exception:  # a controller bug must not stop collection for good
                log.exception("controller failed on %s %s", what, arg)

    def populate_namespace(self, namespace: str) -> None:
        """What kube-controller-manager puts in every new namespace, a moment after it exists:
        the `default` ServiceAccount (serviceaccount controller) and the `kube-root-ca.crt`
        ConfigMap (root-ca-cert-publisher)."""
        defaults = (
            ("serviceaccounts", {"metadata": {"name": "default"}}),
            ("configmaps", {"metadata": {"name": "kube-root-ca.crt", "annotations": {
                "kubernetes.io/description": ROOT_CA_DESCRIPTION}},
                "data": {"ca.crt": self.root_ca}}),
        )
        for plural, body in defaults:
            rt = self.store.registry.get("", "v1", plural)
            assert rt is not None
            try:
                self.store.create(rt, namespace, body)
            except ApiError as exc:
                if exc.code not in (404, 409, 403):  # gone, already there, terminating
                    raise

    def collect(self, owner_uid: str) -> None:
        """An owner is gone: delete dependents left without owners, unlink the others."""
        store = self.store
        for gr, ns, name in list(store.owners.dependents.pop(owner_uid, ())):
            rt = store.type_for(gr)
            coll = store.collections.get(gr)
            found = coll.get(ns, name) if coll else None
            if rt is None or found is None:
                continue
            refs = found.obj["metadata"].get("ownerReferences") or []
            alive = [r for r in refs
                     if r.get("uid") != owner_uid and r.get("uid") in store.owners.uids]
            with contextlib.suppress(ApiError):
                if alive:
                    store.strip_owner(gr, ns, name, owner_uid)
                else:
                    store.delete(rt, ns, name, {"propagationPolicy": "Background"})
        self._release_foreground()

    def _foreground_started(self, gr: tuple[str, str], namespace: str, name: str) -> None:
        self._foreground.add((gr, namespace, name))
        self.queue.put_nowait(("foreground", ""))

    def _removed(self, uid: str) -> None:
        self.queue.put_nowait(("removed", uid))
        waiters, self._removal_waiters = self._removal_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def _next_removal(self, timeout: float) -> None:
        """Sleep until some object leaves storage (drains wait on finalizers this way)."""
        waiter = asyncio.get_running_loop().create_future()
        self._removal_waiters.append(waiter)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(waiter, timeout)

    def _terminating(self, rt: ResourceType, obj: dict[str, Any]) -> None:
        if rt.group_resource == NS_GR:
            self.queue.put_nowait(("namespace", obj["metadata"]["name"]))
        elif rt.group_resource == CRD_GR:
            self.queue.put_nowait(("crd", obj["metadata"]["name"]))
        elif rt.group_resource == PVC_GR:
            self._protected_claims.add((obj["metadata"]["namespace"], obj["metadata"]["name"]))
            self._queue_claims(obj["metadata"]["namespace"])

    def _pod_changed(self, namespace: str) -> None:
        if any(ns == namespace for ns, _ in self._protected_claims):
            self._queue_claims(namespace)
        services = self.store.collections.get(SERVICE_GR)
        if services is not None and any(True for _ in services.iter(namespace)):
            self._queue_slices(namespace)

    def _queue_slices(self, namespace: str) -> None:
        if namespace not in self._slices_queued:
            self._slices_queued.add(namespace)
            self.queue.put_nowait(("slices", namespace))

    def sync_slices(self, namespace: str) -> None:
        """The EndpointSlice controller: each selector Service's slice follows its pods.
        A Service's slices go with it (owner references, the garbage collector)."""
        slice_type, services = self.store.type_for(SLICE_GR), self.store.collections.get(
            SERVICE_GR)
        pods = self.store.collections.get(POD_GR)
        if slice_type is None or services is None:
            return
        pod_objs = [p.obj for p in pods.iter(namespace)] if pods else []
        slices = self.store.collections.get(SLICE_GR)
        existing = {(s.obj["metadata"].get("labels") or {}).get(
            endpointslices.SERVICE_NAME_LABEL): s for s in (slices.iter(namespace) if slices
                                                            else ())}
        for service in [s.obj for s in services.iter(namespace)]:
            if not endpointslices.selects(service) or service["metadata"].get(
                    "deletionTimestamp"):
                continue
            content = endpointslices.desired(service, pod_objs)
            current = existing.get(service["metadata"]["name"])
            with contextlib.suppress(ApiError):  # the namespace may be going
                if current is None:
                    self.store.create(slice_type, namespace,
                                      endpointslices.new_slice(service, content))
                elif any(current.obj.get(k) != v for k, v in content.items()):
                    body = {**loads(current.raw), **content}
                    self.store.update(slice_type, namespace, current.obj["metadata"]["name"],
                                      body)

    def _queue_claims(self, namespace: str) -> None:
        # One queued pass per namespace: each pass scans the namespace's pods, and a burst of
        # pod changes must not queue one scan per change.
        if namespace not in self._claims_queued:
            self._claims_queued.add(namespace)
            self.queue.put_nowait(("claims", namespace))

    def release_claims(self, namespace: str) -> None:
        """pvc-protection: a deleted claim goes once no scheduled pod mounts it (a pod that is
        not bound to a node never started, and a kubelet will not start it now)."""
        pvc_type, pod_type = self.store.type_for(PVC_GR), self.store.type_for(POD_GR)
        pods = self.store.collections.get(POD_GR)
        in_use = {v["persistentVolumeClaim"].get("claimName")
                  for pod in (pods.iter(namespace) if pods else ())
                  if (pod.obj.get("spec") or {}).get("nodeName") and not _shut_down(pod.obj)
                  for v in (pod.obj.get("spec") or {}).get("volumes") or []
                  if isinstance(v.get("persistentVolumeClaim"), dict)}
        claims = self.store.collections.get(PVC_GR)
        for ns, name in [c for c in self._protected_claims if c[0] == namespace]:
            if claims is None or claims.get(ns, name) is None:
                self._protected_claims.discard((ns, name))  # gone some other way
                continue
            if name in in_use or pvc_type is None or pod_type is None:
                continue
            self._protected_claims.discard((ns, name))
            self.store.remove_finalizer(pvc_type, ns, name, PVC_PROTECTION)

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
        for gr, namespace, name in list(self._foreground):
            rt, coll = store.type_for(gr), store.collections.get(gr)
            stored = coll.get(namespace, name) if coll else None
            meta = stored.obj["metadata"] if stored else {}
            if rt is None or FOREGROUND not in (meta.get("finalizers") or []):
                self._foreground.discard((gr, namespace, name))
                continue
            deps = store.owners.dependents.get(meta["uid"])
            if deps:
                for dgr, dns, dname in list(deps):
                    drt = store.type_for(dgr)
                    if drt is not None:
                        with contextlib.suppress(ApiError):
                            store.delete(drt, dns, dname)
                continue
            self._foreground.discard((gr, namespace, name))
            store.remove_finalizer(rt, namespace, name, FOREGROUND)

    async def _drain(self, targets: list[tuple[ResourceType, str | None]]) -> None:
        """Delete every object of the given (type, namespace) pairs; wait until all are gone."""
        requested: set[str] = set()
        while True:
            remaining = 0
            for rt, namespace in targets:
                coll = self.store.collections.get(rt.group_resource)
                for stored in list(coll.iter(namespace)) if coll else []:
                    remaining += 1
                    meta = stored.obj["metadata"]
                    if meta["uid"] not in requested:
                        requested.add(meta["uid"])
                        with contextlib.suppress(ApiError):
                            self.store.delete(rt, meta.get("namespace", ""), meta["name"])
            if remaining == 0:
                return
            await self._next_removal(timeout=1.0)

    async def finalize_namespace(self, namespace: str) -> None:
        """Delete everything in a terminating namespace, then the namespace itself."""
        store = self.store
        types = [rt for gr in list(store.collections)
                 if (rt := store.type_for(gr)) is not None and rt.namespaced]
        await self._drain([(rt, namespace) for rt in types])
        ns_type = store.type_for(NS_GR)
        namespaces = store.collections.get(NS_GR)
        found = namespaces.get("", namespace) if namespaces else None
        if ns_type is None or found is None:
            return
        if found.obj["metadata"].get("finalizers"):
            return  # someone else's finalizer: the namespace goes when they remove it
        obj = loads(found.raw)
        obj.setdefault("spec", {})["finalizers"] = []
        store.finish_deletion(ns_type, obj, found)

    async def finalize_crd(self, name: str) -> None:
        """Delete every custom resource of a terminating CRD, then release the CRD."""
        store = self.store
        types = store.registry.crd_types.get(name, [])
        storage = [rt for rt in types if rt.version == rt.storage_version][:1]
        await self._drain([(rt, None) for rt in storage])
        crd_type = store.type_for(CRD_GR)
        if crd_type is not None:
            store.remove_finalizer(crd_type, "", name, CRD_CLEANUP)
