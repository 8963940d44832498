"""What the operator misses while its watch is down is found by its next listing.

A watch resumes from the last resourceVersion it saw; when the server no longer keeps that
version (410 Gone) the informer lists again, and an object the listing no longer has was
deleted in the gap, unseen: the operator must forget it (VANISHED), or it would go on
believing in a pod that is gone and never replace it. Kubesim only: it closes the watches
and answers 410 on demand (see test_chaos_faults for why).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from chaos_support import admin, new_namespace, setup_cluster
from e2e_support import Rentals, eventually
from kubernetes import client, config

from gpurental_dev.cluster import Cluster, OperatorProcess

NAMESPACE = "gaps"


@pytest.fixture(scope="module")
def gap_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with Cluster(tmp_path_factory.mktemp("watch-gaps"),
                 nodes=["gpu-4090-a=NVIDIA-GeForce-RTX-4090:4"]) as cluster:
        setup_cluster(cluster)
        yield cluster


def test_a_pod_deleted_while_the_watch_was_down_is_replaced(gap_cluster: Cluster) -> None:
    api = config.new_client_from_config(config_file=str(gap_cluster.kubeconfig))
    core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
    new_namespace(core, NAMESPACE)
    rentals = Rentals(custom, core, NAMESPACE)
    operator: OperatorProcess = gap_cluster.start_operator("--metering-interval", "2")
    rentals.create("job", offer="chaos")
    rentals.wait_phase("job", "Running")
    old = core.read_namespaced_pod("job", NAMESPACE).metadata.uid

    # Blind the operator to pods: every new pods watch fails, the open ones are closed.
    admin(gap_cluster, "faults", "POST", {"verb": "watch", "resource": "pods", "code": 503})
    admin(gap_cluster, "watches", "DELETE", {"resource": "pods"})
    core.delete_namespaced_pod("job", NAMESPACE, grace_period_seconds=0, _preload_content=False)
    eventually(lambda: not [p for p in rentals.pods() if p.metadata.uid == old], timeout=30)
    # Let it see again, from a version the server no longer keeps: it must list anew.
    admin(gap_cluster, "faults", "DELETE")
    admin(gap_cluster, "faults", "POST", {"verb": "watch", "resource": "pods", "watch": "gone"})
    eventually(lambda: operator.log_text.count("resourceVersion expired; listing again") > 0,
               timeout=60)
    admin(gap_cluster, "faults", "DELETE")

    def replaced() -> None:
        assert [p.metadata.uid for p in rentals.pods()] not in ([], [old])
    eventually(replaced, timeout=60)
    rentals.wait_phase("job", "Running")
    api.close()
