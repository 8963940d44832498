"""GpuOffer status: observedGeneration and a Ready condition saying whether the offer is usable.

An offer is admin-written catalog data; the only thing the operator has to say about it is
whether it parsed (a bad price or duration makes every rental naming it wait with a clear
condition) and that it has seen the latest generation, which GitOps health checks rely on.
"""

from __future__ import annotations

from typing import Any

from gpurental.clock import Clock, format_ts
from gpurental.constants import OFFERS
from gpurental.k8s import Kube
from gpurental.models import OfferSpec, SpecError, parse_spec, set_condition, status_merge_patch
from gpurental.world import World


def offer_status(body: dict[str, Any], now: str) -> dict[str, Any]:
    """The status an offer should have: observed, and Ready unless its spec is unusable."""
    old = dict(body.get("status") or {})
    generation = int(body["metadata"].get("generation") or 0)
    try:
        parse_spec(OfferSpec, body.get("spec"))
        ready, reason, message = True, "Valid", "the offer can be rented"
    except SpecError as exc:
        ready, reason, message = False, "InvalidSpec", str(exc)
    conditions = set_condition(list(old.get("conditions") or []), "Ready", ready, reason,
                               message, now, generation)
    return {**old, "observedGeneration": generation, "conditions": conditions}


class OfferReconciler:
    def __init__(self, world: World, kube: Kube, clock: Clock) -> None:
        self.world = world
        self.kube = kube
        self.clock = clock

    async def reconcile(self, name: str) -> None:
        body = self.world.offers.get(name)
        if body is None:
            return
        old = dict(body.get("status") or {})
        new = offer_status(body, format_ts(self.clock.now()))
        patch = status_merge_patch(old, new)
        if patch:
            self.world.put_offer(name, await self.kube.patch_status(
                OFFERS, None, name, patch, body["metadata"].get("resourceVersion")))
