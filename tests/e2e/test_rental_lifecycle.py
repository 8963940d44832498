"""The rental lifecycle through the API, with the real operator on the emulated cluster."""

from __future__ import annotations

import base64

from e2e_support import Rentals, eventually
from kubernetes import client

from gpurental_dev.cluster import Cluster

KEY_A = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAlice alice@laptop"
KEY_B = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBob bob@desk"


def test_a_rental_becomes_a_gpu_pod_with_its_volume(rentals: Rentals) -> None:
    rentals.create("train", gpus=2, command=["sleep", "infinity"], sshKeys=[KEY_A],
                   storage={"size": "20Gi", "mountPath": "/data"})
    status = rentals.wait_phase("train", "Running")
    assert status["ratePerHour"] == "1.38"
    assert status["podName"] == "train" and status["pvcName"] == "train-storage"
    pod = rentals.core.read_namespaced_pod("train", rentals.namespace)
    container = pod.spec.containers[0]
    assert container.resources.limits == {"nvidia.com/gpu": "2"}
    assert pod.spec.node_selector == {"nvidia.com/gpu.product": "NVIDIA-GeForce-RTX-4090"}
    # kube-apiserver's DefaultTolerationSeconds admission adds the node-problem tolerations.
    assert [(t.key, t.operator, t.effect) for t in pod.spec.tolerations or []
            if not (t.key or "").startswith("node.kubernetes.io/")] == [
        ("nvidia.com/gpu", "Exists", "NoSchedule")]
    assert {m.mount_path for m in container.volume_mounts} == {"/data", "/etc/gpurental/ssh"}
    assert pod.spec.security_context.run_as_non_root is True
    assert container.security_context.allow_privilege_escalation is False
    owner = pod.metadata.owner_references[0]
    rental = rentals.get("train")
    assert (owner.kind, owner.name, owner.uid, owner.controller) == (
        "GpuRental", "train", rental["metadata"]["uid"], True)
    assert pod.metadata.labels["gpurental.dev/rental"] == "train"
    assert pod.spec.node_name is not None and pod.spec.node_name.startswith("gpu-4090-")
    pvc = rentals.core.read_namespaced_persistent_volume_claim("train-storage", rentals.namespace)
    assert pvc.spec.resources.requests == {"storage": "20Gi"}
    assert pvc.metadata.owner_references[0].uid == rental["metadata"]["uid"]


def test_pause_keeps_the_volume_and_resume_reuses_it(rentals: Rentals) -> None:
    rentals.create("nb")
    rentals.wait_phase("nb", "Running")
    first_pod = rentals.core.read_namespaced_pod("nb", rentals.namespace).metadata.uid
    pvc_uid = rentals.pvcs()[0].metadata.uid

    rentals.patch("nb", state="Paused")
    paused = rentals.wait_phase("nb", "Paused")
    assert paused.get("runningSince") is None
    eventually(lambda: rentals.pods() == [])
    assert [p.metadata.uid for p in rentals.pvcs()] == [pvc_uid]
    assert rentals.condition("nb", "Paused")["reason"] == "UserRequested"

    rentals.patch("nb", state="Running")
    rentals.wait_phase("nb", "Running")
    pods = rentals.pods()
    assert len(pods) == 1 and pods[0].metadata.uid != first_pod
    volume = next(v for v in pods[0].spec.volumes if v.name == "storage")
    assert volume.persistent_volume_claim.claim_name == "nb-storage"
    assert [p.metadata.uid for p in rentals.pvcs()] == [pvc_uid]
    rentals.await_events("nb", "Provisioning", "Running", "Paused")


def test_stop_is_permanent(rentals: Rentals) -> None:
    rentals.create("once", sshKeys=[KEY_A])
    rentals.wait_phase("once", "Running")
    rentals.patch("once", state="Stopped")
    stopped = rentals.wait_phase("once", "Stopped")
    assert stopped["settledAt"]
    eventually(lambda: rentals.pods() == [] and rentals.pvcs() == [])
    eventually(lambda: rentals.core.list_namespaced_secret(rentals.namespace).items == [])

    rentals.patch("once", state="Running")

    def refused() -> bool:
        accepted = rentals.condition("once", "Accepted")
        assert accepted is not None and accepted["reason"] == "StoppedIsPermanent"
        return accepted["status"] == "False"
    eventually(refused)
    assert rentals.status("once")["phase"] == "Stopped"
    rentals.await_events("once", "StoppedIsPermanent")
    assert rentals.pods() == []


def test_delete_cleans_up_through_the_finalizer(rentals: Rentals) -> None:
    rentals.create("gone")
    rentals.wait_phase("gone", "Running")
    assert "gpurental.dev/settlement" in rentals.get("gone")["metadata"]["finalizers"]
    rentals.delete("gone")

    def vanished() -> bool:
        try:
            rentals.get("gone")
        except client.ApiException as exc:
            return exc.status == 404
        return False
    eventually(vanished)
    eventually(lambda: rentals.pods() == [] and rentals.pvcs() == [])


def test_a_pod_deleted_behind_the_operators_back_heals(rentals: Rentals) -> None:
    rentals.create("heal")
    rentals.wait_phase("heal", "Running")
    old = rentals.core.read_namespaced_pod("heal", rentals.namespace).metadata.uid
    rentals.core.delete_namespaced_pod("heal", rentals.namespace)

    def replaced() -> bool:
        pods = rentals.pods()
        return len(pods) == 1 and pods[0].metadata.uid != old and pods[0].status.phase == "Running"
    eventually(replaced)
    rentals.wait_phase("heal", "Running")
    rentals.await_events("heal", "PodDeleted")
    assert rentals.status("heal")["restarts"] == 1


