"""GpuOffer status: observedGeneration and a Ready condition saying whether the offer is usable.

An offer is admin-written catalog data; the only thing the operator has to say about it is
whether it parsed (a bad price or duration makes every rental naming it wait with a clear
condition) and that it has seen the latest generation, which GitOps health checks rely on.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from gpurental.clock import format_ts
from gpurental.constants import OFFERS
from gpurental.k8s import Conflict
from gpurental.models import OfferSpec, SpecError, parse_spec, set_condition, status_merge_patch
from gpurental.workqueue import WorkQueue

if TYPE_CHECKING:
    from gpurental.reconciler import Controller

log = logging.getLogger(__name__)


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
    def __init__(self, controller: Controller) -> None:
        self.controller = controller
        self.queue: WorkQueue[str] = WorkQueue(controller.clock.monotonic)

    def enqueue(self, name: str) -> None:
        self.queue.add(name)

    async def run_worker(self) -> None:
        while True:
            name = await self.queue.get()
            try:
                await self.reconcile(name)
            except Conflict:
                self.queue.add(name, 0.05)
            except Exception as exc:
                log.warning("offer %s: %s; retrying", name, exc)
                self.queue.add(name, 2.0)
            finally:
                self.queue.done(name)

    async def reconcile(self, name: str) -> None:
        ctl = self.controller
        body = ctl.world.offers.get(name)
        if body is None:
            return
        old = dict(body.get("status") or {})
        new = offer_status(body, format_ts(ctl.clock.now()))
        patch = status_merge_patch(old, new)
        if patch:
            ctl.world.offers[name] = await ctl.kube.patch_status(
                OFFERS, None, name, patch, body["metadata"].get("resourceVersion"))
