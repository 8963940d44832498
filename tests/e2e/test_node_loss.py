"""A GPU node dies, on the real control plane: its simulated kubelet is killed, so its Lease
stops being renewed, and the real node-lifecycle controller marks it lost, taints it and its
taint manager evicts the pod; the operator bills to the node's last heartbeat and brings the
rental back on a healthy node, on the same claim.

kubesim has no node-lifecycle controller to play this, so the test runs on the real control
plane only (timings shortened by the launcher's flags: upstream waits 50 s, then 300 s).
"""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from e2e_support import GROUP, VERSION, Rentals, eventually
from kubernetes import client, config

from gpurental_dev import substrate as substrates
from gpurental_dev.cluster import Cluster, GpuNodes, OperatorProcess
from gpurental_dev.k8s.controlplane import Timings
from gpurental_dev.testing import fresh_namespace

OFFER = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "GpuOffer", "metadata": {"name": "rtx"},
         "spec": {"gpu": {"product": "NVIDIA-GeForce-RTX-4090"}, "pricePerGpuHour": "0.69"}}
SHORT = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "GpuOffer", "metadata": {"name": "short"},
         "spec": {"gpu": {"product": "NVIDIA-GeForce-RTX-4090"}, "pricePerGpuHour": "0.69",
                  "provisioningTimeout": "15s"}}
# The node-lifecycle controller declares a node lost 15 s after its last heartbeat (the
# simulated kubelet renews every 5 s); pods tolerate an unreachable node 4 s, then are evicted.
TIMINGS = Timings(node_monitor_grace_period=15, not_ready_toleration=4, unreachable_toleration=4)


LOCAL_CLASS = {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
               "metadata": {"name": "local"}, "provisioner": "kubesim.dev/hostpath",
               "volumeBindingMode": "WaitForFirstConsumer", "reclaimPolicy": "Delete"}


class LossCluster:
    def __init__(self, cluster: Cluster, operator: OperatorProcess) -> None:
        self.cluster, self.operator = cluster, operator
        self.substrate = cluster.substrate

    def node(self, name: str) -> GpuNodes:
        """One more simulated GPU node in a process of its own, to be killed."""
        return GpuNodes(self.substrate.nodes_kubeconfig(), self.cluster.workdir,
                        [f"{name}=NVIDIA-GeForce-RTX-4090:4"],
                        [*self.substrate.node_args(), "--no-provisioner"],
                        log_name=f"{name}.log").start()


@pytest.fixture(scope="module",
                params=[s for s in substrates.selected() if s == substrates.KUBERNETES])
def loss_cluster(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
                 ) -> Iterator[LossCluster]:
    workdir: Path = tmp_path_factory.mktemp("node-loss")
    substrate = substrates.start(request.param, workdir, timings=TIMINGS)
    try:
        with Cluster(workdir / "cluster", nodes=["gpu-healthy=NVIDIA-GeForce-RTX-4090:4"],
                     substrate=substrate) as cluster:
            manifests = "---\n".join(_yaml(o) for o in (OFFER, SHORT, LOCAL_CLASS))
            cluster.kubectl("apply", "-f", "-", input=manifests)
            operator = cluster.start_operator("--metering-interval", "2",
                                              "--provisioning-timeout", "120")
            yield LossCluster(cluster, operator)
    finally:
        substrate.stop()


