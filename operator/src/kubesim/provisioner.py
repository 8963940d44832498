"""A tiny dynamic PVC provisioner for the simulated cluster.

It owns what the PersistentVolume controller and a CSI provisioner do in a real cluster:
a ``Pending`` claim gets a ``PersistentVolume`` named ``pvc-<claim uid>``, the claim's
``spec.volumeName`` and the bind annotations, then ``status.phase: Bound`` with its capacity and
a ``ProvisioningSucceeded`` Event. A claim the scheduler chose a node for
(WaitForFirstConsumer) gets a volume pinned to that node by node affinity. Claims of a storage
class listed in ``fail_classes`` stay ``Pending`` with a ``ProvisioningFailed`` Warning, as with
a class that does not exist. Deleting a claim deletes its volume (reclaim policy Delete).

It talks to the API server through the client of :mod:`kubesim.node.client` (duck-typed here to keep
the import one-way).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import Any, Protocol

log = logging.getLogger("kubesim.provisioner")

Obj = dict[str, Any]

PROVISIONER_NAME = "kubesim.dev/hostpath"
CONTROLLER = "persistentvolume-controller"
SELECTED_NODE = "volume.kubernetes.io/selected-node"
MERGE_PATCH = "application/merge-patch+json"


class Client(Protocol):
    async def request(self, method: str, path: str, body: Obj | None = None, *,
                      params: dict[str, str] | None = None,
                      content_type: str = "application/json") -> Obj: ...


Emit = Callable[..., None]
Spawn = Callable[[Any, str], Any]


def _status_code(exc: Exception) -> int | None:
    return getattr(exc, "status", None)


class Provisioner:
    """Binds Pending PVCs (one attempt per claim uid) and deletes volumes of deleted claims."""

    def __init__(self, client: Client, emit: Emit, spawn: Spawn, *,
                 fail_classes: Iterable[str] = (), delay: float = 0.0, external: bool = False):
        self.client = client
        # External: only what a CSI external-provisioner does - a volume for each claim the
        # real PersistentVolume controller hands to PROVISIONER_NAME; that controller binds.
        self.external = external
        self.emit = emit
        self.spawn = spawn
        self.fail_classes = frozenset(fail_classes)
        self.delay = delay
        self._seen: set[str] = set()

    def on_pvc(self, kind: str, pvc: Obj, old: Obj | None) -> None:
        meta = pvc.get("metadata") or {}
        uid = str(meta.get("uid"))
        if kind == "DELETED":
            self._seen.discard(uid)
            volume = (pvc.get("spec") or {}).get("volumeName")
            if volume == f"pvc-{uid}":
                self.spawn(self._delete_volume(volume), f"delete volume {volume}")
            return
        phase = (pvc.get("status") or {}).get("phase", "Pending")
        if phase != "Pending" or meta.get("deletionTimestamp") or uid in self._seen:
            return
        if self.external and (meta.get("annotations") or {}).get(
                "volume.kubernetes.io/storage-provisioner") != PROVISIONER_NAME:
            return  # not (yet) ours: the PV controller annotates the claims it hands over
        self._seen.add(uid)
        self.spawn(self._provision(pvc), f"provision {meta.get('namespace')}/{meta.get('name')}")

    async def _provision(self, pvc: Obj) -> None:
        spec = pvc.get("spec") or {}
        storage_class = spec.get("storageClassName")
        if storage_class in self.fail_classes:
            self.emit(pvc, "Warning", "ProvisioningFailed",
                      f'storageclass.storage.k8s.io "{storage_class}" not found',
                      component=CONTROLLER)
            return
        if self.delay:
            await asyncio.sleep(self.delay)
        self.emit(pvc, "Normal", "Provisioning",
                  f'External provisioner is provisioning volume for claim '
                  f'"{pvc["metadata"]["namespace"]}/{pvc["metadata"]["name"]}"',
                  component=PROVISIONER_NAME)
        volume = spec.get("volumeName") or f"pvc-{pvc['metadata']['uid']}"
        size = ((spec.get("resources") or {}).get("requests") or {}).get("storage", "1Gi")
        if self.external:
            await self._create_volume(pvc, volume, size)
            self.emit(pvc, "Normal", "ProvisioningSucceeded",
                      f"Successfully provisioned volume {volume}", component=PROVISIONER_NAME)
            return
        if not spec.get("volumeName"):
            await self._create_volume(pvc, volume, size)
            await self._bind_claim(pvc, volume)
        await self._patch(self._claim_path(pvc) + "/status", {"status": {
            "phase": "Bound", "accessModes": spec.get("accessModes") or ["ReadWriteOnce"],
            "capacity": {"storage": size}}})
        self.emit(pvc, "Normal", "ProvisioningSucceeded",
                  f"Successfully provisioned volume {volume}", component=PROVISIONER_NAME)

    @staticmethod
    def _claim_path(pvc: Obj) -> str:
        meta = pvc["metadata"]
        return f"/api/v1/namespaces/{meta['namespace']}/persistentvolumeclaims/{meta['name']}"

    async def _create_volume(self, pvc: Obj, name: str, size: str) -> None:
        meta, spec = pvc["metadata"], pvc.get("spec") or {}
        volume: Obj = {
            "apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": {"name": name,
                         "annotations": {"pv.kubernetes.io/provisioned-by": PROVISIONER_NAME}},
            "spec": {"capacity": {"storage": size},
                     "accessModes": spec.get("accessModes") or ["ReadWriteOnce"],
                     "persistentVolumeReclaimPolicy": "Delete",
                     "storageClassName": spec.get("storageClassName") or "standard",
                     "volumeMode": spec.get("volumeMode") or "Filesystem",
                     "hostPath": {"path": f"/var/lib/kubesim/volumes/{name}"},
                     "claimRef": {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                                  "namespace": meta["namespace"], "name": meta["name"],
                                  "uid": meta["uid"]}},
        }
        node = (meta.get("annotations") or {}).get(SELECTED_NODE)
        if node:
            # A WaitForFirstConsumer claim is provisioned where the scheduler put its pod, and
            # a host path cannot move: the volume is pinned there (as local-path does).
            volume["spec"]["nodeAffinity"] = {"required": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In",
                                       "values": [node]}]}]}}
        try:
            await self.client.request("POST", "/api/v1/persistentvolumes", volume)
        except Exception as exc:
            # A server without PersistentVolumes still gets its claims bound.
            if _status_code(exc) not in (404, 405, 409):
                raise
            return
        if self.external:
            return  # the PersistentVolume controller owns the volume's phase
        await self._patch(f"/api/v1/persistentvolumes/{name}/status",
                          {"status": {"phase": "Bound"}})

    async def _bind_claim(self, pvc: Obj, volume: str) -> None:
        annotations = {"pv.kubernetes.io/bind-completed": "yes",
                       "pv.kubernetes.io/bound-by-controller": "yes",
                       "volume.kubernetes.io/storage-provisioner": PROVISIONER_NAME,
                       "volume.beta.kubernetes.io/storage-provisioner": PROVISIONER_NAME}
        try:
            await self.client.request(
                "PATCH", self._claim_path(pvc),
                {"metadata": {"annotations": annotations}, "spec": {"volumeName": volume}},
                content_type=MERGE_PATCH)
        except Exception as exc:
            if _status_code(exc) == 422:  # a server strict about claim spec updates
                await self._patch(self._claim_path(pvc),
                                  {"metadata": {"annotations": annotations}})
            elif _status_code(exc) != 404:
                raise

    async def _patch(self, path: str, body: Obj) -> None:
        try:
            await self.client.request("PATCH", path, body, content_type=MERGE_PATCH)
        except Exception as exc:
            if _status_code(exc) not in (404, 405):
                raise

    async def _delete_volume(self, name: str) -> None:
        try:
            await self.client.request("DELETE", f"/api/v1/persistentvolumes/{name}")
        except Exception as exc:
            if _status_code(exc) not in (404, 405):
                raise
