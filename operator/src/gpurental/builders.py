"""Manifests of a rental's children: the GPU pod, its volume claim and its SSH-keys Secret.

Pure: every function takes plain values and returns a plain dict ready for the API, so the
shape of what the operator creates is tested as data (as kubespawner's objects.py is).
"""

from __future__ import annotations

import hashlib
from typing import Any

from gpurental.models import API_VERSION, OfferSpec, RentalSpec
from gpurental.observed import (
    LABEL_MANAGED_BY,
    LABEL_OFFER,
    LABEL_RENTAL,
    LABEL_RENTAL_UID,
    MANAGED_BY,
    WORKLOAD_CONTAINER,
)

NODE_PRODUCT_LABEL = "nvidia.com/gpu.product"
SSH_MOUNT_DIR = "/etc/gpurental/ssh"
ANNOTATION_KEYS_DIGEST = "gpurental.dev/ssh-keys-digest"
UNPRIVILEGED_UID = 1000
TERMINATION_GRACE_SECONDS = 10


def pod_name(rental: str) -> str:
    return rental


def pvc_name(rental: str) -> str:
    return f"{rental}-storage"


def secret_name(rental: str) -> str:
    return f"{rental}-ssh"


def labels(rental: str, rental_uid: str, offer: str) -> dict[str, str]:
    """Labels tying a child to its rental. Never copies the rental's own labels: Argo CD's
    tracking label on a child would make Argo think it owns (and should prune) the pod."""
    result = {
        "app.kubernetes.io/name": "gpu-rental",
        LABEL_MANAGED_BY: MANAGED_BY,
        LABEL_RENTAL_UID: rental_uid,
    }
    # Label values are capped at 63 characters; the uid label always identifies the rental.
    if len(rental) <= 63:
        result[LABEL_RENTAL] = rental
    if len(offer) <= 63:
        result[LABEL_OFFER] = offer
    return result


def owner_reference(rental: str, rental_uid: str) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "GpuRental",
        "name": rental,
        "uid": rental_uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _metadata(name: str, namespace: str, rental: str, uid: str, offer: str) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": namespace,
        "labels": labels(rental, uid, offer),
        "ownerReferences": [owner_reference(rental, uid)],
    }


def make_pvc(
    namespace: str, rental: str, rental_uid: str, spec: RentalSpec
) -> dict[str, Any]:
    """The rental's data volume: kept across pauses, deleted only on Stop."""
    pvc_spec: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": spec.storage.size}},
    }
    if spec.storage.storage_class_name:
        pvc_spec["storageClassName"] = spec.storage.storage_class_name
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": _metadata(pvc_name(rental), namespace, rental, rental_uid, spec.offer),
        "spec": pvc_spec,
    }


def authorized_keys(keys: tuple[str, ...]) -> str:
    return "".join(f"{key.strip()}\n" for key in keys)


def keys_digest(keys: tuple[str, ...]) -> str:
    return hashlib.sha256(authorized_keys(keys).encode()).hexdigest()[:16]


def make_ssh_secret(
    namespace: str, rental: str, rental_uid: str, spec: RentalSpec
) -> dict[str, Any]:
    """authorized_keys as a Secret. The pod mounts the Secret's directory (not a subPath),
    so the kubelet refreshes the file while the pod runs when the keys change."""
    metadata = _metadata(secret_name(rental), namespace, rental, rental_uid, spec.offer)
    metadata["annotations"] = {ANNOTATION_KEYS_DIGEST: keys_digest(spec.ssh_keys)}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": metadata,
        "stringData": {"authorized_keys": authorized_keys(spec.ssh_keys)},
    }


def _security(privileged: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    """(pod, container) security contexts: restricted unless the offer says privileged."""
    if privileged:
        return {"seccompProfile": {"type": "Unconfined"}}, {"privileged": True}
    pod = {
        "runAsNonRoot": True,
        "runAsUser": UNPRIVILEGED_UID,
        "runAsGroup": UNPRIVILEGED_UID,
        "fsGroup": UNPRIVILEGED_UID,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    container = {
        "privileged": False,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
    }
    return pod, container


def _container(spec: RentalSpec, offer: OfferSpec) -> dict[str, Any]:
    _, security = _security(offer.privileged)
    container: dict[str, Any] = {
        "name": WORKLOAD_CONTAINER,
        "image": spec.image,
        "resources": {"limits": {offer.gpu.resource_name: str(spec.gpus)}},
        "securityContext": security,
        "volumeMounts": [
            {"name": "storage", "mountPath": spec.storage.mount_path},
            {"name": "ssh-keys", "mountPath": SSH_MOUNT_DIR, "readOnly": True},
        ],
        "env": [
            {"name": "GPURENTAL_AUTHORIZED_KEYS", "value": f"{SSH_MOUNT_DIR}/authorized_keys"},
            *({"name": env.name, "value": env.value} for env in spec.env),
        ],
    }
    if spec.command is not None:
        container["command"] = list(spec.command)
    if spec.args is not None:
        container["args"] = list(spec.args)
    return container


def make_pod(
    namespace: str, rental: str, rental_uid: str, spec: RentalSpec, offer: OfferSpec,
    priority_class: str | None = None,
) -> dict[str, Any]:
    """The GPU pod: `gpus` x the offer's resource in limits, on nodes of the offer's product;
    `priority_class` is the on-demand or interruptible PriorityClass for the offer."""
    pod_security, _ = _security(offer.privileged)
    node_selector = {**offer.node_selector, NODE_PRODUCT_LABEL: offer.gpu.product}
    tolerations = [t.model_dump(by_alias=True, exclude_none=True) for t in offer.tolerations]
    pod_spec: dict[str, Any] = {
        # A rental is a machine, not a job: the kubelet restarts a crashed workload, and billing
        # follows the pod, not the process.
        "restartPolicy": "Always",
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": TERMINATION_GRACE_SECONDS,
        "nodeSelector": node_selector,
        "securityContext": pod_security,
        "containers": [_container(spec, offer)],
        "volumes": [
            {"name": "storage", "persistentVolumeClaim": {"claimName": pvc_name(rental)}},
            {
                "name": "ssh-keys",
                "secret": {"secretName": secret_name(rental), "defaultMode": 0o444},
            },
        ],
    }
    if tolerations:
        pod_spec["tolerations"] = tolerations
    if priority_class:
        pod_spec["priorityClassName"] = priority_class
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": _metadata(pod_name(rental), namespace, rental, rental_uid, spec.offer),
        "spec": pod_spec,
    }
