"""The simulated nodes as a whole: informers, scheduler, kubelet and provisioner wired together.

:class:`SimulatedNodes` runs them on the caller's event loop; :class:`SimulatedNodesThread` on
its own loop in a daemon thread, for synchronous callers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import threading
from collections.abc import Iterable
from typing import Any

from ..provisioner import Provisioner
from .background import Background
from .client import KubeClient
from .events import EventRecorder
from .informer import Informer
from .kubeconfig import load_kubeconfig
from .kubelet import Kubelet
from .objects import Obj
from .registration import delete_nodes, register_nodes, renew_lease
from .scheduling import Scheduler
from .specs import NodeSpec, as_specs
from .state import NodeState

log = logging.getLogger("kubesim.node")


class SimulatedNodes:
    """Simulated GPU nodes (kubelet + scheduler + PVC provisioner) for one API server.

    ``start()`` registers the nodes and returns once the caches are synced; ``stop()`` ends
    every loop and, unless ``keep_nodes``, deletes the Node objects. With ``namespace`` only the
    pods and claims of that namespace are handled (tests use it to stay out of each other's way).
    """

    def __init__(self, kubeconfig: str | os.PathLike[str], nodes: Iterable[NodeSpec | str], *,
                 start_delay: float = 0.0, pull_fail_images: str | None = None,
                 pull_backoff: float = 1.0, fail_storage_classes: Iterable[str] = (),
                 provisioner: bool = True, keep_nodes: bool = False,
                 namespace: str | None = None, warning_events_only: bool = False,
                 scheduler: bool = True, lease_interval: float = 0.0,
                 external_provisioner: bool = False):
        self.kubeconfig = os.fspath(kubeconfig)
        # On a real control plane kube-scheduler binds, the node-lifecycle controller watches
        # the node Leases, and the PersistentVolume controller binds the volumes we provision.
        self._with_scheduler = scheduler
        self._lease_interval = lease_interval
        self._external_provisioner = external_provisioner
        self.namespace = namespace
        self.warning_events_only = warning_events_only
        self.specs = as_specs(nodes)
        self.keep_nodes = keep_nodes
        self.nodes = {s.name: NodeState(s, i, s.allocatable()) for i, s in enumerate(self.specs)}
        self._start_delay = start_delay
        self._pull_fail = re.compile(pull_fail_images) if pull_fail_images else None
        self._pull_backoff = pull_backoff
        self._fail_classes = frozenset(fail_storage_classes)
        self._with_provisioner = provisioner
        self._tasks: list[asyncio.Task[None]] = []
        self._silent: set[str] = set()  # nodes whose heartbeats are paused
        self.client: KubeClient | None = None
        self._background: Background | None = None

    async def __aenter__(self) -> SimulatedNodes:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self, timeout: float = 30.0) -> None:
        client = self.client = KubeClient(load_kubeconfig(self.kubeconfig))
        await client.open()
        background = self._background = Background()
        recorder = EventRecorder(client, background, warnings_only=self.warning_events_only)
        scope = f"/api/v1/namespaces/{self.namespace}" if self.namespace else "/api/v1"
        pods = Informer(client, f"{scope}/pods", lambda *a: None)
        pvcs = Informer(client, f"{scope}/persistentvolumeclaims", lambda *a: None)
        scheduler = Scheduler(client, self.nodes, recorder, pods.cache, background)
        kubelet = Kubelet(client, self.nodes, recorder, background, pods.cache, pvcs.cache,
                          start_delay=self._start_delay, pull_fail=self._pull_fail,
                          pull_backoff=self._pull_backoff, on_terminated=scheduler.release)
        provisioner = Provisioner(client, recorder.emit, background.spawn,
                                  fail_classes=self._fail_classes,
                                  external=self._external_provisioner)

        def on_pod(kind: str, obj: Obj, old: Obj | None) -> None:
            if self._with_scheduler:
                scheduler.on_pod(kind, obj, old)
            kubelet.on_pod(kind, obj, old)

        def on_pvc(kind: str, obj: Obj, old: Obj | None) -> None:
            if self._with_provisioner:
                provisioner.on_pvc(kind, obj, old)
            kubelet.on_pvc(kind, obj, old)

        # The scheduler and kubelet read the informers' caches, so the informers exist first and
        # get their handlers here.
        pods.handler, pvcs.handler = on_pod, on_pvc
        nodes = Informer(client, "/api/v1/nodes",
                         scheduler.on_node if self._with_scheduler else self._observe_node)
        loops = [("nodes", nodes.run()), ("pvcs", pvcs.run()), ("pods", pods.run())]
        if self._with_scheduler:
            loops.append(("scheduler", scheduler.run()))
        if self._lease_interval > 0:
            loops.append(("leases", self._renew_leases()))
        try:
            await asyncio.wait_for(register_nodes(client, self.nodes.values()), timeout)
            for name, coro in loops:
                self._tasks.append(asyncio.create_task(coro, name=f"kubesim-node-{name}"))
            await asyncio.wait_for(asyncio.gather(
                nodes.synced.wait(), pvcs.synced.wait(), pods.synced.wait()), timeout)
        except BaseException:
            await self.stop()
            raise

    def _observe_node(self, kind: str, node: Obj, old: Obj | None) -> None:
        """Without our scheduler, the kubelet still follows its nodes' labels and taints."""
        state = self.nodes.get(str((node.get("metadata") or {}).get("name")))
        if state is not None and kind != "DELETED":
            state.observe(node)

    def pause_heartbeats(self, name: str) -> None:
        """Stop renewing one node's Lease: the node-lifecycle controller then finds it lost."""
        self._silent.add(name)

    def resume_heartbeats(self, name: str) -> None:
        self._silent.discard(name)

    async def _renew_leases(self) -> None:
        """The kubelet's node heartbeat: a Lease per node in kube-node-lease, renewed often."""
        while True:
            for name in self.nodes:
                if name not in self._silent:
                    try:
                        await self._renew_lease(name)
                    except Exception:  # the API server may be busy: next round
                        log.warning("lease renewal for node %s failed", name, exc_info=True)
            await asyncio.sleep(self._lease_interval)

    async def _renew_lease(self, name: str) -> None:
        client = self.client
        assert client is not None
        await renew_lease(client, name)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self._background is not None:
            await self._background.cancel_all()
        client, self.client = self.client, None
        if client is None:
            return
        try:
            if not self.keep_nodes:
                # Best effort, and quick: the API server may already be gone.
                client.retries = 1
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(delete_nodes(client, self.nodes), 5.0)
        finally:
            await client.close()


class SimulatedNodesThread:
    """:class:`SimulatedNodes` on an event loop in a daemon thread, for synchronous callers."""

    def __init__(self, kubeconfig: str | os.PathLike[str], nodes: Iterable[NodeSpec | str],
                 **options: Any):
        self.sim = SimulatedNodes(kubeconfig, nodes, **options)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True,
                                        name="kubesim-node")

    def start(self, timeout: float = 60.0) -> SimulatedNodesThread:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self.sim.start(), self._loop)
        try:
            future.result(timeout)
        except BaseException:
            self._shutdown()
            raise
        return self

    def stop(self, timeout: float = 30.0) -> None:
        if not self._thread.is_alive():
            return
        try:
            asyncio.run_coroutine_threadsafe(self.sim.stop(), self._loop).result(timeout)
        finally:
            self._shutdown()

    def _shutdown(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        if not self._thread.is_alive():
            self._loop.close()

    def __enter__(self) -> SimulatedNodesThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
