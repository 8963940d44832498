"""Leader election over a coordination.k8s.io Lease, the rules client-go's leaderelection uses.

Pure: what a replica may do with the Lease it read. A replica holds the lease while it renews
it; another may take it only when the record it last saw has not changed for a whole lease
duration, timed on its own monotonic clock (never by comparing its wall clock with the
holder's renewTime, which would trust two machines' clocks to agree).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

MICROTIME = "%Y-%m-%dT%H:%M:%S.%fZ"


@dataclass(frozen=True)
class Observed:
    """A Lease's record as last read, and when (monotonic) it was seen to change."""

    holder: str
    renewed: str
    duration: float
    seen_at: float

    @classmethod
    def of(cls, lease: dict[str, Any] | None, seen_at: float,
           before: Observed | None) -> Observed:
        spec = (lease or {}).get("spec") or {}
        holder, renewed = str(spec.get("holderIdentity") or ""), str(spec.get("renewTime") or "")
        if before is not None and (before.holder, before.renewed) == (holder, renewed):
            return before  # unchanged: keep the moment it was first seen like this
        return cls(holder, renewed, float(spec.get("leaseDurationSeconds") or 0), seen_at)


def may_take(observed: Observed, me: str, now: float) -> bool:
    """Whether `me` may write itself in as the holder now."""
    return (not observed.holder or observed.holder == me
            or now >= observed.seen_at + observed.duration)


def lease_body(name: str, namespace: str, me: str, duration: float, now: datetime,
               lease: dict[str, Any] | None) -> dict[str, Any]:
    """The Lease with `me` holding it from `now`, carrying the read's resourceVersion so the
    write is conditional: two replicas taking it at once cannot both succeed."""
    spec = dict((lease or {}).get("spec") or {})
    stamp = now.strftime(MICROTIME)
    if spec.get("holderIdentity") != me:
        spec["acquireTime"] = stamp
        if spec.get("holderIdentity"):
            spec["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + 1
    spec.update(holderIdentity=me, leaseDurationSeconds=int(duration), renewTime=stamp)
    metadata: dict[str, Any] = {"name": name, "namespace": namespace}
    version = ((lease or {}).get("metadata") or {}).get("resourceVersion")
    if version:
        metadata["resourceVersion"] = version
    return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": metadata,
            "spec": spec}


def released(lease: dict[str, Any]) -> dict[str, Any]:
    """The Lease given up on a clean shutdown: no holder, so a standby takes it at its next
    try instead of waiting out the duration (client-go's ReleaseOnCancel)."""
    spec = {**lease["spec"], "holderIdentity": "", "leaseDurationSeconds": 1}
    return {**lease, "spec": spec}
