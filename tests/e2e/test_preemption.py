"""Interruptible offers, proven with the real kube-scheduler's priority and preemption.

A pool of four GPUs full of interruptible rentals; an on-demand rental of two GPUs arrives.
kube-scheduler preempts exactly two victims (it picks them, sets their DisruptionTarget
condition and deletes them); the operator bills each to the second its container stopped and
asks at once for a new pod on the same volume, which waits for capacity; the on-demand pod
runs. When the on-demand rental stops, the victims run again. Every rental's seconds and the
wallet match a reference priced from the pods' own running intervals (the kubelet's
startedAt and finishedAt, read from a watch).

kubesim's scheduler does not preempt, so this runs on the real control plane only; the
PriorityClasses are the chart's own, rendered with helm.
"""

from __future__ import annotations

import functools
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest
import yaml
from e2e_support import GROUP, VERSION, Rentals, eventually
from kubernetes import client, config, watch

from gpurental_dev import substrate as substrates
from gpurental_dev.cluster import ROOT, Cluster, OperatorProcess
from gpurental_dev.testing import fresh_namespace

HELM = ROOT / ".tools" / "bin" / "helm"
SPOT, ON_DEMAND = Decimal("3.60"), Decimal("7.20")  # USD per GPU hour: 0.1 and 0.2 cents/s
OFFERS = f"""
apiVersion: {GROUP}/{VERSION}
kind: GpuOffer
metadata: {{name: spot}}
spec:
  gpu: {{product: NVIDIA-GeForce-RTX-4090}}
  pricePerGpuHour: "{SPOT}"
  interruptible: true
---
apiVersion: {GROUP}/{VERSION}
kind: GpuOffer
metadata: {{name: ondemand}}
spec:
  gpu: {{product: NVIDIA-GeForce-RTX-4090}}
  pricePerGpuHour: "{ON_DEMAND}"
"""


def chart_priority_classes() -> str:
    if not HELM.exists():
        subprocess.run(["make", "tools"], cwd=ROOT, check=True, capture_output=True)
    rendered = subprocess.run(
        [str(HELM), "template", "gpr", str(ROOT / "charts" / "gpu-rental-operator"),
         "--set", "crds.enabled=false"], capture_output=True, text=True, check=True).stdout
    classes = [d for d in yaml.safe_load_all(rendered) if d and d["kind"] == "PriorityClass"]
    assert len(classes) == 2
    return yaml.safe_dump_all(classes)


class Pool:
    def __init__(self, cluster: Cluster, operator: OperatorProcess) -> None:
        self.cluster, self.operator = cluster, operator

    def operator_metrics(self) -> str:
        with urllib.request.urlopen(self.operator.metrics_url, timeout=5) as response:
            return str(response.read().decode())


@pytest.fixture(scope="module",
                params=[s for s in substrates.selected() if s == substrates.KUBERNETES])
