"""Carrying out one rental's plan against the API, in the order that keeps billing exact.

The finalizer first (nothing billable exists without it), then the status, conditional on
the resourceVersion the plan was made from (a lost race raises Conflict before any action
ran), then the plan's Events, then its actions in order: the meter is closed in status
before the pod's DELETE is sent, so a crash between the two never bills a second twice or
loses one. Every write's response goes back into the cache, and its watch echo is dropped.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from gpurental import metrics, settlement
from gpurental.clock import Clock
from gpurental.constants import FINALIZER, RENTALS
from gpurental.events import EventPoster
from gpurental.k8s import Kube
from gpurental.lifecycle import Action, ActionKind, Plan
from gpurental.models import status_merge_patch
from gpurental.observed import RentalView
from gpurental.stops import StopRequests
from gpurental.world import EchoFilter, World

_CHILD_KINDS = {
    ActionKind.DELETE_POD: "Pod",
    ActionKind.DELETE_PVC: "PersistentVolumeClaim",
    ActionKind.DELETE_SECRET: "Secret",
    ActionKind.DELETE_SERVICE: "Service",
    ActionKind.DELETE_INGRESS: "Ingress",
}

Step = Callable[[RentalView, Action], Awaitable[None]]


class PlanExecutor:
    def __init__(self, kube: Kube, world: World, clock: Clock, *, echoes: EchoFilter,
                 events: EventPoster, stops: StopRequests,
                 charges: metrics.ChargeTracker) -> None:
        self.kube = kube
        self.world = world
        self.clock = clock
        self.echoes = echoes  # of the operator's own rental writes
        self.events = events
        self.stops = stops
        self.charges = charges
        self._steps: dict[ActionKind, Step] = {
            ActionKind.CREATE_PVC: self._create,
            ActionKind.CREATE_POD: self._create,
            ActionKind.APPLY_SECRET: self._apply_secret,
            ActionKind.DELETE_POD: self._delete,
            ActionKind.DELETE_PVC: self._delete,
            ActionKind.DELETE_SECRET: self._delete,
            ActionKind.CREATE_SERVICE: self._create,
            ActionKind.DELETE_SERVICE: self._delete,
            ActionKind.CREATE_INGRESS: self._create,
            ActionKind.DELETE_INGRESS: self._delete,
            ActionKind.SETTLE: self._settle,
            ActionKind.REMOVE_FINALIZER: self._remove_finalizer,
        }

    async def execute(self, view: RentalView, plan: Plan) -> None:
        if ActionKind.ADD_FINALIZER in plan.kinds():
            view = await self._add_finalizer(view)
        view = await self._write_status(view, plan)
        self.events.post(view, plan.events)
        for action in plan.actions:
            if action.kind is not ActionKind.ADD_FINALIZER:
                await self._steps[action.kind](view, action)

    async def _add_finalizer(self, view: RentalView) -> RentalView:
        body = await self.kube.add_finalizer(view.namespace, view.name, FINALIZER,
                                             view.finalizers)
        return self._cache(view, body)

    async def _write_status(self, view: RentalView, plan: Plan) -> RentalView:
        patch = status_merge_patch(view.status, plan.status)
        if not patch:
            return view
        body = await self.kube.patch_status(
            RENTALS, view.namespace, view.name, patch, self.world.rental_version(view.key))
        metrics.observe_transition(self.charges, view, plan.status)
        return self._cache(view, body)

    def _cache(self, view: RentalView, body: dict[str, Any] | None) -> RentalView:
        if body is None:
            return view
        self.echoes.wrote(view.key, body)
        return self.world.put_rental(body) or self.world.rental(view.key) or view

    async def _create(self, view: RentalView, action: Action) -> None:
        assert action.body is not None
        body = await self.kube.create(action.body)
        if body is not None:
            self.world.put_child(action.body["kind"], body)

    async def _apply_secret(self, view: RentalView, action: Action) -> None:
        assert action.body is not None
        await self.kube.apply_secret(action.body)

    async def _delete(self, view: RentalView, action: Action) -> None:
        kind = _CHILD_KINDS[action.kind]
        if kind == "Pod":
            self.stops.carried_out(view.key)
        grace = (action.body or {}).get("gracePeriodSeconds")
        await self.kube.delete(kind, view.namespace, action.name, grace)
        self.world.mark_deleting(kind, view.uid)

    async def _settle(self, view: RentalView, action: Action) -> None:
        await settlement.settle_deleted_rental(
            self.kube, self.world, view, action.name, self.clock.now())

    async def _remove_finalizer(self, view: RentalView, action: Action) -> None:
        await self.kube.remove_finalizer(view.namespace, view.name, FINALIZER, view.finalizers)
