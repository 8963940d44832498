"""Chaos: the operator is SIGKILLed at random moments while users churn 100+ rentals.

Its own cluster (the kills must not disturb the session operator). A seeded random walk of
create / pause / resume / stop / extend / delete runs over rentals on three wallets, with
pods and claims deleted behind the operator's back (the claim's loss accepted at once); between
steps the operator is killed at random and restarted a few steps later. After convergence no
child is orphaned, every phase matches its spec, and every wallet equals the reference priced
from the pods' running intervals as the API server recorded them (see chaos_support).
Runs on every substrate.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Iterator

import pytest
from chaos_support import (
    NODES,
    PodLedger,
    Workload,
    converge,
    new_namespace,
    setup_cluster,
    wallet_matches_reference,
)
from e2e_support import Rentals
from kubernetes import client, config

from gpurental_dev.cluster import Cluster

pytestmark = pytest.mark.e2e

SEED = int(os.environ.get("CHAOS_SEED", "20261123"))
RENTALS, STEPS, KILLS = 110, 330, 12


@pytest.fixture(scope="module")
def chaos_cluster(tmp_path_factory: pytest.TempPathFactory, substrate: str
                  ) -> Iterator[Cluster]:
    with Cluster(tmp_path_factory.mktemp(f"chaos-crash-{substrate}"), nodes=NODES,
                 substrate=substrate) as cluster:
        setup_cluster(cluster)
        yield cluster


@pytest.mark.timeout(600)  # two converges of up to 4 x 90 s, and the walk
def test_sigkill_at_random_moments_keeps_children_phases_and_wallets_exact(
        chaos_cluster: Cluster) -> None:
    rng = random.Random(SEED)
    api = config.new_client_from_config(config_file=str(chaos_cluster.kubeconfig))
    core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
    new_namespace(core, "chaos")
    rentals = Rentals(custom, core, "chaos")
    operator = chaos_cluster.start_operator("--metering-interval", "5")
    ledger = PodLedger(core, "chaos").start()
    since = chaos_cluster.substrate.start_recording()
    workload = Workload(rentals, ["w0", "w1", "w2"], rng, RENTALS, faults=True)
    workload.create_wallets()
    kill_at = sorted(rng.sample(range(20, STEPS), KILLS))
    try:
        for step in range(STEPS):
            workload.step()
            time.sleep(rng.uniform(0.0, 0.12))  # let pods start between users' clicks
            if kill_at and step == kill_at[0]:
                kill_at.pop(0)
                operator.kill()
                for _ in range(rng.randint(0, 4)):  # users keep writing while it is down
                    workload.step()
                operator.start()
        converge(workload)
        workload.pause_all_running()
        converge(workload)
        requests = chaos_cluster.substrate.recorded(since)
        summary = wallet_matches_reference(workload, ledger, requests)
    finally:
        ledger.stop()
        api.close()
    print(f"chaos crash (seed {SEED}): {operator.starts} operator starts, "
          f"{dict(workload.counts)}; {summary}")
    assert operator.starts >= 10
    assert operator.process is not None and operator.process.poll() is None
