"""The pod of a rental that should run: create it, replace it, wait out a lost node, meter it
while it runs. Each function is one case of running.converge_pod."""

from __future__ import annotations

from gpurental import billing, builders, conditions, disruptions, meter
from gpurental.clock import format_ts
from gpurental.lifecycle import disrupted, metering, provisioning
from gpurental.lifecycle.children import delete_service, paused_endpoints
from gpurental.lifecycle.draft import Draft
from gpurental.lifecycle.plans import FORCE, ActionKind
from gpurental.models import OfferSpec, Phase, RentalSpec
from gpurental.observed import NodeLoss, PodView


def create(d: Draft, spec: RentalSpec, offer: OfferSpec | None) -> None:
    """No pod: a billed one vanished (bill it to its end first), or none was made yet."""
    if meter.is_open(d.status):
        # The pod vanished behind the operator's back while billed: its last state (the
        # final watch event), or else its Events (metering.close_segment asks for them), say
        # when its container stopped; the meter stops there.
        gone = metering.segment_pod(d)
        disrupted.record(d, *disrupted.vanished_cause(gone, d.ctx), gone)
        metering.close_segment(d, None)
    if disrupted.interrupted(d, spec):
        return
    if offer is None:  # only reachable when a running pod exists; see running.converge_pod
        return
    body = builders.make_pod(
        d.rental.namespace, d.rental.name, d.rental.uid, spec, offer,
        priority_class=d.ctx.priority_class, sshd_image=d.ctx.sshd_image,
    )
    d.act(ActionKind.CREATE_POD, body["metadata"]["name"], body)
    provisioning.enter(d)


def replace(d: Draft, pod: PodView, spec: RentalSpec) -> None:
    """The pod ended, or someone else is deleting it: bill its container to its real end,
    then a new pod on the same volume."""
    running_on = (pod.deleting and pod.finished_at is None and not pod.ended
                  and pod.deletion_deadline is not None
                  and pod.deletion_deadline > d.ctx.now)
    if meter.is_open(d.status):
        disrupted.record(d, *disruptions.pod_removed(pod), pod)
        if running_on:
            # Its container runs (and holds the GPU) until the kubelet stops it.
            deadline = pod.deletion_deadline
            assert deadline is not None
            d.plan.requeue_after = max((deadline - d.ctx.now).total_seconds(), 0.5)
        else:
            metering.close_segment(d, pod.finished_at or pod.deletion_deadline)
    if not running_on and disrupted.interrupted(d, spec):
        return
    if pod.ended and not pod.deleting:
        d.act(ActionKind.DELETE_POD, pod.name)
    provisioning.enter(d)
    d.plan.requeue_after = min(d.plan.requeue_after or 1.0, 1.0)


def node_lost(d: Draft, pod: PodView, loss: NodeLoss) -> None:
    """The pod's node stopped reporting: its GPUs are unreachable from the last heartbeat
    on, so billing ends there (metering.close_segment caps every close at it). The pod is
    left to Kubernetes' own eviction (the pod's unreachable toleration, 300 s unless the offer
    says otherwise: a partitioned node may still run it), and once evicted it is removed
    with grace 0, because no kubelet is left to confirm its end."""
    if meter.is_open(d.status) or not d.status.get("disruption"):
        disrupted.record(d, *disruptions.node_lost(loss.node, loss.since, format_ts(loss.since)),
                         pod, at=loss.since)
    metering.close_segment(d, None)
    if pod.deleting:
        d.act(ActionKind.DELETE_POD, pod.name, FORCE)
    provisioning.enter(d)
    d.plan.requeue_after = 2.0


def volume_unavailable(d: Draft, node: str) -> None:
    """The rental's volume lives on a lost node (a local volume cannot move): Paused until
    the node is back, then it resumes by itself on the same data."""
    message = (f"the volume claim {builders.pvc_name(d.rental.name)} is bound to node "
               f"{node}, which was lost; a volume pinned to a node cannot move. The rental "
               "resumes when the node is back")
    if meter.is_open(d.status):
        metering.close_segment(d, None)
    delete_service(d)  # nothing listens on a port nobody pays for
    paused_endpoints(d)
    d.set_phase(Phase.PAUSED, "VolumeUnavailable", message, warning=True)
    d.status["message"] = message
    conditions.paused_by_the_operator(d.conditions, "VolumeUnavailable", message)
    d.plan.requeue_after = 30.0


def running(d: Draft, pod: PodView, spec: RentalSpec, offer: OfferSpec | None) -> None:
    """The pod runs: the rate is locked, the meter runs from the container's start."""
    d.status["podName"] = pod.name
    if offer is not None:
        meter.lock_rate(d.status, billing.rate_per_hour(offer.price_per_gpu_hour, spec.gpus))
    meter.start_running(d.status, pod.uid, pod.started_at, d.ctx.now)
    d.status.pop("provisioningSince", None)
    if (d.status.get("disruption") or {}).get("recovering"):
        disrupted.recovered(d, pod)
    message = f"pod {pod.name} is running"
    lost = d.status.get("lostClaim")
    if lost:
        message += ", but its volume claim was deleted: " + conditions.volume_lost_message(lost)
    d.set_phase(Phase.RUNNING, "Running", message)
    conditions.running(d.conditions, message)
