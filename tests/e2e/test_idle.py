"""Idle auto-pause end to end: a real Prometheus scraping a fake DCGM exporter, the real operator.

These tests run their own emulated cluster and operator (started with --prometheus-url and a
1s idle check): the session operator runs without Prometheus, and two operators on one cluster
would fight over the same rentals. Idle windows are 6s (the offers' default and floor).

Negative cases ("this one is not paused") never sleep and hope: they wait for a rental of the
same window that started later and is idle to be paused, then for the other rental's next
reconcile pass after that moment, and only then look at it. A rental that started earlier was
due in the same check round and was judged on the same data.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from e2e_support import Rentals, eventually
from idle_support import FakeDcgmExporter, PodGpus, PrometheusProcess
from kubernetes import client, config

from gpurental.clock import parse_ts
from gpurental_dev.cluster import Cluster, OperatorProcess
from gpurental_dev.testing import fresh_namespace

WINDOW = 6
PLUGIN = Path(sys.executable).parent / "kubectl-gpurental"
OFFERS = """
apiVersion: gpurental.dev/v1alpha1
kind: GpuOffer
metadata: {name: rtx4090-idle}
spec:
  gpu: {product: NVIDIA-GeForce-RTX-4090}
  pricePerGpuHour: "0.69"
  idle: {default: {below: 5, for: 6s}, minWindow: 6s}
---
apiVersion: gpurental.dev/v1alpha1
kind: GpuOffer
metadata: {name: a100-mig-idle}
spec:
  gpu: {product: NVIDIA-A100-SXM4-80GB, resourceName: nvidia.com/mig-1g.10gb}
  pricePerGpuHour: "0.40"
  idle: {default: {below: 5, for: 6s}, minWindow: 6s}
"""


@pytest.fixture(scope="module")
def exporter() -> Iterator[FakeDcgmExporter]:
    fake = FakeDcgmExporter()
    yield fake
    fake.close()


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory,
               exporter: FakeDcgmExporter) -> Iterator[PrometheusProcess]:
    process = PrometheusProcess(tmp_path_factory.mktemp("prometheus"),
                                f"127.0.0.1:{exporter.port}")
    try:
        process.wait_ready()
        yield process
    finally:
        process.close()


@pytest.fixture(scope="module")
def idle_cluster(tmp_path_factory: pytest.TempPathFactory, substrate: str
                 ) -> Iterator[Cluster]:
    nodes = ["gpu-4090-0=NVIDIA-GeForce-RTX-4090:8",
             "gpu-a100-mig=NVIDIA-A100-SXM4-80GB:7:nvidia.com/mig-1g.10gb"]
    with Cluster(tmp_path_factory.mktemp(f"idle-cluster-{substrate}"), nodes=nodes,
                 substrate=substrate) as cluster:
        cluster.kubectl("apply", "-f", "-", input=OFFERS)
        yield cluster


@pytest.fixture(scope="module")
def idle_operator(idle_cluster: Cluster, prometheus: PrometheusProcess) -> OperatorProcess:
    return idle_cluster.start_operator(
        "--metering-interval", "2", "--provisioning-timeout", "120",
        "--prometheus-url", prometheus.url, "--idle-check-interval", "1")


@pytest.fixture(scope="module")
def idle_api(idle_cluster: Cluster) -> Iterator[client.ApiClient]:
    api = config.new_client_from_config(config_file=str(idle_cluster.kubeconfig))
    yield api
    api.close()


@pytest.fixture
def team(idle_api: client.ApiClient, idle_operator: OperatorProcess) -> Iterator[Rentals]:
    with fresh_namespace(idle_api, "idle") as name:
        yield Rentals(client.CustomObjectsApi(idle_api), client.CoreV1Api(idle_api), name)


def wait_idle_paused(team: Rentals, name: str, timeout: float = 90.0) -> dict[str, str]:
    """Wait for the Idle pause; returns the Idle condition."""
    def check() -> dict[str, str]:
        status = team.status(name)
        conditions = {c["type"]: c for c in status.get("conditions") or []}
        assert status.get("phase") == "Paused", f"{name}: {status.get('phase')}"
        assert conditions["Paused"]["reason"] == "Idle", conditions["Paused"]
        assert conditions["Idle"]["status"] == "True", conditions["Idle"]
        return dict(conditions["Idle"])
    return eventually(check, timeout, interval=0.25)


def reconciled_after(team: Rentals, name: str, moment: datetime) -> dict[str, object]:
    """The rental's status once a reconcile pass has run after `moment` (its heartbeat)."""
    def check() -> dict[str, object]:
        status = team.status(name)
        if status.get("phase") != "Running":  # no heartbeat will come: fail now, say why
            pytest.fail(f"{name} is {status.get('phase')}: {status.get('conditions')}")
        beat = status.get("lastHeartbeatAt")
        assert beat and parse_ts(str(beat)) > moment, f"{name}: heartbeat {beat} <= {moment}"
        return status
    return eventually(check, 60, interval=0.25)