def test_unschedulable_rental_fails_with_the_schedulers_message(rentals: Rentals) -> None:
    rentals.create("b200", offer="nowhere")
    failed = rentals.wait_phase("b200", "Failed")
    assert failed["message"].startswith("Unschedulable: 0/"), failed["message"]
    assert "nodes are available" in failed["message"]
    assert failed["refundedCents"] == 0 and failed.get("secondsBilled", 0) == 0
    eventually(lambda: rentals.pods() == [] and rentals.pvcs() == [])
    rentals.await_events("b200", "ProvisioningFailed")
    warnings = [e for e in rentals.events("b200") if e.reason == "ProvisioningFailed"]
    assert warnings and warnings[0].type == "Warning"


def test_image_pull_failure_fails_with_the_kubelets_reason(rentals: Rentals) -> None:
    rentals.create("badimage", offer="quickfail", image="registry.invalid/nope:1")
    failed = rentals.wait_phase("badimage", "Failed")
    assert failed["message"].split(":")[0] in ("ErrImagePull", "ImagePullBackOff")


def test_volume_failure_fails_with_the_provisioners_reason(rentals: Rentals) -> None:
    rentals.create("badvolume", offer="quickfail",
                   storage={"size": "10Gi", "storageClassName": "broken"})
    failed = rentals.wait_phase("badvolume", "Failed")
    assert "ProvisioningFailed" in failed["message"] or "volume" in failed["message"].lower()


def test_mig_offer_requests_a_mig_slice(rentals: Rentals) -> None:
    rentals.create("slice", offer="a100-mig", gpus=3)
    rentals.wait_phase("slice", "Running")
    pod = rentals.core.read_namespaced_pod("slice", rentals.namespace)
    assert pod.spec.containers[0].resources.limits == {"nvidia.com/mig-1g.10gb": "3"}


def test_missing_offer_is_a_condition_and_creating_it_starts_the_rental(
    rentals: Rentals, cluster: Cluster
) -> None:
    offer = f"late-{rentals.namespace}"
    rentals.create("early", offer=offer)

    def waiting() -> None:
        accepted = rentals.condition("early", "Accepted")
        assert accepted is not None and accepted["reason"] == "OfferNotFound"
        assert offer in accepted["message"]
    eventually(waiting)
    assert rentals.status("early")["phase"] == "Pending"
    assert rentals.pods() == []
    cluster.kubectl("apply", "-f", "-", input=f"""
apiVersion: gpurental.dev/v1alpha1
kind: GpuOffer
metadata: {{name: {offer}}}
spec: {{gpu: {{product: NVIDIA-GeForce-RTX-4090}}, pricePerGpuHour: "1.00"}}
""")
    rentals.wait_phase("early", "Running")
    cluster.kubectl("delete", "gpuoffer", offer)


def test_too_many_gpus_and_missing_wallet_are_conditions(rentals: Rentals) -> None:
    rentals.create("greedy", gpus=5)
    rentals.create("unfunded", wallet="nope")

    def refused(name: str, reason: str) -> None:
        accepted = rentals.condition(name, "Accepted")
        assert accepted is not None and (accepted["status"], accepted["reason"]) == (
            "False", reason)
    eventually(lambda: refused("greedy", "TooManyGpus"))
    eventually(lambda: refused("unfunded", "WalletNotFound"))
    assert "maxGpus 4" in rentals.condition("greedy", "Accepted")["message"]
    assert rentals.pods() == []
    rentals.await_events("greedy", "TooManyGpus")


def test_ssh_keys_update_the_secret_while_the_pod_runs(rentals: Rentals) -> None:
    rentals.create("keys", sshKeys=[KEY_A])
    rentals.wait_phase("keys", "Running")
    pod_uid = rentals.core.read_namespaced_pod("keys", rentals.namespace).metadata.uid

    def keys() -> str:
        secret = rentals.core.read_namespaced_secret("keys-ssh", rentals.namespace)
        return base64.b64decode(secret.data["authorized_keys"]).decode()
    assert keys() == f"{KEY_A}\n"
    rentals.patch("keys", sshKeys=[KEY_A, KEY_B])
    eventually(lambda: keys() == f"{KEY_A}\n{KEY_B}\n")
    assert rentals.core.read_namespaced_pod("keys", rentals.namespace).metadata.uid == pod_uid


def test_the_operator_never_writes_spec(rentals: Rentals) -> None:
    created = rentals.create("hands-off")
    rentals.wait_phase("hands-off", "Running")
    rentals.patch("hands-off", state="Paused")
    rentals.wait_phase("hands-off", "Paused")
    rental = rentals.get("hands-off")
    assert rental["metadata"]["generation"] == created["metadata"]["generation"] + 1
    assert rental["spec"] == {**created["spec"], "state": "Paused"}
    assert rental["status"]["observedGeneration"] == rental["metadata"]["generation"]


def test_offers_report_their_observed_generation(rentals: Rentals, cluster: Cluster) -> None:
    def observed() -> None:
        offer = rentals.custom.get_cluster_custom_object("gpurental.dev", "v1alpha1",
                                                         "gpuoffers", "rtx4090")
        status = offer.get("status") or {}
        assert status.get("observedGeneration") == offer["metadata"]["generation"]
        assert status["conditions"][0]["status"] == "True"
    eventually(observed)
