"""Why a rental's pod or volume was taken away, as Kubernetes tells it. Pure.

A disruption is anything that removes what a rental runs on without the user asking: a
`kubectl delete pod`, an eviction, a preemption, a node that stopped reporting, a deleted
volume claim. The reasons are a closed set, so they can label a metric.
"""

from __future__ import annotations

from datetime import datetime

from gpurental.observed import PodView

NODE_LOST = "NodeLost"
VOLUME_LOST = "VolumeLost"
POD_DELETED = "PodDeleted"
EVICTED = "Evicted"
PREEMPTED = "Preempted"
POD_ENDED = "PodEnded"  # the container exited by itself: restarted, not a disruption metric
REASONS = (NODE_LOST, VOLUME_LOST, POD_DELETED, EVICTED, PREEMPTED)

# The DisruptionTarget condition's reasons (pod disruption conditions, GA in 1.31).
_BY_CONDITION = {
    "PreemptionByScheduler": (PREEMPTED, "preempted by the scheduler"),
    "EvictionByEvictionAPI": (EVICTED, "evicted through the Eviction API"),
    "TerminationByKubelet": (EVICTED, "evicted by the kubelet (node pressure)"),
    "DeletionByTaintManager": (EVICTED, "evicted by a NoExecute taint of its node"),
    "DeletionByPodGC": (POD_DELETED, "deleted by the pod garbage collector"),
}


def pod_removed(pod: PodView) -> tuple[str, str]:
    """The reason and a sentence for a pod that is going or gone without the user asking."""
    if pod.ended and not pod.deleting:
        return POD_ENDED, f"the rental's pod {pod.name} ended ({pod.phase})"
    known = _BY_CONDITION.get(pod.disruption or "")
    if known is None:
        return POD_DELETED, (f"the rental's pod {pod.name} was deleted outside the operator "
                             "(Kubernetes recorded no reason: kubectl delete or a controller)")
    reason, what = known
    detail = f": {pod.disruption_message}" if pod.disruption_message else ""
    return reason, f"the rental's pod {pod.name} was {what}{detail}"


def node_lost(node: str, since: datetime, stamp: str) -> tuple[str, str]:
    return NODE_LOST, (f"node {node} stopped reporting (last heartbeat {stamp}); billing "
                       "stopped then, a new pod is requested once Kubernetes evicts the old one")


def segment_end(pod: PodView | None, ends_by: datetime | None, now: datetime) -> datetime:
    """When a removed pod's container stopped: the kubelet's finishedAt if it said, else no
    later than the end of the pod's grace period, else now (nothing better is known)."""
    candidates = [now]
    if pod is not None and pod.finished_at is not None:
        candidates.append(pod.finished_at)
    if pod is not None and pod.deletion_deadline is not None:
        candidates.append(pod.deletion_deadline)
    if ends_by is not None:
        candidates.append(ends_by)
    return min(candidates)
