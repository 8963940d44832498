"""The children's manifests, compared as plain dicts (as kubespawner tests make_pod)."""

from __future__ import annotations

from gpurental import access, builders
from gpurental.models import OfferSpec, RentalSpec, parse_spec

OFFER = parse_spec(OfferSpec, {
    "gpu": {"product": "NVIDIA-GeForce-RTX-4090"},
    "pricePerGpuHour": "0.69",
    "nodeSelector": {"pool": "gpu"},
    "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
})
MIG_OFFER = parse_spec(OfferSpec, {
    "gpu": {"product": "NVIDIA-A100-SXM4-80GB", "resourceName": "nvidia.com/mig-1g.10gb"},
    "pricePerGpuHour": "0.40",
})
SPEC = parse_spec(RentalSpec, {
    "offer": "rtx4090",
    "gpus": 2,
    "image": "pytorch/pytorch:2.4.0",
    "command": ["sleep", "infinity"],
    "env": [{"name": "HF_HOME", "value": "/workspace/hf"}],
    "storage": {"size": "20Gi", "mountPath": "/data"},
    "sshKeys": ["ssh-ed25519 AAAAkey alice@laptop", "ssh-ed25519 AAAAother bob"],
})
OWNER = {
    "apiVersion": "gpurental.dev/v1alpha1",
    "kind": "GpuRental",
    "name": "finetune",
    "uid": "uid-1",
    "controller": True,
    "blockOwnerDeletion": True,
}
LABELS = {
    "app.kubernetes.io/name": "gpu-rental",
    "app.kubernetes.io/managed-by": "gpu-rental-operator",
    "gpurental.dev/rental-uid": "uid-1",
    "gpurental.dev/rental": "finetune",
    "gpurental.dev/offer": "rtx4090",
}


def test_pod_manifest() -> None:
    pod = builders.make_pod("team-a", "finetune", "uid-1", SPEC, OFFER)
    assert pod == {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "finetune",
            "namespace": "team-a",
            "labels": LABELS,
            "ownerReferences": [OWNER],
        },
        "spec": {
            "restartPolicy": "Always",
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "terminationGracePeriodSeconds": 10,
            "nodeSelector": {"pool": "gpu", "nvidia.com/gpu.product": "NVIDIA-GeForce-RTX-4090"},
            "tolerations": [
                {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
            ],
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 1000,
                "runAsGroup": 1000,
                "fsGroup": 1000,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [{
                "name": "workload",
                "image": "pytorch/pytorch:2.4.0",
                "command": ["sleep", "infinity"],
                "resources": {"limits": {"nvidia.com/gpu": "2"}},
                "securityContext": {
                    "privileged": False,
                    "allowPrivilegeEscalation": False,
                    "capabilities": {"drop": ["ALL"]},
                },
                "volumeMounts": [
                    {"name": "storage", "mountPath": "/data"},
                    {"name": "ssh-keys", "mountPath": "/etc/gpurental/ssh", "readOnly": True},
                ],
                "env": [
                    {"name": "GPURENTAL_AUTHORIZED_KEYS",
                     "value": "/etc/gpurental/ssh/authorized_keys"},
                    {"name": "HF_HOME", "value": "/workspace/hf"},
                ],
            }],
            "volumes": [
                {"name": "storage", "persistentVolumeClaim": {"claimName": "finetune-storage"}},
                {"name": "ssh-keys",
                 "secret": {"secretName": "finetune-ssh", "defaultMode": 0o444}},
            ],
        },
    }


def test_mig_offer_requests_the_mig_resource_and_omits_empty_tolerations() -> None:
    pod = builders.make_pod("ns", "r", "u", SPEC, MIG_OFFER)
    assert pod["spec"]["containers"][0]["resources"] == {"limits": {"nvidia.com/mig-1g.10gb": "2"}}
    assert "tolerations" not in pod["spec"]


def test_privileged_only_when_the_offer_says_so() -> None:
    privileged = OFFER.model_copy(update={"privileged": True})
    pod = builders.make_pod("ns", "r", "u", SPEC, privileged)
    assert pod["spec"]["containers"][0]["securityContext"] == {"privileged": True}
    assert "runAsNonRoot" not in pod["spec"]["securityContext"]


def test_pvc_manifest() -> None:
    spec = SPEC.model_copy(update={"storage": SPEC.storage.model_copy(
        update={"storage_class_name": "fast"})})
    assert builders.make_pvc("team-a", "finetune", "uid-1", spec) == {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {
            "name": "finetune-storage",
            "namespace": "team-a",
            "labels": LABELS,
            "ownerReferences": [OWNER],
        },
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": "20Gi"}},
            "storageClassName": "fast",
        },
    }


def test_ssh_secret_holds_one_key_per_line() -> None:
    secret = builders.make_ssh_secret("team-a", "finetune", "uid-1", SPEC)
    assert secret["stringData"]["authorized_keys"] == (
        "ssh-ed25519 AAAAkey alice@laptop\nssh-ed25519 AAAAother bob\n")
    assert secret["stringData"]["sshd_config"] == access.pod_sshd_config(SPEC.storage.mount_path)
    assert secret["metadata"]["annotations"] == {
        builders.ANNOTATION_KEYS_DIGEST: builders.secret_digest(SPEC)
    }
    fewer = SPEC.model_copy(update={"ssh_keys": SPEC.ssh_keys[:1]})
    assert builders.secret_digest(SPEC) != builders.secret_digest(fewer)


def test_an_event_name_is_its_object_and_a_suffix_within_the_name_limit() -> None:
    assert builders.event_name("job", "0123456789abcdef") == "job.0123456789abcdef"
    long = builders.event_name("r" * 253, "0123456789abcdef")
    assert len(long) == 253 and long.endswith(".0123456789abcdef")


def test_long_rental_names_keep_the_uid_label_only() -> None:
    name = "r" * 70
    labels = builders.labels(name, "uid-9", "offer")
    assert labels["gpurental.dev/rental-uid"] == "uid-9"
    assert "gpurental.dev/rental" not in labels


def test_an_event_names_its_rental_and_reporter_and_fits_the_api_limit() -> None:
    involved = {"apiVersion": "gpurental.dev/v1alpha1", "kind": "GpuRental", "name": "job",
                "namespace": "team-a", "uid": "u1"}
    now = "2026-12-02T04:00:00.000000Z"
    event = builders.make_event(involved, "job.00ff", "Normal", "Running", "pod job is running",
                                now, "pod-x_1")
    assert event["metadata"] == {"name": "job.00ff", "namespace": "team-a"}
    assert event["involvedObject"] == involved
    assert event["source"] == {"component": "gpu-rental-operator"}
    assert (event["reportingComponent"], event["reportingInstance"]) == (
        "gpu-rental-operator", "pod-x_1")
    assert event["firstTimestamp"] == event["lastTimestamp"] == event["eventTime"] == now
    long = "start " + "x" * 3000 + " the end"
    cut = builders.make_event(involved, "job.1", "Warning", "Failed", long, now, "i")["message"]
    assert len(cut) <= builders.MAX_EVENT_MESSAGE
    assert cut.startswith("start ") and cut.endswith(" the end") and "..." in cut
