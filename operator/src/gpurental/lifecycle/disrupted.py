"""A pod taken away without the user asking: recording it once, following an interruptible
rental's spec.onInterruption, and noting the recovery. disruptions.py says why a pod went;
this module keeps status.disruption, the restart counters and the Interrupted condition."""

from __future__ import annotations

from datetime import datetime

from gpurental import conditions, disruptions, meter
from gpurental.clock import format_ts
from gpurental.lifecycle import halting
from gpurental.lifecycle.draft import Draft
from gpurental.lifecycle.plans import Context
from gpurental.models import InterruptAction, RentalSpec
from gpurental.observed import PodView


def record(d: Draft, reason: str, message: str, pod: PodView | None,
           at: datetime | None = None) -> None:
    """Record, once per pod, that it was taken away: an Event, a restart, the reason."""
    pod_uid = pod.uid if pod is not None else str(d.status.get("segmentPodUid") or "")
    current = d.status.get("disruption") or {}
    if current.get("podUid") == pod_uid and current.get("recovering"):
        return
    d.status["restarts"] = int(d.status.get("restarts") or 0) + 1
    if reason == disruptions.PREEMPTED:
        d.status["interruptions"] = int(d.status.get("interruptions") or 0) + 1
    ends_by = pod.deletion_deadline if pod is not None else None
    d.status["disruption"] = {
        "reason": reason, "message": message, "podUid": pod_uid,
        "at": format_ts(at or d.ctx.now), "recovering": True,
        "endsBy": format_ts(ends_by) if ends_by else None}
    d.event("Warning", reason, f"{message}; replacing it")


def vanished_cause(gone: PodView | None, ctx: Context) -> tuple[str, str]:
    """Why a billed pod is gone from the cache: its last state if the watch saw it, else
    the scheduler's Preempted Event if there was one."""
    if gone is not None:
        return disruptions.pod_removed(gone)
    if ctx.pod_end_preempted is not None:
        return disruptions.PREEMPTED, (f"the rental's pod was preempted by the scheduler: "
                                       f"{ctx.pod_end_preempted}")
    return disruptions.POD_DELETED, "the rental's pod disappeared"


def interrupted(d: Draft, spec: RentalSpec) -> bool:
    """The scheduler took an interruptible rental's GPUs back (its pod's container has
    stopped): say so, then follow spec.onInterruption. True when that ends the pass
    (Pause, Stop); Resume goes on to a new pod that waits for capacity."""
    disruption = d.status.get("disruption") or {}
    if disruption.get("reason") != disruptions.PREEMPTED or not disruption.get("recovering"):
        return False
    message = str(disruption.get("message") or "preempted by the scheduler")
    conditions.interrupted(d.conditions, message)
    action = spec.on_interruption
    if action is InterruptAction.RESUME:
        return False
    d.status["disruption"] = {**disruption, "recovering": False}
    if action is InterruptAction.STOP:
        halting.stop(d, "Preempted", message)
        return True
    d.status["heldGeneration"] = d.rental.generation
    halting.pause(d, "Preempted", message)
    return True


def recovered(d: Draft, pod: PodView) -> None:
    """A replacement pod runs: the disruption is over; a preemption's gap is counted."""
    disruption = d.status["disruption"]
    d.status["disruption"] = {**disruption, "recovering": False}
    if disruption.get("reason") != disruptions.PREEMPTED:
        return
    if pod.started_at is not None:
        meter.count_interruption(d.status, pod.started_at)
    conditions.interruption_over(d.conditions, pod.name)