class Session:
    def __init__(self, loss: LossCluster, namespace: str, api: client.ApiClient) -> None:
        self.loss, self.namespace = loss, namespace
        self.core, self.custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
        self.coordination = client.CoordinationV1Api(api)
        self.rentals = Rentals(self.custom, self.core, namespace)

    def run_on(self, node: str, name: str, offer: str = "rtx", uncordon: bool = True,
               **spec: Any) -> tuple[dict[str, Any], datetime]:
        """A rental whose pod runs on `node` (the healthy node cordoned meanwhile), once the
        node heartbeat came after its container's start."""
        cluster = self.loss.cluster
        eventually(lambda: node in {n.metadata.name for n in self.core.list_node().items},
                   timeout=60)
        cluster.kubectl("cordon", "gpu-healthy")
        try:
            self.rentals.create(name, offer=offer, **spec)
            status = self.rentals.wait_phase(name, "Running", timeout=120)
        finally:
            if uncordon:
                cluster.kubectl("uncordon", "gpu-healthy")
        pod = self.core.read_namespaced_pod(name, self.namespace)
        assert pod.spec.node_name == node
        started = pod.status.container_statuses[0].state.running.started_at
        eventually(lambda: self.heartbeat(node).timestamp() > started.timestamp() + 2,
                   timeout=30)
        return status, started

    def pod(self, name: str) -> client.V1Pod:
        try:
            return self.core.read_namespaced_pod(name, self.namespace)
        except client.ApiException as exc:
            raise AssertionError(f"no pod {name} ({exc.status})") from None

    def heartbeat(self, node: str) -> datetime:
        return self.coordination.read_namespaced_lease(node, "kube-node-lease").spec.renew_time

    def node_lost(self, name: str) -> dict[str, Any]:
        def noticed() -> dict[str, Any]:
            ready = self.rentals.condition(name, "Ready") or {}
            assert ready.get("reason") == "NodeLost", ready
            return self.rentals.status(name)
        return eventually(noticed, timeout=120)


@pytest.fixture
def session(loss_cluster: LossCluster) -> Iterator[Session]:
    api = config.new_client_from_config(config_file=str(loss_cluster.cluster.kubeconfig))
    with fresh_namespace(api, "loss") as namespace:
        yield Session(loss_cluster, namespace, api)
    # Dead nodes left behind would put the zone in partial disruption for the next test
    # (most of its nodes NotReady: the controller stops NoExecute tainting and evicting).
    core = client.CoreV1Api(api)
    for node in core.list_node().items:
        if node.metadata.name.startswith("gpu-doomed-"):
            try:
                core.delete_node(node.metadata.name)
            except client.ApiException as exc:  # a node that went away by itself
                if exc.status != 404:
                    raise
    api.close()


def _yaml(obj: object) -> str:
    import yaml
    return str(yaml.safe_dump(obj))


def ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_a_lost_node_is_billed_to_its_last_heartbeat_and_the_rental_moves(
        session: Session) -> None:
    rentals = session.rentals
    doomed = session.loss.node("gpu-doomed-1")
    try:
        first, started = session.run_on("gpu-doomed-1", "trainer", storage={"size": "1Gi"})
        claim_uid = rentals.status("trainer")["pvcUid"]
        doomed.kill()  # the node dies: no more heartbeats
        lost = session.node_lost("trainer")
    finally:
        doomed.stop()
    last_heartbeat = session.heartbeat("gpu-doomed-1")
    assert lost["phase"] == "Provisioning"
    assert lost.get("runningSince") is None
    assert ts(lost["disruption"]["at"]) == last_heartbeat.replace(microsecond=0)
    assert lost["accruedSeconds"] == int((last_heartbeat - started).total_seconds()) > 0
    rentals.await_events("trainer", "NodeLost")

    # Kubernetes evicts the pod; the operator removes it (no kubelet will confirm) and a new
    # one runs on the healthy node, on the same claim.
    def moved() -> client.V1Pod:
        pod = session.pod("trainer")
        assert pod.spec.node_name == "gpu-healthy", pod.spec.node_name
        assert pod.status.phase == "Running"
        return pod
    new_pod = eventually(moved, timeout=120)
    status = rentals.wait_phase("trainer", "Running", timeout=60)
    new_start = new_pod.status.container_statuses[0].state.running.started_at
    assert status["runningSince"] == new_start.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert status["accruedSeconds"] == lost["accruedSeconds"]  # the gap is never billed
    assert status["pvcUid"] == claim_uid == rentals.pvcs()[0].metadata.uid
    assert status["restarts"] == 1
    assert status["disruption"]["reason"] == "NodeLost"
    assert first["firstStartedAt"] == status["firstStartedAt"]
    metrics = urllib.request.urlopen(session.loss.operator.metrics_url).read().decode()
    assert (f'gpurental_disruptions_total{{namespace="{session.namespace}",offer="rtx",'
            f'reason="NodeLost"}} 1.0') in metrics


