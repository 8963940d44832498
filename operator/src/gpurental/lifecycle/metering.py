"""When the pass stops, caps and refreshes the meter; meter.py does the bookkeeping.

Invariant: a segment never bills past the end of its pod's GPUs - the kubelet's finishedAt,
the end of the pod's grace period, the node's last heartbeat, or the pod's Killing Event - and
never bills less than the pod ran.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from gpurental import billing, disruptions, meter
from gpurental.clock import parse_ts
from gpurental.lifecycle.draft import Draft
from gpurental.models import SpecError
from gpurental.observed import PodView


def close_segment(d: Draft, end: datetime | None) -> None:
    """Stop billing the rental's GPUs at `end` (None: as late as its pod held them)."""
    loss = d.children.node_loss
    if loss is not None:  # the GPUs were unreachable from the node's last heartbeat
        end = min(end or loss.since, loss.since)
        if d.children.pod is not None:
            # A segment closed while the node was dead but not yet declared lost ends at
            # the last heartbeat too: unreachable GPUs are never billed.
            meter.shorten_segment(d.status, d.children.pod.uid, loss.since)
    if meter.is_open(d.status):
        cap = _segment_cap(d)
        meter.close_segment(d.status, min(end or cap, cap))
        return
    pod = d.children.pod
    if end is None and pod is not None and pod.running:
        meter.bill_unseen_run(d.status, pod.uid, pod.started_at, d.ctx.now, _gpu_rate(d))


def close_all(d: Draft) -> None:
    close_segment(d, None)
    meter.close_storage(d.status, d.ctx.now)


def refresh(d: Draft) -> None:
    """Write the meter's readings at every transition, or when the heartbeat is due."""
    if meter.is_transition(d.old, d.status) or d.ctx.heartbeat:
        meter.refresh(d.status, d.ctx.now, d.ctx.prepaid_seconds)


def segment_pod(d: Draft) -> PodView | None:
    """The pod the open segment meters, as cached or as its final watch event left it."""
    uid = d.status.get("segmentPodUid")
    for pod in (d.children.pod, d.children.gone_pod):
        if pod is not None and pod.uid == uid:
            return pod
    return None


def _segment_cap(d: Draft) -> datetime:
    """The latest the open segment's pod can have held its GPUs, as Kubernetes tells it."""
    pod = segment_pod(d)
    ends_by = (d.status.get("disruption") or {}).get("endsBy")
    cap = disruptions.segment_end(pod, parse_ts(ends_by) if ends_by else None, d.ctx.now)
    if pod is None and d.children.pod is None:
        # The pod vanished unseen (the operator was down): its Events tell its end.
        if not d.ctx.pod_end_looked_up:
            d.plan.needs_pod_end = str(d.status.get("segmentPodUid") or "")
        cap = min(cap, d.ctx.pod_end or cap)
    return cap


def _gpu_rate(d: Draft) -> Decimal | None:
    if "ratePerHour" in d.status or d.ctx.offer is None:
        return None
    try:
        spec = d.rental.parsed_spec()
    except SpecError:
        return None
    return billing.rate_per_hour(d.ctx.offer.price_per_gpu_hour, spec.gpus)
