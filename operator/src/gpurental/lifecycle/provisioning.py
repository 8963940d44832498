"""A pod asked for and not yet running: waiting, timing out, failing."""

from __future__ import annotations

from gpurental import builders, conditions, disruptions, meter
from gpurental.clock import parse_ts
from gpurental.lifecycle import metering
from gpurental.lifecycle.children import delete_children
from gpurental.lifecycle.draft import Draft
from gpurental.lifecycle.plans import Context
from gpurental.models import Phase
from gpurental.observed import PodView

IMAGE_PULL_REASONS = ("ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull")


def wait(d: Draft, pod: PodView) -> None:
    """The pod exists and does not run yet: Provisioning until the timeout, then a failure."""
    d.status["podName"] = pod.name
    enter(d)
    if waiting_for_capacity(d):
        # The provisioning timeout is for first provisioning: a preempted rental waits
        # for GPUs to free up, accruing nothing but storage.
        d.plan.requeue_after = 30.0
        return
    timeout = _timeout(d.ctx)
    waited = (d.ctx.now - parse_ts(d.status["provisioningSince"])).total_seconds()
    if waited < timeout:
        d.plan.requeue_after = max(timeout - waited, 0.5)
        return
    if d.ctx.diagnosis is None:
        d.plan.needs_diagnosis = True
    failed(d, _error(pod, d.ctx.diagnosis))


def enter(d: Draft) -> None:
    """Provisioning: the phase, and a Ready condition that says what is awaited."""
    reason, message = "Provisioning", "waiting for the pod to be scheduled and started"
    disruption = d.status.get("disruption") or {}
    if disruption.get("recovering"):
        reason = str(disruption.get("reason"))
        message = f"{disruption.get('message')}; replacing the pod"
    if reason == disruptions.PREEMPTED:
        reason = "WaitingForCapacity"
        message = f"{disruption.get('message')}; waiting for capacity on the same volume"
    d.status.setdefault("provisioningSince", d.now)
    d.status["podName"] = builders.pod_name(d.rental.name)
    d.set_phase(Phase.PROVISIONING, "Provisioning", message)
    conditions.provisioning(d.conditions, reason, message)


def waiting_for_capacity(d: Draft) -> bool:
    disruption = d.status.get("disruption") or {}
    return bool(disruption.get("recovering")) and disruption.get(
        "reason") == disruptions.PREEMPTED


def failed(d: Draft, message: str) -> None:
    """First provisioning failed: Failed, children removed, nothing billed. A resume that
    fails returns to Paused instead, keeping the user's data."""
    delete_children(d, keep_volume=bool(d.status.get("firstStartedAt")))
    if d.status.get("firstStartedAt"):
        return _resume_failed(d, message)
    metering.close_all(d)
    meter.refund(d.status, d.ctx.now)
    d.status["message"] = message
    d.set_phase(Phase.FAILED, "ProvisioningFailed", message, warning=True)
    conditions.provisioning_failed(d.conditions, message)


def _resume_failed(d: Draft, message: str) -> None:
    """What ran before stays billed: Paused keeps the data, Failed would refund it."""
    recovering = (d.status.get("disruption") or {}).get("recovering")
    reason = "NoCapacity" if recovering else "ResumeFailed"
    if recovering:
        d.status["disruption"] = {**d.status["disruption"], "recovering": False}
    d.status.pop("provisioningSince", None)
    # Held until the spec changes: retrying every timeout would flap Paused and
    # Provisioning forever on a full pool.
    d.status["heldGeneration"] = d.rental.generation
    d.set_phase(Phase.PAUSED, reason, message, warning=True)
    conditions.paused_by_the_operator(d.conditions, reason, message)


def _timeout(ctx: Context) -> int:
    if ctx.offer is not None and ctx.offer.provisioning_timeout:
        return ctx.offer.provisioning_timeout
    return ctx.provisioning_timeout


def _error(pod: PodView, diagnosis: str | None) -> str:
    """The scheduler's or kubelet's reason, as the seed's Failed cards show it."""
    if pod.unschedulable:
        return f"Unschedulable: {pod.unschedulable}"
    if pod.waiting_reason in IMAGE_PULL_REASONS:
        return f"{pod.waiting_reason}: {pod.waiting_message or 'image could not be pulled'}"
    if diagnosis:
        return diagnosis
    if pod.waiting_reason:
        detail = f": {pod.waiting_message}" if pod.waiting_message else ""
        return f"{pod.waiting_reason}{detail}"
    return "the pod did not start in time"