def pool(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[Pool]:
    workdir: Path = tmp_path_factory.mktemp("preemption")
    with Cluster(workdir, nodes=["gpu-pool=NVIDIA-GeForce-RTX-4090:4"],
                 substrate=request.param) as cluster:
        cluster.kubectl("apply", "-f", "-", input=chart_priority_classes())
        cluster.kubectl("apply", "-f", "-", input=OFFERS)
        operator = cluster.start_operator(
            "--metering-interval", "2", "--provisioning-timeout", "20",
            "--on-demand-priority-class", "gpurental-on-demand",
            "--interruptible-priority-class", "gpurental-interruptible")
        yield Pool(cluster, operator)


class Intervals:
    """Every pod's workload container start and end, as the kubelet reported them."""

    def __init__(self, core: client.CoreV1Api, namespace: str) -> None:
        self.pods: dict[str, client.V1Pod] = {}
        self._watch = watch.Watch()
        threading.Thread(target=self._run, args=(core, namespace), daemon=True).start()

    def _run(self, core: client.CoreV1Api, namespace: str) -> None:
        try:
            for event in self._watch.stream(core.list_namespaced_pod, namespace,
                                            timeout_seconds=600):
                self.pods[event["object"].metadata.uid] = event["object"]
        except Exception:  # the namespace went away at the end
            return

    def stop(self) -> None:
        self._watch.stop()

    def of(self, rental: str) -> list[tuple[datetime, datetime | None]]:
        found = []
        for pod in self.pods.values():
            if pod.metadata.name != rental or not pod.status.container_statuses:
                continue
            state = pod.status.container_statuses[0].state
            if state.running is not None:
                found.append((state.running.started_at, None))
            elif state.terminated is not None:
                found.append((state.terminated.started_at, state.terminated.finished_at))
        return sorted(found, key=lambda i: i[0])

    def seconds(self, rental: str) -> int:
        total = 0
        for start, end in self.of(rental):
            assert end is not None, f"{rental}: a pod still runs"
            total += int((end - start).total_seconds())
        return total


def cents(seconds: int, price: Decimal, gpus: int) -> int:
    return int((Decimal(seconds) * price * gpus * 100 / 3600).quantize(Decimal(1),
                                                                       ROUND_HALF_UP))


def pod_uid(rentals: Rentals, name: str) -> str | None:
    try:
        return str(rentals.core.read_namespaced_pod(name, rentals.namespace).metadata.uid)
    except client.ApiException:
        return None


def test_an_on_demand_rental_preempts_exactly_the_needed_interruptible_ones(pool: Pool) -> None:
    api = config.new_client_from_config(config_file=str(pool.cluster.kubeconfig))
    core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
    with fresh_namespace(api, "preempt") as namespace:
        rentals = Rentals(custom, core, namespace)
        intervals = Intervals(core, namespace)
        custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "wallets", {
            "apiVersion": f"{GROUP}/{VERSION}", "kind": "Wallet", "metadata": {"name": "team"},
            "spec": {"budget": "100.00"}})
        spots = [f"spot-{i}" for i in range(4)]
        for name in spots:
            rentals.create(name, offer="spot", wallet="team", storage={"size": "1Gi"})
        for name in spots:
            rentals.wait_phase(name, "Running", timeout=120)
        before = {name: pod_uid(rentals, name) for name in spots}
        claims = {name: rentals.status(name)["pvcUid"] for name in spots}
        time.sleep(2)  # some seconds billed before the preemption

        created = time.monotonic()
        rentals.create("urgent", offer="ondemand", gpus=2, wallet="team",
                       storage={"size": "1Gi"})
        rentals.wait_phase("urgent", "Running", timeout=120)
        print(f"on-demand rental Running {time.monotonic() - created:.2f}s after creation "
              "on a full pool")

        def victims() -> list[str]:
            hit = [n for n in spots if rentals.status(n).get("interruptions") == 1]
            assert len(hit) == 2, hit
            return hit
        hit = eventually(victims, timeout=60)
        spared = [n for n in spots if n not in hit]
        for name in spared:  # exactly the needed victims: the others never stopped
            assert rentals.status(name)["phase"] == "Running"
            assert pod_uid(rentals, name) == before[name]
        def interrupted_and_billed(name: str) -> None:
            # The pass that counts the interruption may come before the one that closes
            # the meter (the pod is seen deleting while its container still runs), and the
            # watch of the pods may lag the reads.
            status = rentals.status(name)
            assert status["phase"] == "Provisioning", status["phase"]
            ready = rentals.condition(name, "Ready") or {}
            assert ready.get("reason") == "WaitingForCapacity", ready
            interrupted = rentals.condition(name, "Interrupted") or {}
            assert interrupted.get("status") == "True", interrupted
            assert "preempt" in interrupted.get("message", "").lower()
            found = intervals.of(name)
            assert found and found[0][1] is not None, found
            (start, end), *_ = found
            # Billed to the second the container stopped, not a second more.
            assert status["accruedSeconds"] == int((end - start).total_seconds()), status
            assert status.get("runningSince") is None
        for name in hit:
            eventually(functools.partial(interrupted_and_billed, name), timeout=30)
            rentals.await_events(name, "Preempted")

        # Waiting for capacity never fails (the provisioning timeout is 20 s here).
        time.sleep(25)
        for name in hit:
            assert rentals.status(name)["phase"] == "Provisioning"

        rentals.patch("urgent", state="Stopped")
        for name in hit:
            status = rentals.wait_phase(name, "Running", timeout=120)
            assert status["pvcUid"] == claims[name]  # the same volume
            assert status["interruptedSeconds"] > 0
            assert (rentals.condition(name, "Interrupted") or {}).get("status") == "False"

        for name in spots:
            rentals.patch(name, state="Paused")
        for name in spots:
            rentals.wait_phase(name, "Paused", timeout=60)
        eventually(lambda: not rentals.pods(), timeout=60)
        # The watch has every pod's last state: each one's end.
        eventually(lambda: [intervals.seconds(n) for n in (*spots, "urgent")], timeout=15)

        spent_low = spent_high = 0
        for name, price, gpus in [*((n, SPOT, 1) for n in spots), ("urgent", ON_DEMAND, 2)]:
            status = rentals.status(name)
            reference = intervals.seconds(name)
            # The operator closes a pause's or stop's segment just before its DELETE, the
            # kubelet reports the end just after: at most one whole second apart per pod it
            # stopped itself (one each); preempted segments end exactly.
            assert reference - 1 <= status["accruedSeconds"] <= reference, (name, status)
            spent_low += cents(reference - 1, price, gpus)
            spent_high += cents(reference, price, gpus)

        def wallet_spent() -> int:
            wallet = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, "wallets",
                                                         "team")
            spent = int(wallet.get("status", {}).get("spentCents", -1))
            assert spent_low <= spent <= spent_high, (spent, spent_low, spent_high)
            return spent
        eventually(wallet_spent, timeout=30)
        metrics = pool.operator_metrics()
        assert (f'gpurental_interruptions_total{{namespace="{namespace}",offer="spot"}} 2.0'
                in metrics)
        intervals.stop()
    api.close()


