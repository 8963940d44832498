"""The scheduler: binds pending pods to the simulated nodes, or reports why none fits."""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal

from .background import Background
from .client import ApiError, KubeClient
from .events import EventRecorder
from .filters import FilterResult, eviction_delay, filter_node, unschedulable_message
from .objects import (
    DEFAULT_SCHEDULER,
    MERGE_PATCH,
    TERMINAL_PHASES,
    Obj,
    object_key,
    pod_path,
    rfc3339,
    with_condition,
)
from .quantities import pod_requests
from .state import NodeState

log = logging.getLogger("kubesim.node")


def _spec_changed(old: Obj, new: Obj) -> bool:
    return bool(old.get("spec") != new.get("spec")
                or (old.get("metadata") or {}).get("labels")
                != (new.get("metadata") or {}).get("labels"))


class Scheduler:
    """Binds pending pods to simulated nodes, or reports why none fits.

    Pods are tried in arrival order. A pod that fits nowhere waits in ``_unschedulable``
    until capacity frees up (a pod on our nodes ends), like kube-scheduler's unschedulable
    queue; its condition and Event are written only when the message changes.
    """

    def __init__(self, client: KubeClient, nodes: dict[str, NodeState], recorder: EventRecorder,
                 pods: dict[str, Obj], background: Background):
        self.client = client
        self.nodes = nodes
        self.recorder = recorder
        self.pods = pods  # the pod informer's cache, keyed "namespace/name"
        self.background = background
        self._active: dict[str, str] = {}  # uid -> key, in arrival order
        self._unschedulable: dict[str, str] = {}
        self._reported: dict[str, str] = {}  # uid -> last Unschedulable message
        self._requests: dict[str, dict[str, Decimal]] = {}
        self._assumed: dict[str, str] = {}  # uid -> node, bound but not yet seen bound
        self._wake = asyncio.Event()

    # -- informer side ------------------------------------------------------------------------

    def on_pod(self, kind: str, pod: Obj, old: Obj | None) -> None:
        meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
        uid = str(meta.get("uid"))
        if kind == "DELETED":
            self._forget(uid)
            self._release(uid)
            return
        node_name = spec.get("nodeName")
        if node_name:
            self._forget(uid)
            self._assumed.pop(uid, None)
            self._account(uid, pod, node_name)
        elif uid not in self._assumed and self._wants_scheduling(pod):
            if uid in self._unschedulable and old is not None and _spec_changed(old, pod):
                del self._unschedulable[uid]  # e.g. a toleration added: try again now
            if uid not in self._unschedulable and uid not in self._active:
                self._active[uid] = object_key(pod)
                self._wake.set()
        elif uid not in self._assumed:
            self._forget(uid)

    @staticmethod
    def _wants_scheduling(pod: Obj) -> bool:
        meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
        status = pod.get("status") or {}
        return (not meta.get("deletionTimestamp")
                and spec.get("schedulerName", DEFAULT_SCHEDULER) in ("", DEFAULT_SCHEDULER)
                and status.get("phase", "Pending") == "Pending"
                and not spec.get("schedulingGates"))

    def on_node(self, kind: str, node: Obj, old: Obj | None) -> None:
        state = self.nodes.get(str((node.get("metadata") or {}).get("name")))
        if state is not None and kind != "DELETED" and state.observe(node):
            self._retry_unschedulable()
            self._evict_untolerated(state)

    def _evict_untolerated(self, node: NodeState) -> None:
        """The taint-eviction controller: a NoExecute taint evicts pods that do not tolerate it.

        A matching toleration with ``tolerationSeconds`` delays the eviction by that long.
        """
        no_execute = [t for t in node.taints if t.effect == "NoExecute"]
        if not no_execute:
            return
        for pod in list(self.pods.values()):
            spec, meta = pod.get("spec") or {}, pod.get("metadata") or {}
            if (spec.get("nodeName") != node.spec.name or meta.get("deletionTimestamp")
                    or (pod.get("status") or {}).get("phase") in TERMINAL_PHASES):
                continue
            delay = eviction_delay(no_execute, spec.get("tolerations") or [])
            if delay is not None:
                self.background.spawn(self._evict(pod, delay), f"evict {object_key(pod)}")

    async def _evict(self, pod: Obj, delay: float) -> None:
        await asyncio.sleep(delay)
        meta = pod["metadata"]
        current = self.pods.get(object_key(pod))
        if current is None or current["metadata"].get("uid") != meta["uid"]:
            return
        self.recorder.emit(pod, "Normal", "TaintManagerEviction",
                           f"Marking for deletion Pod {meta['namespace']}/{meta['name']}",
                           component="taint-eviction-controller")
        await self.client.request("DELETE", pod_path(pod),
                                  {"apiVersion": "v1", "kind": "DeleteOptions",
                                   "preconditions": {"uid": meta["uid"]}})

    def _retry_unschedulable(self) -> None:
        if self._unschedulable:
            self._active.update(self._unschedulable)
            self._unschedulable.clear()
            self._wake.set()

    def _account(self, uid: str, pod: Obj, node_name: str) -> None:
        node = self.nodes.get(node_name)
        if node is None:
            return
        if (pod.get("status") or {}).get("phase") in TERMINAL_PHASES:
            self._release(uid)
        else:
            node.add(uid, pod_requests(pod))

    def _release(self, uid: str) -> None:
        """A pod left a node: retry every unschedulable pod (kube-scheduler's move request)."""
        self._assumed.pop(uid, None)
        if any(node.remove(uid) for node in self.nodes.values()):
            self._retry_unschedulable()

    def release(self, uid: str) -> None:
        """Called by the kubelet once a pod's containers are terminated."""
        self._release(uid)

    def _forget(self, uid: str) -> None:
        self._active.pop(uid, None)
        self._unschedulable.pop(uid, None)
        self._reported.pop(uid, None)
        self._requests.pop(uid, None)

    # -- scheduling loop ----------------------------------------------------------------------

    async def run(self, flush_interval: float = 30.0) -> None:
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), flush_interval)
            except TimeoutError:
                # Like kube-scheduler's periodic flush: retry pods nothing has woken up.
                self._active.update(self._unschedulable)
                self._unschedulable.clear()
            self._wake.clear()
            while self._active:
                uid, key = next(iter(self._active.items()))
                del self._active[uid]
                pod = self.pods.get(key)
                if pod is None or str(pod["metadata"].get("uid")) != uid:
                    continue
                if pod.get("spec", {}).get("nodeName") or not self._wants_scheduling(pod):
                    continue
                try:
                    await self._schedule_one(uid, pod)
                except Exception:  # one bad pod must not stop the scheduler
                    log.exception("scheduling %s failed; retrying later", key)
                    self._unschedulable[uid] = key

    async def _schedule_one(self, uid: str, pod: Obj) -> None:
        # A pending pod's requests cannot change: parse them once, not on every retry.
        requests = self._requests.get(uid)
        if requests is None:
            requests = self._requests[uid] = pod_requests(pod)
        results: list[FilterResult] = []
        feasible: list[NodeState] = []
        for node in self.nodes.values():
            result = filter_node(pod, requests, node)
            results.append(result)
            if not result.reasons:
                feasible.append(node)
        if not feasible:
            self._unschedulable[uid] = object_key(pod)
            await self._report_unschedulable(uid, pod, unschedulable_message(results))
            return
        best = min(feasible, key=lambda n: (self._score(n, requests), n.spec.name))
        # Like kube-scheduler's binding cycle: the pod is assumed on the node at once and bound
        # asynchronously, so the next pod is placed without waiting for this round trip.
        best.add(uid, requests)
        self._assumed[uid] = best.spec.name
        self.background.spawn(self._bind(uid, pod, best), f"bind {object_key(pod)}")

    @staticmethod
    def _score(node: NodeState, requests: dict[str, Decimal]) -> Decimal:
        """Lower is better: the most free GPUs left after placing the pod (spread out)."""
        resource = node.spec.resource
        free = node.allocatable[resource] - node.used.get(resource, Decimal(0))
        return -(free - requests.get(resource, Decimal(0)))

    async def _bind(self, uid: str, pod: Obj, node: NodeState) -> None:
        meta = pod["metadata"]
        binding = {"apiVersion": "v1", "kind": "Binding",
                   "metadata": {"name": meta["name"], "namespace": meta["namespace"], "uid": uid},
                   "target": {"apiVersion": "v1", "kind": "Node", "name": node.spec.name}}
        try:
            await self.client.request("POST", pod_path(pod, "/binding"), binding)
        except Exception as exc:
            self._forget_assumption(uid, node, object_key(pod))
            if getattr(exc, "status", None) not in (404, 409):  # gone / bound by someone else
                log.warning("binding %s to %s failed: %s", object_key(pod), node.spec.name, exc)
                await asyncio.sleep(0.5)
                self._active[uid] = object_key(pod)
                self._wake.set()
            return
        self._reported.pop(uid, None)
        self.recorder.emit(
            pod, "Normal", "Scheduled",
            f"Successfully assigned {meta['namespace']}/{meta['name']} to {node.spec.name}",
            component=DEFAULT_SCHEDULER)

    def _forget_assumption(self, uid: str, node: NodeState, key: str) -> None:
        """Undo an assumed placement; keep what the cache says if the pod is bound anyway."""
        node.remove(uid)
        self._assumed.pop(uid, None)
        current = self.pods.get(key)
        bound_to = ((current or {}).get("spec") or {}).get("nodeName")
        if current is not None and bound_to:
            self._account(uid, current, bound_to)

    async def _report_unschedulable(self, uid: str, pod: Obj, message: str) -> None:
        if self._reported.get(uid) == message:
            return
        condition = {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                     "message": message, "lastProbeTime": None,
                     "lastTransitionTime": rfc3339()}
        conditions = with_condition((pod.get("status") or {}).get("conditions") or [],
                                     condition)
        try:
            await self.client.request("PATCH", pod_path(pod, "/status"),
                                      {"status": {"conditions": conditions}},
                                      content_type=MERGE_PATCH)
        except ApiError as exc:
            if exc.status != 404:
                log.warning("reporting %s unschedulable failed: %s", object_key(pod), exc)
            return
        self._reported[uid] = message
        self.recorder.emit(pod, "Warning", "FailedScheduling", message,
                           component=DEFAULT_SCHEDULER)