def test_a_volume_pinned_to_a_lost_node_holds_the_rental_until_the_node_returns(
        session: Session) -> None:
    rentals, core = session.rentals, session.core
    doomed = session.loss.node("gpu-doomed-2")
    try:
        _, started = session.run_on("gpu-doomed-2", "local", storage={
            "size": "1Gi", "storageClassName": "local"})
        claim = rentals.pvcs()[0]
        volume = core.read_persistent_volume(claim.spec.volume_name)
        terms = volume.spec.node_affinity.required.node_selector_terms
        assert terms[0].match_expressions[0].values == ["gpu-doomed-2"]
        doomed.kill()
        session.node_lost("local")
    finally:
        doomed.stop()

    status = rentals.wait_phase("local", "Paused", timeout=120)
    assert rentals.condition("local", "Paused")["reason"] == "VolumeUnavailable"
    assert "gpu-doomed-2" in status["message"]
    assert rentals.pods() == []  # no pod waits forever for a node that cannot take it
    lost_seconds = status["accruedSeconds"]
    assert lost_seconds == int((session.heartbeat("gpu-doomed-2") - started).total_seconds())

    back = session.loss.node("gpu-doomed-2")  # the node returns, with the volume
    try:
        status = rentals.wait_phase("local", "Running", timeout=120)
        pod = core.read_namespaced_pod("local", session.namespace)
        assert pod.spec.node_name == "gpu-doomed-2"
        assert status["pvcUid"] == claim.metadata.uid
        assert status["accruedSeconds"] == lost_seconds
    finally:
        back.stop()


def test_no_healthy_node_within_the_timeout_pauses_with_no_capacity_not_failed(
        session: Session) -> None:
    rentals = session.rentals
    doomed = session.loss.node("gpu-doomed-3")
    try:
        _, started = session.run_on("gpu-doomed-3", "stranded", offer="short", uncordon=False,
                                    storage={"size": "1Gi"})
        doomed.kill()
        session.node_lost("stranded")
    finally:
        doomed.stop()
    try:
        status = rentals.wait_phase("stranded", "Paused", timeout=180)
        assert rentals.condition("stranded", "Paused")["reason"] == "NoCapacity"
        assert not status.get("refundedCents")  # what ran before the loss stays billed
        heartbeat = session.heartbeat("gpu-doomed-3")
        assert status["accruedSeconds"] == int((heartbeat - started).total_seconds()) > 0
        assert rentals.pvcs()[0].metadata.uid == status["pvcUid"]  # the data is kept
        eventually(lambda: rentals.pods() == [])  # deleted after the status write
    finally:
        session.loss.cluster.kubectl("uncordon", "gpu-healthy")


def test_a_pause_before_the_loss_is_declared_is_billed_to_the_last_heartbeat(
        session: Session) -> None:
    """The user pauses while the node is dead but not yet declared lost: the pause closes the
    meter then; once the node-lifecycle controller declares the loss, the segment is cut back
    to the node's last heartbeat and the stuck pod is removed with grace 0."""
    rentals = session.rentals
    doomed = session.loss.node("gpu-doomed-4")
    try:
        _, started = session.run_on("gpu-doomed-4", "early", storage={"size": "1Gi"})
        doomed.kill()
        rentals.patch("early", state="Paused")  # inside the controller's 15 s grace period
        eventually(lambda: session.pod("early").metadata.deletion_timestamp is not None)
    finally:
        doomed.stop()
    eventually(lambda: not rentals.pods(), timeout=120)  # forced once the loss is declared
    status = rentals.wait_phase("early", "Paused", timeout=60)
    heartbeat = session.heartbeat("gpu-doomed-4")
    assert status["accruedSeconds"] == int((heartbeat - started).total_seconds()) > 0
    assert rentals.pvcs()[0].metadata.uid == status["pvcUid"]
