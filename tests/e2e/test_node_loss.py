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

import pytest
from e2e_support import GROUP, VERSION, Rentals, eventually
from kubernetes import client, config

from gpurental_dev import substrate as substrates
from gpurental_dev.cluster import Cluster, GpuNodes, OperatorProcess
from gpurental_dev.k8s.controlplane import Timings
from gpurental_dev.testing import fresh_namespace

OFFER = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "GpuOffer", "metadata": {"name": "rtx"},
         "spec": {"gpu": {"product": "NVIDIA-GeForce-RTX-4090"}, "pricePerGpuHour": "0.69"}}
# The node-lifecycle controller declares a node lost 15 s after its last heartbeat (the
# simulated kubelet renews every 5 s); pods tolerate an unreachable node 4 s, then are evicted.
TIMINGS = Timings(node_monitor_grace_period=15, not_ready_toleration=4, unreachable_toleration=4)


class LossCluster:
    def __init__(self, cluster: Cluster, doomed: GpuNodes, operator: OperatorProcess) -> None:
        self.cluster, self.doomed, self.operator = cluster, doomed, operator


@pytest.fixture(scope="module",
                params=[s for s in substrates.selected() if s == substrates.KUBERNETES])
def loss_cluster(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
                 ) -> Iterator[LossCluster]:
    workdir: Path = tmp_path_factory.mktemp("node-loss")
    substrate = substrates.start(request.param, workdir, timings=TIMINGS)
    try:
        with Cluster(workdir / "cluster", nodes=["gpu-healthy=NVIDIA-GeForce-RTX-4090:4"],
                     substrate=substrate) as cluster:
            doomed = GpuNodes(substrate.nodes_kubeconfig(), cluster.workdir,
                              ["gpu-doomed=NVIDIA-GeForce-RTX-4090:4"],
                              [*substrate.node_args(), "--no-provisioner"],
                              log_name="doomed-nodes.log").start()
            try:
                cluster.kubectl("apply", "-f", "-", input=_yaml(OFFER))
                operator = cluster.start_operator("--metering-interval", "2",
                                                  "--provisioning-timeout", "120")
                yield LossCluster(cluster, doomed, operator)
            finally:
                doomed.stop()
    finally:
        substrate.stop()


def _yaml(obj: object) -> str:
    import yaml
    return str(yaml.safe_dump(obj))


def ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_a_lost_node_is_billed_to_its_last_heartbeat_and_the_rental_moves(
        loss_cluster: LossCluster) -> None:
    cluster = loss_cluster.cluster
    api = config.new_client_from_config(config_file=str(cluster.kubeconfig))
    core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
    coordination = client.CoordinationV1Api(api)
    with fresh_namespace(api, "loss") as namespace:
        rentals = Rentals(custom, core, namespace)
        eventually(lambda: {n.metadata.name for n in core.list_node().items}
                   >= {"gpu-healthy", "gpu-doomed"}, timeout=60)
        cluster.kubectl("cordon", "gpu-healthy")  # the first pod lands on the doomed node
        rentals.create("trainer", offer="rtx", storage={"size": "1Gi"})
        first = rentals.wait_phase("trainer", "Running", timeout=120)
        pod = core.read_namespaced_pod("trainer", namespace)
        assert pod.spec.node_name == "gpu-doomed"
        claim_uid = rentals.status("trainer")["pvcUid"]
        started = pod.status.container_statuses[0].state.running.started_at
        cluster.kubectl("uncordon", "gpu-healthy")
        # A heartbeat after the container started, so the billed interval is not empty.
        eventually(lambda: coordination.read_namespaced_lease(
            "gpu-doomed", "kube-node-lease").spec.renew_time.timestamp()
            > started.timestamp() + 2, timeout=30)

        loss_cluster.doomed.kill()  # the node dies: no more heartbeats

        def noticed() -> dict[str, object]:
            ready = rentals.condition("trainer", "Ready") or {}
            assert ready.get("reason") == "NodeLost", ready
            return rentals.status("trainer")
        lost = eventually(noticed, timeout=120)
        lease = coordination.read_namespaced_lease("gpu-doomed", "kube-node-lease")
        last_heartbeat = lease.spec.renew_time
        assert lost["phase"] == "Provisioning"
        assert lost.get("runningSince") is None
        assert ts(lost["disruption"]["at"]) == last_heartbeat.replace(microsecond=0)
        assert lost["accruedSeconds"] == int((last_heartbeat - started).total_seconds()) > 0
        assert "NodeLost" in rentals.event_reasons("trainer")

        # Kubernetes evicts the pod; the operator removes it (no kubelet will confirm) and a
        # new one runs on the healthy node, on the same claim.
        def moved() -> client.V1Pod:
            pod = core.read_namespaced_pod("trainer", namespace)
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
        metrics = urllib.request.urlopen(loss_cluster.operator.metrics_url).read().decode()
        assert (f'gpurental_disruptions_total{{namespace="{namespace}",offer="rtx",'
                f'reason="NodeLost"}} 1.0') in metrics
    api.close()
