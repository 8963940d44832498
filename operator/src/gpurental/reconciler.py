"""One rental's pass: read the cache, ask `lifecycle.plan` what to do, carry it out.

The pass builds the context from the cache (`context.build`), asks the API only for what the
plan says it lacks (when a lost node was last heard from, a provisioning diagnosis, a
vanished pod's end), has the plan executed (`execute.PlanExecutor`: status first, then
actions), and re-adds the rental at its next deadline (`deadlines.rental_delay`). It knows
nothing of queues beyond the two callables it is given: one to schedule itself, one to wake
its wallet.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from gpurental import context, deadlines, lifecycle
from gpurental.clock import Clock, parse_ts
from gpurental.context import IdleFindings
from gpurental.execute import PlanExecutor
from gpurental.k8s import Kube
from gpurental.lifecycle import Context, Plan
from gpurental.observed import Key, NodeLoss, RentalView
from gpurental.options import Options
from gpurental.stops import StopRequests
from gpurental.world import World

Schedule = Callable[[Key, float], None]


class RentalReconciler:
    def __init__(self, world: World, kube: Kube, clock: Clock, options: Options, *,
                 executor: PlanExecutor, stops: StopRequests, findings: IdleFindings,
                 schedule: Schedule, wake_wallet: Callable[[Key], None]) -> None:
        self.world = world
        self.kube = kube
        self.clock = clock
        self.options = options
        self.executor = executor
        self.stops = stops
        self.findings = findings  # shared with the idle watch, which replaces its contents
        self._schedule = schedule
        self._wake_wallet = wake_wallet

    async def urgent_aware(self, key: Key) -> None:
        """A pass whose API calls use the urgent connections while a stop request waits."""
        with self.kube.urgent_calls(key in self.stops):
            await self.reconcile(key)

    async def refresh(self, key: Key) -> None:
        """After a conflict: the server's version replaces the cache's stale one."""
        body = await self.kube.get_rental(*key)
        if body is not None:
            self.world.put_rental(body)

    async def reconcile(self, key: Key) -> None:
        view = self.world.rental(key)
        if view is None:
            return
        cadence = deadlines.Cadence.of(view.uid, self.options.metering_interval)
        ctx = context.build(view, self.world, self.options, self.findings, self.clock.now(),
                            cadence)
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
        await self.executor.execute(view, plan)
        if children.pod is None:
            self.stops.forget(key)
        self._schedule_next(view, plan, ctx, cadence)
        if plan.status.get("phase") != view.status.get("phase") and view.spec.get("wallet"):
            self._wake_wallet((view.namespace, str(view.spec["wallet"])))

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

    async def _diagnose(self, view: RentalView) -> str:
        """The newest warning about the rental's pod or volume, for status.message."""
        children = self.world.children(view.uid)
        names = [c.name for c in (children.pod, children.pvc) if c is not None]
        events = await self.kube.warning_events(view.namespace, names)
        if not events:
            return ""
        latest = events[-1]
        return f"{latest.get('reason', 'Warning')}: {latest.get('message', '')}"

    def _schedule_next(self, view: RentalView, plan: Plan, ctx: Context,
                       cadence: deadlines.Cadence) -> None:
        """Re-add the rental at its next deadline: one timer for all of them."""
        exhausts_at = ctx.wallet.reading.exhausts_at if ctx.wallet else None
        delay = deadlines.rental_delay(plan.status, plan.requeue_after, ctx.prepaid_seconds,
                                       exhausts_at, self.clock.now(), cadence)
        if delay is not None:
            self._schedule(view.key, delay)
