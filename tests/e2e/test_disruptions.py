"""Faults of the world, not of the API: claims, pods and Secrets removed behind the
operator's back (on both substrates). A lost node is tests/e2e/test_node_loss.py.

Billing is checked against the pods themselves: the kubelet's container startedAt and
terminated.finishedAt (read from a watch that keeps every pod's last state).
"""

from __future__ import annotations

import base64
import subprocess
import sys
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from e2e_support import Rentals, eventually
from kubernetes import client, watch

from gpurental_dev.cluster import OperatorProcess

PLUGIN = Path(sys.executable).parent / "kubectl-gpurental"


class LastStates:
    """Every pod of a namespace as its last watch event showed it (DELETED included)."""

    def __init__(self, core: client.CoreV1Api, namespace: str) -> None:
        self.pods: dict[str, client.V1Pod] = {}
        self._watch = watch.Watch()
        self._thread = threading.Thread(target=self._run, args=(core, namespace), daemon=True)
        self._thread.start()

    def _run(self, core: client.CoreV1Api, namespace: str) -> None:
        try:
            for event in self._watch.stream(core.list_namespaced_pod, namespace,
                                            timeout_seconds=300):
                pod = event["object"]
                self.pods[pod.metadata.uid] = pod
        except Exception:  # the namespace or the server went away at the test's end
            return

    def stop(self) -> None:
        self._watch.stop()

    def interval(self, uid: str) -> tuple[datetime, datetime | None]:
        """The workload container's start and (once terminated) its end, as far as this
        watch has seen (it may lag the test's own reads: AssertionError until it has)."""
        pod = self.pods.get(uid)
        assert pod is not None and pod.status.container_statuses, f"no container of {uid} yet"
        state = pod.status.container_statuses[0].state
        if state.terminated is not None:
            return state.terminated.started_at, state.terminated.finished_at
        assert state.running is not None, f"{uid}'s container has not started yet"
        return state.running.started_at, None

    def ended(self, uid: str) -> tuple[datetime, datetime]:
        """The container's start and end, once this watch has seen it terminated."""
        start, end = self.interval(uid)
        assert end is not None, f"no end seen yet for {uid}"
        return start, end


@pytest.fixture
def last_states(rentals: Rentals) -> Any:
    states = LastStates(rentals.core, rentals.namespace)
    yield states
    states.stop()


def pod_uid(rentals: Rentals, name: str) -> str:
    return str(rentals.core.read_namespaced_pod(name, rentals.namespace).metadata.uid)


def claim(rentals: Rentals, name: str) -> client.V1PersistentVolumeClaim:
    return rentals.core.read_namespaced_persistent_volume_claim(f"{name}-storage",
                                                                rentals.namespace)


def warnings(rentals: Rentals, name: str) -> list[str]:
    return [e.reason for e in rentals.events(name)
            if e.involved_object.kind == "GpuRental" and e.type == "Warning"]


def disruptions_counted(operator: OperatorProcess, namespace: str, reason: str) -> float:
    import urllib.request
    text = urllib.request.urlopen(operator.metrics_url, timeout=5).read().decode()
    prefix = "gpurental_disruptions_total{"
    total = 0.0
    for line in text.splitlines():
        if (line.startswith(prefix) and f'namespace="{namespace}"' in line
                and f'reason="{reason}"' in line):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_a_claim_deleted_while_paused_is_never_replaced_by_an_empty_one(
        rentals: Rentals, operator: OperatorProcess, kubeconfig: str) -> None:
    """The issue's walk: Running, Paused, `kubectl delete pvc`, Running again."""
    rentals.create("nb", storage={"size": "1Gi"})
    rentals.wait_phase("nb", "Running")
    lost_uid = claim(rentals, "nb").metadata.uid
    assert rentals.status("nb")["pvcUid"] == lost_uid
    rentals.patch("nb", state="Paused")
    rentals.wait_phase("nb", "Paused")
    rentals.core.delete_namespaced_persistent_volume_claim("nb-storage", rentals.namespace)

    def noticed() -> dict[str, Any]:
        found = rentals.condition("nb", "VolumeLost")
        assert found is not None and found["status"] == "True", found
        return found
    lost = eventually(noticed)
    assert lost_uid in lost["message"]
    rentals.await_events("nb", "VolumeLost")  # posted after the status that records it
    assert "VolumeLost" in warnings(rentals, "nb")

    rentals.patch("nb", state="Running")
    held = eventually(lambda: rentals.condition("nb", "Paused")["reason"] == "VolumeLost"
                      and rentals.status("nb"))
    assert held["phase"] == "Paused"
    assert f'acceptLostClaim: "{lost_uid}"' in held["message"]
    # Nothing empty made behind its back (the lost claim itself may still be finalizing).
    eventually(lambda: rentals.pvcs() == [] and rentals.pods() == [])
    assert disruptions_counted(operator, rentals.namespace, "VolumeLost") == 1
    listing = subprocess.run(
        [str(PLUGIN), "--kubeconfig", kubeconfig, "-n", rentals.namespace, "list",
         "--status", "disrupted"], capture_output=True, text=True, check=True).stdout
    assert listing.splitlines()[1].split()[:3] == ["nb", "Paused", "(VolumeLost)"]

    rentals.patch("nb", storage={"size": "1Gi", "acceptLostClaim": lost_uid})
    rentals.wait_phase("nb", "Running")
    replaced = claim(rentals, "nb").metadata.uid
    assert replaced != lost_uid
    assert rentals.status("nb")["pvcUid"] == replaced
    assert rentals.condition("nb", "VolumeLost")["status"] == "False"


