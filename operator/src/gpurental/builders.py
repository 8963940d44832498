"""Manifests of a rental's children: the GPU pod (with its sshd sidecar when the offer grants
SSH), its volume claim, its SSH-keys Secret and the Service that exposes its ports.

Pure: every function takes plain values and returns a plain dict ready for the API, so the
shape of what the operator creates is tested as data (as kubespawner's objects.py is).
"""

from __future__ import annotations

import functools
import hashlib
import re
from typing import Any

from gpurental import access
from gpurental.access import SSH_MOUNT_DIR
from gpurental.constants import (
    ANNOTATION_KEYS_DIGEST,
    API_VERSION,
    LABEL_MANAGED_BY,
    LABEL_OFFER,
    LABEL_RENTAL,
    LABEL_RENTAL_UID,
    MANAGED_BY,
    NODE_PRODUCT_LABEL,
    WORKLOAD_CONTAINER,
)
from gpurental.models import OfferSpec, RentalSpec
from gpurental.options import DEFAULT_SSHD_IMAGE

UNPRIVILEGED_UID = 1000
TERMINATION_GRACE_SECONDS = 10


def pod_name(rental: str) -> str:
    return rental


_DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")


def service_name(rental: str) -> str:
    """The rental's own name (a friendly DNS name) when a Service may carry it: Service names
    are DNS labels, rental names may be longer or start with a digit."""
    if _DNS_LABEL.match(rental):
        return rental
    return f"rental-{hashlib.sha256(rental.encode()).hexdigest()[:12]}"


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


def _secret_data(ssh_keys: tuple[str, ...], mount_path: str) -> dict[str, str]:
    return {"authorized_keys": authorized_keys(ssh_keys),
            access.SSHD_CONFIG_KEY: access.pod_sshd_config(mount_path)}


def secret_digest(spec: RentalSpec) -> str:
    """Of everything the Secret holds, so a new sshd_config reaches existing Secrets too."""
    return _digest_of(spec.ssh_keys, spec.storage.mount_path)


# Every pass compares the digest (13 us to compute; 1.75 % of the operator's CPU at ten
# thousand running): memoised on the two things the Secret is built from.
@functools.lru_cache(maxsize=4096)
def _digest_of(ssh_keys: tuple[str, ...], mount_path: str) -> str:
    data = _secret_data(ssh_keys, mount_path)
    return hashlib.sha256("\0".join(data[k] for k in sorted(data)).encode()).hexdigest()[:16]


def make_ssh_secret(
    namespace: str, rental: str, rental_uid: str, spec: RentalSpec
) -> dict[str, Any]:
    """authorized_keys (and the sidecar's sshd_config) as a Secret. The pod mounts the
    Secret's directory (not a subPath), so the kubelet refreshes the file while the pod runs
    when the keys change, and sshd reads it at every login."""
    metadata = _metadata(secret_name(rental), namespace, rental, rental_uid, spec.offer)
    metadata["annotations"] = {ANNOTATION_KEYS_DIGEST: secret_digest(spec)}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": metadata,
        "stringData": _secret_data(spec.ssh_keys, spec.storage.mount_path),
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


def _workload_ports(spec: RentalSpec, offer: OfferSpec) -> list[dict[str, Any]]:
    return [{"name": p.name, "containerPort": p.port, "protocol": p.protocol}
            for p in access.exposed_ports(spec, offer) if access.target_port(p, offer) == p.port]


def _sshd_container(spec: RentalSpec, offer: OfferSpec, image: str) -> dict[str, Any]:
    """The sshd sidecar: unprivileged whatever the offer, on the workload's volume (where its
    host keys live, so they survive pause and resume) with the keys Secret mounted read-only."""
    config = f"{SSH_MOUNT_DIR}/{access.SSHD_CONFIG_KEY}"
    script = access.sshd_start_script(config, access.host_key_dir(spec.storage.mount_path))
    return {
        "name": access.SSHD_CONTAINER,
        "image": offer.access.ssh.image or image,
        "command": ["/bin/sh", "-c", script],
        "ports": [{"name": access.SSH_PORT_NAME, "containerPort": access.SSHD_LISTEN_PORT,
                   "protocol": "TCP"}],
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": UNPRIVILEGED_UID,
            "runAsGroup": UNPRIVILEGED_UID,
            "privileged": False,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
        },
        "readinessProbe": {"tcpSocket": {"port": access.SSH_PORT_NAME}, "periodSeconds": 10},
        "resources": {"requests": {"cpu": "10m", "memory": "16Mi"},
                      "limits": {"memory": "128Mi"}},
        "volumeMounts": [
            {"name": "storage", "mountPath": spec.storage.mount_path},
            {"name": "ssh-keys", "mountPath": SSH_MOUNT_DIR, "readOnly": True},
        ],
    }