def test_a_preemption_while_the_operator_is_down_is_billed_to_the_containers_end(
        pool: Pool) -> None:
    """The operator is killed, the scheduler preempts, the victim's pod is gone before the
    operator is back: its end and cause come from the Events (the kubelet's Killing, the
    scheduler's Preempted). A victim whose user paused it meanwhile ends Paused, billed the
    same."""
    api = config.new_client_from_config(config_file=str(pool.cluster.kubeconfig))
    core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
    with fresh_namespace(api, "restart") as namespace:
        rentals = Rentals(custom, core, namespace)
        intervals = Intervals(core, namespace)
        spots = [f"spot-{i}" for i in range(4)]
        for name in spots:
            rentals.create(name, offer="spot", storage={"size": "1Gi"})
        for name in spots:
            rentals.wait_phase(name, "Running", timeout=120)
        time.sleep(2)
        # The on-demand pod exists but cannot be placed (the node is cordoned) when the
        # operator dies; uncordoned, the scheduler preempts with nobody watching.
        pool.cluster.kubectl("cordon", "gpu-pool")
        try:
            rentals.create("urgent", offer="ondemand", gpus=4, storage={"size": "1Gi"})
            eventually(lambda: pod_uid(rentals, "urgent") is not None, timeout=60)
            pool.operator.kill()
            pool.cluster.kubectl("uncordon", "gpu-pool")
            eventually(lambda: all(pod_uid(rentals, n) is None for n in spots), timeout=60)
            rentals.patch("spot-0", state="Paused")  # its user pauses it meanwhile
        finally:
            pool.cluster.kubectl("uncordon", "gpu-pool")
            pool.operator.start()
        rentals.wait_phase("urgent", "Running", timeout=120)
        rentals.wait_phase("spot-0", "Paused", timeout=60)
        for name in spots[1:]:
            eventually(lambda n=name: (rentals.condition(n, "Ready") or {}).get("reason")
                       == "WaitingForCapacity", timeout=60)
        for name in spots:
            status = rentals.status(name)
            ((start, end),) = intervals.of(name)
            assert end is not None
            assert status["accruedSeconds"] == int((end - start).total_seconds()), name
            if name != "spot-0":
                assert status["interruptions"] == 1
                assert (rentals.condition(name, "Interrupted") or {}).get("status") == "True"
        rentals.patch("urgent", state="Stopped")
        rentals.wait_phase("spot-1", "Running", timeout=120)
        for name in spots:
            rentals.patch(name, state="Stopped")
        intervals.stop()
    api.close()
