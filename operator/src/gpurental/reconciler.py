"""The controller: a work queue of rentals, and the pass that reconciles one of them.

Owns the I/O around the pure state machine: it builds the context from the cache, asks
`lifecycle.plan` what to do, writes status first (conditionally on the resourceVersion it read),
then performs the actions in order and posts the events. One worker per rental at a time (the
queue guarantees it), many rentals in parallel. Every deadline - provisioning timeout, meter
heartbeat, expiry - is a delayed re-add of the rental's key, never a task of its own.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import kopf
from kubernetes.client.exceptions import ApiException

from gpurental import disruptions, idle, lifecycle, meter, metrics, money, settlement
from gpurental.clock import Clock, parse_ts
from gpurental.constants import API_VERSION, FINALIZER, RENTALS
from gpurental.holds import Hold
from gpurental.k8s import Conflict, Kube
from gpurental.lifecycle import Action, ActionKind, Context, Plan
from gpurental.models import (
    OfferSpec,
    Phase,
    SpecError,
    WalletSpec,
    parse_spec,
    status_merge_patch,
)
from gpurental.observed import NodeLoss, RentalView
from gpurental.offers import OfferReconciler
from gpurental.options import Options
from gpurental.wallets import WalletReconciler
from gpurental.workqueue import WorkQueue
from gpurental.world import EchoFilter, Key, World

log = logging.getLogger(__name__)

_CHILD_KINDS = {
    ActionKind.DELETE_POD: "Pod",
    ActionKind.DELETE_PVC: "PersistentVolumeClaim",
    ActionKind.DELETE_SECRET: "Secret",
    ActionKind.DELETE_SERVICE: "Service",
    ActionKind.DELETE_INGRESS: "Ingress",
}


class Controller:
    def __init__(self, kube: Kube, clock: Clock, settings: Options) -> None:
        self.kube = kube
        self.clock = clock
        self.settings = settings
        self.world = World()
        self.queue: WorkQueue[Key] = WorkQueue(clock.monotonic)
        self.charges = metrics.ChargeTracker()
        self._failures: dict[Key, int] = {}
        self._stop_requested: dict[Key, tuple[float, str]] = {}
        self._posting_context: contextvars.Context | None = None
        self._echoes = EchoFilter()  # of the operator's own rental writes
        self.wallets = WalletReconciler(self)
        self.offer_status = OfferReconciler(self)
        # The idle watch's latest IDLE findings; the rental's next pass turns one into a hold.
        self.idle_findings: dict[Key, idle.Finding] = {}

    # --- feeding the cache -----------------------------------------------------------------

    def rental_seen(self, body: dict[str, Any]) -> None:
        """Cache a rental (from kopf's indexing pass, before any reconcile may run)."""
        key: Key = (body["metadata"]["namespace"], body["metadata"]["name"])
        before = self.world.rental(key)
        view = self.world.put_rental(body)
        if view is not None:
            self._note_stop_request(before, view)

    def rental_gone(self, body: dict[str, Any]) -> None:
        key: Key = (body["metadata"]["namespace"], body["metadata"]["name"])
        view = self.world.rental(key)
        if view is not None and view.uid == body["metadata"].get("uid"):
            self.world.drop_rental(key)
            self._echoes.forget(key)
            self._stop_requested.pop(key, None)
            self.charges.forget(view.uid)
            if view.spec.get("wallet"):
                self.wallets.enqueue((view.namespace, str(view.spec["wallet"])))

    def rental_changed(self, body: dict[str, Any]) -> None:
        """A watch event for a rental: queue it, unless it echoes the operator's own write."""
        if not self._echoes.is_echo(body):
            self.enqueue((body["metadata"]["namespace"], body["metadata"]["name"]))

    def child_seen(self, kind: str, body: dict[str, Any], deleted: bool = False) -> Key | None:
        """Cache a pod / PVC / Secret; returns its rental's key."""
        return self.world.put_child(kind, body, deleted=deleted)

    def node_seen(self, body: dict[str, Any], deleted: bool = False) -> list[Key]:
        """Cache a node; returns the rentals on it when it was lost or came back."""
        return self.world.put_node(body, deleted=deleted)

    def offer_seen(self, body: dict[str, Any], deleted: bool = False) -> list[Key]:
        """Cache an offer; returns the rentals that use it."""
        name = body["metadata"]["name"]
        if deleted:
            self.world.offers.pop(name, None)
        else:
            self.world.offers[name] = dict(body)
        return list(self.world.rentals_of_offer(name))

    def wallet_seen(self, body: dict[str, Any], deleted: bool = False) -> list[Key]:
        """Cache a wallet; returns the rentals it pays for."""
        key: Key = (body["metadata"]["namespace"], body["metadata"]["name"])
        if deleted:
            self.world.wallets.pop(key, None)
        else:
            self.world.wallets[key] = dict(body)
        return list(self.world.rentals_of_wallet(key))

    def enqueue(self, *keys: Key) -> None:
        """Queue rentals for reconciliation; called from kopf's event handlers only."""
        if self._posting_context is None:
            # kopf.event() finds its poster through context variables that kopf sets only
            # while it processes a watch event; the workers run outside any such context,
            # so they post events inside a copy of the first handler's context.
            self._posting_context = contextvars.copy_context()
        for key in keys:
            # A rental with a stop or pause request not yet carried out jumps the queue.
            self.queue.add(key, urgent=key in self._stop_requested)

    def _note_stop_request(self, before: RentalView | None, view: RentalView) -> None:
        """Remember when a stop/pause request was first seen, for the stop-latency metric."""
        state = view.spec.get("state", "Running")
        previous = before.spec.get("state", "Running") if before else None
        if state in ("Stopped", "Paused") and previous not in (None, state):
            self._stop_requested[view.key] = (self.clock.monotonic(), state.lower())
        elif view.deleting and (before is None or not before.deleting):
            self._stop_requested[view.key] = (self.clock.monotonic(), "delete")

    # --- workers ---------------------------------------------------------------------------

    async def run(self) -> None:
        """The rental workers, the wallet workers and the clock watch, until cancelled."""
        await asyncio.gather(
            *(self._worker() for _ in range(self.settings.workers)),
            self.wallets.run_workers(),
            self.offer_status.run_worker(),
            self._watch_clock(),
        )

    async def _watch_clock(self, every: float = 0.5) -> None:
        """Re-check every deadline when the wall clock jumps (an NTP step, or a test moving
        the injectable clock): deadlines are queued in monotonic time."""
        skew = self.clock.now().timestamp() - self.clock.monotonic()
        while True:
            await asyncio.sleep(every)
            current = self.clock.now().timestamp() - self.clock.monotonic()
            if abs(current - skew) > 0.5:
                log.info("wall clock moved by %+.1fs; re-checking all deadlines", current - skew)
                self.enqueue(*self.world.rentals)
                for wallet in list(self.world.wallets):
                    self.wallets.enqueue(wallet)
            skew = current

    async def _worker(self) -> None:
        while True:
            key = await self.queue.get()
            try:
                with self.kube.urgent_calls(key in self._stop_requested):
                    await self._reconcile_timed(key)
            finally:
                self.queue.done(key)

    async def _reconcile_timed(self, key: Key) -> None:
        started = time.monotonic()
        result = "ok"
        try:
            await self.reconcile(key)
            self._failures.pop(key, None)
        except Conflict:
            result = "conflict"
            await self._refetch(key)
            self.queue.add(key)
        except Exception as exc:
            result = "error"
            metrics.RECONCILE_ERRORS.inc()
            self._retry_later(key, exc)
        finally:
            metrics.RECONCILE_DURATION.labels(result=result).observe(time.monotonic() - started)

    def _retry_later(self, key: Key, exc: Exception) -> None:
        failures = self._failures.get(key, 0) + 1
        self._failures[key] = failures
        delay = min(0.25 * 2 ** min(failures, 8), 30.0)
        if isinstance(exc, ApiException) and exc.status == 429:
            retry_after = (exc.headers or {}).get("Retry-After")
            if retry_after and retry_after.isdigit():
                delay = max(delay, float(retry_after))
        log.warning("reconcile of %s/%s failed (%s); retrying in %.1fs", *key, exc, delay,
                    exc_info=not isinstance(exc, ApiException))
        self.queue.add(key, delay)

    async def _refetch(self, key: Key) -> None:
        body = await self.kube.get_rental(*key)
        if body is None:
            return
        self.world.put_rental(body)

    # --- one pass --------------------------------------------------------------------------

    async def reconcile(self, key: Key) -> None:
        view = self.world.rental(key)
        if view is None:
            return
        ctx = self._context(view)
        await self._time_node_loss(view)
        children = self.world.children(view.uid)
        plan = lifecycle.plan(view, children, ctx)
        if plan.needs_diagnosis:
            ctx = dataclasses.replace(ctx, diagnosis=await self._diagnose(view))
            plan = lifecycle.plan(view, children, ctx)
        if plan.needs_pod_end is not None:
            ended, preempted = await self.kube.pod_end(view.namespace, plan.needs_pod_end)
            ctx = dataclasses.replace(ctx, pod_end=parse_ts(ended) if ended else None,
                                      pod_end_looked_up=True, pod_end_preempted=preempted)
            plan = lifecycle.plan(view, children, ctx)
        await self._execute(view, plan)
        if children.pod is None:
            self._stop_requested.pop(key, None)  # nothing to stop: no latency to measure
        self._schedule(key, plan, ctx)
        if plan.status.get("phase") != view.status.get("phase") and view.spec.get("wallet"):
            self.wallets.enqueue((view.namespace, str(view.spec["wallet"])))

    async def _time_node_loss(self, view: RentalView) -> None:
        """When the rental's pod's node was declared lost, find once when its GPUs were last
        known there: the kubelet's last Lease renewal, never after the controller's taint
        (the Ready condition's heartbeat may be minutes old: the kubelet posts status
        rarely when nothing changes, and renews its Lease every few seconds)."""
        node = self.world.lost_node_of(view.uid)
        if node is None or node.lost_at is None:
            return
        renewed = await self.kube.node_heartbeat(node.name)
        heard = parse_ts(renewed) if renewed else (node.heartbeat or node.lost_at)
        self.world.node_losses[node.name] = NodeLoss(node.name, min(heard, node.lost_at))
        volume = self.world.unknown_volume_of(view.uid)
        entry = self.world.pvcs.get(view.uid)
        if volume is not None and entry is not None:
            # A volume pinned to the lost node cannot follow the rental to another node.
            self.world.volume_nodes[entry.view.uid] = await self.kube.volume_node(volume)

    def _context(self, view: RentalView) -> Context:
        now = self.clock.now()
        offer, offer_error = self.offer(str(view.spec.get("offer", "")))
        wallet = self.wallet(view.namespace, view.spec.get("wallet"), now)
        assessment = self._assess(view, offer, wallet, now)
        return Context(
            now=now,
            offer=offer,
            offer_error=offer_error,
            wallet=wallet,
            provisioning_timeout=self.settings.provisioning_timeout,
            heartbeat=self._heartbeat_due(view, now),
            hold=assessment.hold or self._idle_hold(view, offer),
            renew_seconds=assessment.renew_seconds,
            prepaid_seconds=assessment.prepaid_seconds,
            wallet_exhausts_at=wallet.reading.exhausts_at if wallet else None,
            priority_class=self.settings.priority_class(offer),
            sshd_image=self.settings.sshd_image,
        )

    @staticmethod
    def _assess(view: RentalView, offer: OfferSpec | None, wallet: money.Wallet | None,
                 now: datetime) -> money.Assessment:
        try:
            spec = view.parsed_spec()
        except SpecError:
            return money.Assessment()  # lifecycle reports the bad spec itself
        return money.assess(spec, view.status, offer, wallet, now)

    def _idle_hold(self, view: RentalView, offer: OfferSpec | None) -> Hold | None:
        """An idle pause, recorded in status or just found; money's holds take precedence."""
        try:
            policy = idle.effective_policy(view.parsed_spec(), offer)
        except SpecError:
            policy = None
        return idle.hold(policy, view.generation, view.status, self.idle_findings.get(view.key))

    def offer(self, name: str) -> tuple[OfferSpec | None, str | None]:
        body = self.world.offers.get(name)
        if body is None:
            return None, None
        try:
            return parse_spec(OfferSpec, body.get("spec")), None
        except SpecError as exc:
            return None, f'GpuOffer "{name}" is invalid: {exc}'

    def wallet(self, namespace: str, name: Any, now: datetime) -> money.Wallet | None:
        """A wallet's spec and live reading, computed from the cache (not from its status,
        which may lag by a write): the budget pause must not wait for a round trip."""
        if not name:
            return None
        body = self.world.wallets.get((namespace, str(name)))
        if body is None:
            return None
        try:
            spec = parse_spec(WalletSpec, body.get("spec"))
        except SpecError:
            return None
        rentals = [r for k in self.world.rentals_of_wallet((namespace, str(name)))
                   if (r := self.world.rental(k)) is not None]
        status = body.get("status") or {}
        return money.Wallet(str(name), spec, money.read_wallet(spec, status, rentals, now),
                            money.settled_uids(status))

    def _heartbeat_due(self, view: RentalView, now: datetime) -> bool:
        if not meter.is_open(view.status):
            return False
        last = view.status.get("lastHeartbeatAt")
        if not last:
            return True
        return (now - parse_ts(last)).total_seconds() >= self.settings.metering_interval - 0.5

    async def _diagnose(self, view: RentalView) -> str:
        """The newest warning about the rental's pod or volume, for status.message."""
        children = self.world.children(view.uid)
        names = [c.name for c in (children.pod, children.pvc) if c is not None]
        events = await self.kube.warning_events(view.namespace, names)
        if not events:
            return ""
        latest = events[-1]
        return f"{latest.get('reason', 'Warning')}: {latest.get('message', '')}"

    def _schedule(self, key: Key, plan: Plan, ctx: Context) -> None:
        """Re-add the rental at its next deadline: one timer for all of them."""
        now = self.clock.now()
        delays = [plan.requeue_after] if plan.requeue_after is not None else []
        status = plan.status
        if meter.is_open(status) and status.get("lastHeartbeatAt"):
            age = (now - parse_ts(status["lastHeartbeatAt"])).total_seconds()
            delays.append(self.settings.metering_interval - age)
        deadline = money.next_deadline(status, ctx.prepaid_seconds, ctx.wallet_exhausts_at)
        if deadline is not None and meter.is_open(status):
            delays.append((deadline - now).total_seconds())
        if delays:
            self.queue.add(key, max(min(delays), 0.0))

    # --- executing a plan ------------------------------------------------------------------

    async def _execute(self, view: RentalView, plan: Plan) -> None:
        steps: dict[ActionKind, Callable[[RentalView, Action], Awaitable[None]]] = {
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
        if ActionKind.ADD_FINALIZER in plan.kinds():
            view = await self._add_finalizer(view)
        view = await self._write_status(view, plan)
        self._post_events(view, plan)
        for action in plan.actions:
            if action.kind is not ActionKind.ADD_FINALIZER:
                await steps[action.kind](view, action)

    async def _add_finalizer(self, view: RentalView) -> RentalView:
        body = await self.kube.add_finalizer(view.namespace, view.name, FINALIZER,
                                             view.finalizers)
        return self._cache(view, body)

    async def _write_status(self, view: RentalView, plan: Plan) -> RentalView:
        patch = status_merge_patch(view.status, plan.status)
        if not patch:
            return view
        body = await self.kube.patch_status(
            RENTALS, view.namespace, view.name, patch,
            self.world.rental_version(view.key))
        self._observe_transition(view, plan.status)
        return self._cache(view, body)

    def _cache(self, view: RentalView, body: dict[str, Any] | None) -> RentalView:
        if body is None:
            return view
        self._echoes.wrote(view.key, body)
        return self.world.put_rental(body) or self.world.rental(view.key) or view

    def _observe_transition(self, view: RentalView, status: dict[str, Any]) -> None:
        old, new = view.status.get("phase") or "Pending", status.get("phase") or "Pending"
        offer = str(view.spec.get("offer", ""))
        if old != new:
            metrics.TRANSITIONS.labels(namespace=view.namespace, from_phase=old,
                                       to_phase=new).inc()
            if new == Phase.FAILED:
                metrics.PROVISIONING_FAILURES.labels(
                    namespace=view.namespace, offer=offer,
                    reason=metrics.failure_reason(str(status.get("message", "")))).inc()
        if (status.get("idlePausedGeneration") is not None
                and view.status.get("idlePausedGeneration") is None):
            metrics.IDLE_PAUSES.labels(namespace=view.namespace, offer=offer).inc()
        self._observe_disruption(view, offer, status)
        self.charges.observe_status(view.uid, view.namespace, offer, status)

    @staticmethod
    def _observe_disruption(view: RentalView, offer: str, status: dict[str, Any]) -> None:
        new, old = status.get("disruption") or {}, view.status.get("disruption") or {}
        reason = new.get("reason")
        if reason in disruptions.REASONS and new.get("podUid") != old.get("podUid"):
            metrics.DISRUPTIONS.labels(namespace=view.namespace, offer=offer,
                                       reason=reason).inc()
            if reason == disruptions.PREEMPTED:
                metrics.INTERRUPTIONS.labels(namespace=view.namespace, offer=offer).inc()
        if status.get("lostClaim") and not view.status.get("lostClaim"):
            metrics.DISRUPTIONS.labels(namespace=view.namespace, offer=offer,
                                       reason=disruptions.VOLUME_LOST).inc()

    def _post_events(self, view: RentalView, plan: Plan) -> None:
        if not plan.events:
            return
        ref = kopf.Body({"apiVersion": API_VERSION, "kind": "GpuRental",
                         "metadata": {"name": view.name, "namespace": view.namespace,
                                      "uid": view.uid}})
        for event in plan.events:
            log.info("%s/%s: %s %s", view.namespace, view.name, event.reason, event.message)
            if self._posting_context is not None:
                self._posting_context.run(kopf.event, ref, type=event.type,
                                          reason=event.reason, message=event.message)

    async def _create(self, view: RentalView, action: Action) -> None:
        assert action.body is not None
        body = await self.kube.create(action.body)
        if body is not None:
            kind = action.body["kind"]
            self.world.put_child(kind, body)

    async def _apply_secret(self, view: RentalView, action: Action) -> None:
        assert action.body is not None
        await self.kube.apply_secret(action.body)

    async def _delete(self, view: RentalView, action: Action) -> None:
        kind = _CHILD_KINDS[action.kind]
        if kind == "Pod":
            self._observe_stop_latency(view.key)
        grace = (action.body or {}).get("gracePeriodSeconds")
        await self.kube.delete(kind, view.namespace, action.name, grace)
        self.world.mark_deleting(kind, view.uid)

    def _observe_stop_latency(self, key: Key) -> None:
        requested = self._stop_requested.pop(key, None)
        if requested is not None:
            since, action = requested
            metrics.STOP_LATENCY.labels(action=action).observe(self.clock.monotonic() - since)

    async def _settle(self, view: RentalView, action: Action) -> None:
        await settlement.settle_deleted_rental(
            self.kube, self.world, view, action.name, self.clock.now())

    async def _remove_finalizer(self, view: RentalView, action: Action) -> None:
        await self.kube.remove_finalizer(view.namespace, view.name, FINALIZER, view.finalizers)