def operator_metric(operator: OperatorProcess, name: str, namespace: str) -> float:
    with urllib.request.urlopen(operator.metrics_url, timeout=10) as response:
        text = response.read().decode()
    pattern = rf'^{name}\{{[^}}]*namespace="{namespace}"[^}}]*\}} (\S+)$'
    return sum(float(v) for v in re.findall(pattern, text, re.MULTILINE))


def test_only_the_idle_rental_pauses_not_a_busy_a_gapped_or_a_busy_mig_one(
        team: Rentals, exporter: FakeDcgmExporter) -> None:
    ns = team.namespace
    exporter.set(PodGpus(ns, "busy", util=80))
    # Its series vanish for 3s of every 5s: every 6s window holds a scrape gap.
    exporter.set(PodGpus(ns, "gappy", util=0, present=lambda: time.time() % 5 < 2))
    # MIG slice: GPU_UTIL reads 0 on MIG, the engine activity says 60% busy.
    exporter.set(PodGpus(ns, "mig", util=0, engine_active=0.6))
    exporter.set(PodGpus(ns, "idle", util=1))
    team.create("busy", offer="rtx4090-idle")
    team.create("gappy", offer="rtx4090-idle")
    team.create("mig", offer="a100-mig-idle")
    for name in ("busy", "gappy", "mig"):
        team.wait_phase(name, "Running")
    team.create("idle", offer="rtx4090-idle")

    condition = wait_idle_paused(team, "idle")
    assert condition["reason"] == "Idle"
    assert re.search(r"stayed below 5% for 6s \(peak 1\.0%, DCGM_FI_DEV_GPU_UTIL\)",
                     condition["message"]), condition["message"]
    eventually(lambda: "Idle" in team.event_reasons("idle"))
    # The pod's deletion is graceful on a real API server: it is gone once its kubelet
    # (the node simulation) has stopped it, a moment after the pause.
    eventually(lambda: not [p for p in team.pods() if p.metadata.name == "idle"], timeout=30)

    paused_at = parse_ts(condition["lastTransitionTime"])
    for name in ("busy", "gappy", "mig"):
        status = reconciled_after(team, name, paused_at)
        assert status["phase"] == "Running", (name, status)
        assert not status.get("idlePausedGeneration"), (name, status)


def test_a_failed_scrape_pauses_nothing_until_a_full_window_of_data(
        team: Rentals, exporter: FakeDcgmExporter) -> None:
    exporter.down = True  # before the series exists: not one sample of it reaches Prometheus
    exporter.set(PodGpus(team.namespace, "dark", util=0))
    try:
        team.create("dark", offer="rtx4090-idle")
        started = parse_ts(team.wait_phase("dark", "Running")["runningSince"])
        # Idle the whole time, but Prometheus has no data: run well past the window.
        eventually(lambda: datetime.now(UTC) > started + timedelta(seconds=WINDOW + 3),
                   timeout=30)
        assert team.status("dark")["phase"] == "Running"
    finally:
        back = datetime.now(UTC)
        exporter.down = False
    condition = wait_idle_paused(team, "dark")
    # Whole seconds in status: the pause came no earlier than a full window after the gap.
    assert parse_ts(condition["lastTransitionTime"]) >= back + timedelta(seconds=WINDOW - 1)


def test_resume_lifts_the_sticky_pause_and_restarts_the_window(
        team: Rentals, exporter: FakeDcgmExporter, idle_cluster: Cluster,
        idle_operator: OperatorProcess) -> None:
    ns = team.namespace
    exporter.set(PodGpus(ns, "nb", util=0))
    team.create("nb", offer="rtx4090-idle", idle={"below": 10})
    first = wait_idle_paused(team, "nb")
    generation = team.get("nb")["metadata"]["generation"]
    assert team.status("nb")["idlePausedGeneration"] == generation
    assert team.get("nb")["spec"]["state"] == "Running"  # the operator never writes spec

    resumed = subprocess.run(
        [str(PLUGIN), "--kubeconfig", str(idle_cluster.kubeconfig), "-n", ns, "resume", "nb"],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout == "gpurental.gpurental.dev/nb patched\n"

    def running_again() -> dict[str, object]:
        status = team.wait_phase("nb", "Running", timeout=1)
        assert status.get("runningSince")
        return status
    status = eventually(running_again, 60)
    restarted = parse_ts(str(status["runningSince"]))
    assert restarted >= parse_ts(first["lastTransitionTime"])  # whole seconds

    second = wait_idle_paused(team, "nb")
    # A resumed rental gets the full window again before the next idle pause.
    assert parse_ts(second["lastTransitionTime"]) >= restarted + timedelta(seconds=WINDOW)
    assert second["lastTransitionTime"] != first["lastTransitionTime"]
    assert eventually(lambda: operator_metric(
        idle_operator, "gpurental_idle_pauses_total", ns) == 2)
    assert operator_metric(idle_operator, "gpurental_idle_paused_burn_dollars", ns) == 0.69
