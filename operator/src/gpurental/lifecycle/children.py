"""The rental's children besides its pod: volume, keys, Service, Ingress, and the endpoints
status reports for them. Each ensure step compares what is cached with what the spec and the
offer ask for, and appends the actions that close the gap."""

from __future__ import annotations

from typing import Any

from gpurental import access, builders, meter
from gpurental.lifecycle import metering
from gpurental.lifecycle.draft import Draft
from gpurental.lifecycle.plans import FORCE, ActionKind
from gpurental.models import OfferSpec, Phase, RentalSpec, SpecError
from gpurental.observed import IngressView, PodView, ServiceView


def ensure_volume(d: Draft, spec: RentalSpec, offer: OfferSpec | None) -> None:
    """The claim, and its storage segment. A lost claim is never replaced while its pod runs:
    the pod keeps the lost claim until it stops."""
    if d.children.pvc is None and not d.status.get("lostClaim"):
        body = builders.make_pvc(d.rental.namespace, d.rental.name, d.rental.uid, spec)
        d.act(ActionKind.CREATE_PVC, body["metadata"]["name"], body)
    d.status["pvcName"] = builders.pvc_name(d.rental.name)
    if offer is not None:
        meter.lock_storage_rate(d.status, spec.storage.gib, offer.storage_price_per_gib_hour)
    meter.start_storage(d.status, d.ctx.now)


def ensure_keys(d: Draft, spec: RentalSpec) -> None:
    secret = d.children.secret
    d.status["secretName"] = builders.secret_name(d.rental.name)
    if secret is None or secret.keys_digest != builders.secret_digest(spec):
        body = builders.make_ssh_secret(d.rental.namespace, d.rental.name, d.rental.uid, spec)
        d.act(ActionKind.APPLY_SECRET, body["metadata"]["name"], body)


def ensure_service(d: Draft, spec: RentalSpec, offer: OfferSpec | None) -> None:
    """One Service for the ports, of the offer's type. A Service that no longer matches
    (the offer's exposure or the rental's ports changed) is replaced, so a rental is never
    more exposed than its offer allows now."""
    if offer is None:
        return
    body = builders.make_service(d.rental.namespace, d.rental.name, d.rental.uid, spec, offer)
    service = d.children.service
    if service is not None and not service.deleting and (
            body is None or not _service_matches(service, body)):
        d.act(ActionKind.DELETE_SERVICE, service.name)
        d.plan.requeue_after = 1.0
    elif service is None and body is not None:
        d.act(ActionKind.CREATE_SERVICE, body["metadata"]["name"], body)


def ensure_ingress(d: Draft, spec: RentalSpec, offer: OfferSpec | None) -> None:
    """The offer's host-named routes to the web ports, replaced when they no longer
    match (like the Service)."""
    if offer is None:
        return
    body = builders.make_ingress(d.rental.namespace, d.rental.name, d.rental.uid, spec, offer)
    ingress = d.children.ingress
    if ingress is not None and not ingress.deleting and (
            body is None or IngressView.from_dict(body) != ingress):
        d.act(ActionKind.DELETE_INGRESS, ingress.name)
        d.plan.requeue_after = 1.0
    elif ingress is None and body is not None:
        d.act(ActionKind.CREATE_INGRESS, body["metadata"]["name"], body)


def endpoints(d: Draft, spec: RentalSpec, offer: OfferSpec | None, pod: PodView | None) -> None:
    """status.endpoints from the Service as Kubernetes reports it, while the pod runs."""
    ports = access.exposed_ports(spec, offer)
    service = d.children.service
    if not ports or pod is None or not pod.running:
        return set_endpoints(d, [])
    user = offer.access.ssh.user if offer is not None else "gpu"
    if service is not None and service.deleting:
        service = None
    set_endpoints(d, access.endpoints(ports, service, pod.host_ip, user, d.children.ingress))


def paused_endpoints(d: Draft) -> None:
    try:
        ports = access.exposed_ports(d.rental.parsed_spec(), d.ctx.offer)
    except SpecError:
        ports = ()
    set_endpoints(d, access.paused_endpoints(ports, d.rental.name))


def set_endpoints(d: Draft, entries: list[dict[str, Any]]) -> None:
    ssh = access.ssh_summary(entries)
    for key, value in (("endpoints", entries or None), ("ssh", ssh)):
        if value is None:
            d.status.pop(key, None)
        else:
            d.status[key] = value


def delete_pod(d: Draft) -> None:
    """Delete the pod unless it is already going; forced on a lost node, where no kubelet
    is left to confirm a graceful delete."""
    pod, lost = d.children.pod, d.children.node_loss is not None
    if pod is not None and (not pod.deleting or lost):
        d.act(ActionKind.DELETE_POD, pod.name, FORCE if lost else None)


def delete_service(d: Draft) -> None:
    """The Service and the Ingress routing to it: a port nobody pays for goes."""
    service, ingress = d.children.service, d.children.ingress
    if service is not None and not service.deleting:
        d.act(ActionKind.DELETE_SERVICE, service.name)
    if ingress is not None and not ingress.deleting:
        d.act(ActionKind.DELETE_INGRESS, ingress.name)


def delete_children(d: Draft, keep_volume: bool) -> None:
    pod, pvc, secret = d.children.pod, d.children.pvc, d.children.secret
    if pod is not None and (not pod.deleting or d.children.node_loss is not None):
        if d.phase is not Phase.FAILED:
            metering.close_segment(d, None)  # bills a pod that outlived its closed segment
        delete_pod(d)
    delete_service(d)
    set_endpoints(d, [])
    if keep_volume:
        return
    if pvc is not None and not pvc.deleting:
        d.act(ActionKind.DELETE_PVC, pvc.name)
    if secret is not None:
        d.act(ActionKind.DELETE_SECRET, secret.name)


def _service_matches(service: ServiceView, body: dict[str, Any]) -> bool:
    spec = body["spec"]
    wanted = tuple((str(p["name"]), int(p["port"])) for p in spec["ports"])
    return service.type == spec["type"] and service.ports == wanted