def make_pod(
    namespace: str, rental: str, rental_uid: str, spec: RentalSpec, offer: OfferSpec,
    priority_class: str | None = None,
    sshd_image: str = DEFAULT_SSHD_IMAGE,
) -> dict[str, Any]:
    """The GPU pod: `gpus` x the offer's resource in limits, on nodes of the offer's product;
    `priority_class` is the on-demand or interruptible PriorityClass for the offer; with the
    sshd sidecar when the offer enables SSH."""
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
    ports = _workload_ports(spec, offer)
    if ports:
        pod_spec["containers"][0]["ports"] = ports
    if access.ssh_enabled(offer):
        pod_spec["containers"].append(_sshd_container(spec, offer, sshd_image))
        # The sidecar writes its host keys to the volume, privileged offer or not.
        pod_spec["securityContext"] = {**pod_security, "fsGroup": UNPRIVILEGED_UID}
        # A shell in the sidecar sees (and, as the same uid, can signal) the workload's
        # processes; the workload's files are under /proc/PID/root.
        pod_spec["shareProcessNamespace"] = True
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": _metadata(pod_name(rental), namespace, rental, rental_uid, spec.offer),
        "spec": pod_spec,
    }


def make_ingress(
    namespace: str, rental: str, rental_uid: str, spec: RentalSpec, offer: OfferSpec
) -> dict[str, Any] | None:
    """Host-named routes to the rental's web ports on the offer's Ingress class; None when
    the offer routes none or the rental declares no http port."""
    routed, config = access.http_ports(spec, offer), offer.access.ingress
    if not routed or config is None:
        return None
    service = service_name(rental)
    hosts = [(p, access.ingress_host(config.host_template, p.name, rental, namespace))
             for p in routed]
    ingress_spec: dict[str, Any] = {"rules": [
        {"host": host, "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": {
            "service": {"name": service, "port": {"name": port.name}}}}]}}
        for port, host in hosts]}
    if config.class_name:
        ingress_spec["ingressClassName"] = config.class_name
    if config.tls_secret_name:
        ingress_spec["tls"] = [{"hosts": [h for _, h in hosts],
                                "secretName": config.tls_secret_name}]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": _metadata(service, namespace, rental, rental_uid, spec.offer),
        "spec": ingress_spec,
    }


def make_service(
    namespace: str, rental: str, rental_uid: str, spec: RentalSpec, offer: OfferSpec
) -> dict[str, Any] | None:
    """The rental's ports behind one Service of the offer's type; None without ports. Selects
    the pod by the rental's uid label, which no other pod carries."""
    ports = access.exposed_ports(spec, offer)
    if not ports:
        return None
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(service_name(rental), namespace, rental, rental_uid, spec.offer),
        "spec": {
            "type": offer.access.expose.type.value,
            "selector": {LABEL_RENTAL_UID: rental_uid},
            "ports": [{"name": p.name, "port": p.port, "protocol": p.protocol,
                       "targetPort": access.target_port(p, offer)} for p in ports],
        },
    }


# --- Events ------------------------------------------------------------------------------------

EVENT_NAME_ROOM = 253 - 17  # an object name's limit, less "." and a 16-hex-digit suffix
REPORTING_COMPONENT = "gpu-rental-operator"
MAX_EVENT_MESSAGE = 1024  # the API server's limit on an Event's message
_CUT = "..."


def _short_message(message: str) -> str:
    """A message that fits, keeping its start and its end (where the reason usually is)."""
    if len(message) <= MAX_EVENT_MESSAGE:
        return message
    keep = (MAX_EVENT_MESSAGE - len(_CUT)) // 2
    return message[:keep] + _CUT + message[-keep:]


def event_name(involved_name: str, suffix: str) -> str:
    """`<object>.<suffix>`, as client-go names Events: chosen before the first try, so a
    try again after a lost answer meets 409 AlreadyExists instead of posting a twin."""
    return f"{involved_name[:EVENT_NAME_ROOM]}.{suffix}"


def make_event(involved: dict[str, str], name: str, type_: str, reason: str, message: str,
               now: str, instance: str) -> dict[str, Any]:
    """A core/v1 Event on `involved` (apiVersion, kind, name, namespace, uid), as kopf's
    poster wrote them: `source.component` is the "From" column of `kubectl describe`, and
    both timestamps are set because `kubectl get events` sorts by lastTimestamp."""
    return {
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": name, "namespace": involved["namespace"]},
        "involvedObject": dict(involved),
        "type": type_, "reason": reason, "message": _short_message(message),
        "action": reason,
        "source": {"component": REPORTING_COMPONENT},
        "reportingComponent": REPORTING_COMPONENT, "reportingInstance": instance,
        "firstTimestamp": now, "lastTimestamp": now, "eventTime": now, "count": 1,
    }