def test_a_claim_deleted_under_a_running_pod_keeps_it_running_and_says_so(
        rentals: Rentals) -> None:
    rentals.create("busy", storage={"size": "1Gi"})
    rentals.wait_phase("busy", "Running")
    rentals.core.delete_namespaced_persistent_volume_claim("busy-storage", rentals.namespace)
    # The pvc-protection finalizer keeps a claim in use: marked for deletion, not gone.
    eventually(lambda: claim(rentals, "busy").metadata.deletion_timestamp is not None)
    eventually(lambda: (rentals.condition("busy", "VolumeLost") or {}).get("status") == "True")
    status = rentals.status("busy")
    assert status["phase"] == "Running" and status["runningSince"]
    assert "its volume claim was deleted" in rentals.condition("busy", "Ready")["message"]

    # Paused, the pod goes, the claim with it; a resume waits for the user's word.
    rentals.patch("busy", state="Paused")
    rentals.wait_phase("busy", "Paused")
    eventually(lambda: rentals.pvcs() == [])
    rentals.patch("busy", state="Running")
    eventually(lambda: rentals.condition("busy", "Paused")["reason"] == "VolumeLost")
    assert rentals.pods() == [] and rentals.pvcs() == []


def test_a_pod_deleted_behind_the_operators_back_is_billed_to_its_containers_end(
        rentals: Rentals, operator: OperatorProcess, last_states: LastStates) -> None:
    rentals.create("victim")
    rentals.wait_phase("victim", "Running")
    first = pod_uid(rentals, "victim")
    rentals.core.delete_namespaced_pod("victim", rentals.namespace)

    def replaced() -> dict[str, Any]:
        # The pods first: a status read after the new pod exists is no older than the
        # operator's write that recorded the disruption (it writes status, then creates).
        pods = rentals.pods()
        status = rentals.status("victim")
        assert len(pods) == 1 and pods[0].metadata.uid != first, [p.metadata.uid for p in pods]
        assert status["phase"] == "Running" and status.get("runningSince"), status
        assert not status["disruption"].get("recovering"), status["disruption"]
        return status
    status = eventually(replaced)
    start, end = eventually(lambda: last_states.ended(first))
    assert status["accruedSeconds"] == int((end - start).total_seconds())
    second = pod_uid(rentals, "victim")
    new_start, _ = eventually(lambda: last_states.interval(second))
    assert status["runningSince"] == new_start.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert status["restarts"] == 1
    assert status["disruption"]["reason"] == "PodDeleted"
    assert status["disruption"]["podUid"] == first
    assert "PodDeleted" in warnings(rentals, "victim")
    assert disruptions_counted(operator, rentals.namespace, "PodDeleted") == 1


def test_an_evicted_pod_is_replaced_and_the_event_names_the_eviction(
        rentals: Rentals, operator: OperatorProcess) -> None:
    rentals.create("evictee")
    rentals.wait_phase("evictee", "Running")
    first = pod_uid(rentals, "evictee")
    rentals.core.create_namespaced_pod_eviction(
        "evictee", rentals.namespace,
        client.V1Eviction(metadata=client.V1ObjectMeta(name="evictee",
                                                       namespace=rentals.namespace)))

    def replaced() -> None:
        # The evicted pod is gone for a moment before the operator makes the next one.
        pods = rentals.pods()
        assert len(pods) == 1 and pods[0].metadata.uid != first, [p.metadata.uid for p in pods]
        assert rentals.status("evictee")["phase"] == "Running"
    eventually(replaced)
    status = rentals.status("evictee")
    assert status["disruption"]["reason"] == "Evicted"
    assert "Eviction API" in status["disruption"]["message"]
    assert "Evicted" in warnings(rentals, "evictee")
    assert disruptions_counted(operator, rentals.namespace, "Evicted") == 1


def test_a_deleted_ssh_keys_secret_is_recreated(rentals: Rentals) -> None:
    rentals.create("keys", sshKeys=["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEk alice@laptop"])
    rentals.wait_phase("keys", "Running")
    old = rentals.core.read_namespaced_secret("keys-ssh", rentals.namespace).metadata.uid
    rentals.core.delete_namespaced_secret("keys-ssh", rentals.namespace)

    def recreated() -> client.V1Secret:
        try:
            secret = rentals.core.read_namespaced_secret("keys-ssh", rentals.namespace)
        except client.ApiException as exc:
            raise AssertionError(f"no Secret yet ({exc.status})") from None
        assert secret.metadata.uid != old
        return secret
    secret = eventually(recreated)
    assert "alice@laptop" in base64.b64decode(secret.data["authorized_keys"]).decode()
    assert rentals.status("keys")["phase"] == "Running"
