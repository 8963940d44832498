"""Two replicas, one Lease: only the holder acts; a standby takes over when it dies, at once
when it shuts down cleanly; a rental's meter carries across the change of hands."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from chaos_support import new_namespace, setup_cluster
from e2e_support import Rentals, eventually
from kubernetes import client, config

from gpurental_dev.cluster import Cluster, OperatorProcess

LEASE, LEASE_NAMESPACE, NAMESPACE = "gpurental-e2e", "default", "team-a"


class Replicas:
    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.api = config.new_client_from_config(config_file=str(cluster.kubeconfig))
        self.leases = client.CoordinationV1Api(self.api)
        self.rentals = Rentals(client.CustomObjectsApi(self.api), client.CoreV1Api(self.api),
                               NAMESPACE)
        self.by_name: dict[str, OperatorProcess] = {}

    def start(self, name: str) -> OperatorProcess:
        operator = self.cluster.start_operator(
            "--leader-election", LEASE, "--leader-election-namespace", LEASE_NAMESPACE,
            "--metering-interval", "1", env={"POD_ID": name})
        self.by_name[name] = operator
        return operator

    def holder(self) -> str:
        """The replica named in the Lease ("" when nobody holds it, or nobody made it yet)."""
        try:
            spec = self.leases.read_namespaced_lease(LEASE, LEASE_NAMESPACE).spec
        except client.ApiException as exc:
            if exc.status != 404:
                raise
            return ""  # the first replica to start creates the Lease; it may not have yet
        return (spec.holder_identity or "").split("_")[0]

    def leader(self, timeout: float = 60.0) -> str:
        def held() -> str:
            name = self.holder()
            assert name, "nobody holds the Lease yet"
            return name
        return eventually(held, timeout=timeout, interval=0.2)

    def reporters(self, rental: str) -> set[str]:
        """Which replicas posted the rental's Events (not the scheduler's or a kubelet's)."""
        return {(e.reporting_instance or "").split("_")[0]
                for e in self.rentals.events(rental)
                if e.reporting_component == "gpu-rental-operator"}


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory, substrate: str) -> Iterator[Replicas]:
    workdir: Path = tmp_path_factory.mktemp(f"leader-{substrate}")
    with Cluster(workdir / "cluster", nodes=["gpu-4090-a=NVIDIA-GeForce-RTX-4090:4"],
                 substrate=substrate) as cluster:
        setup_cluster(cluster)  # the "chaos" offer
        both = Replicas(cluster)
        new_namespace(both.rentals.core, NAMESPACE)
        yield both
        both.api.close()


def other(name: str) -> str:
    return "replica-b" if name == "replica-a" else "replica-a"


def test_only_the_holder_acts_and_a_standby_takes_over_when_it_dies(
        replicas: Replicas) -> None:
    replicas.start("replica-a")
    replicas.start("replica-b")
    leader = replicas.leader()
    rentals = replicas.rentals
    rentals.create("job", offer="chaos")
    rentals.wait_phase("job", "Running")
    rentals.await_events("job", "Running")
    assert replicas.reporters("job") == {leader}
    standby = replicas.by_name[other(leader)]
    # The standby watched everything but wrote nothing: no transition in its log.
    assert "job: Running" not in standby.log_text
    billed = rentals.status("job")["secondsBilled"]

    replicas.by_name[leader].kill()
    rentals.patch("job", state="Paused")  # only a new leader can carry it out
    rentals.wait_phase("job", "Paused", timeout=60)
    assert replicas.holder() == other(leader)
    rentals.await_events("job", "Paused")  # posted after the status write that recorded it
    assert replicas.reporters("job") >= {other(leader)}
    status: dict[str, Any] = rentals.status("job")
    # The running seconds were billed across the change of hands, not lost nor restarted.
    assert status["secondsBilled"] >= billed


def test_a_clean_shutdown_gives_the_lease_up(replicas: Replicas) -> None:
    leader = replicas.leader()
    standby_name = other(leader)
    replicas.start(standby_name)  # the one killed above comes back, as a standby
    assert replicas.holder() == leader
    replicas.by_name[leader].stop()  # SIGTERM: released, not waited out
    eventually(lambda: replicas.holder() in ("", standby_name), timeout=10, interval=0.1)
    # Well within the 15 s lease duration a dead holder would have to be waited out for.
    assert replicas.leader(timeout=8) == standby_name
    replicas.rentals.patch("job", state="Running")
    replicas.rentals.wait_phase("job", "Running")
