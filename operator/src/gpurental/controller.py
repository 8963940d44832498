"""The operator's insides, wired: the cache, the work queues, the reconcilers, the workers.

Owns the feeding of the cache from the watches (each feed method caches an object and queues
the keys it affects) and the lifetime of the work loops: the rentals', the
wallets' (their own queue, so ten thousand rental transitions never delay a budget decision),
the offers', and the clock watch. Everything else is handed the narrow things it uses.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from gpurental import metrics
from gpurental.clock import Clock
from gpurental.context import IdleFindings
from gpurental.events import EventPoster
from gpurental.execute import PlanExecutor
from gpurental.k8s import Kube
from gpurental.observed import Key
from gpurental.offers import OfferReconciler
from gpurental.options import Options
from gpurental.reconciler import RentalReconciler
from gpurental.stops import StopRequests
from gpurental.wallets import WalletReconciler
from gpurental.worker import WorkLoop
from gpurental.workqueue import WorkQueue
from gpurental.world import EchoFilter, World

log = logging.getLogger(__name__)

WALLET_WORKERS = 2  # wallet passes are cheap and rare; two keep one slow write from blocking


def _key(body: dict[str, Any]) -> Key:
    return (body["metadata"]["namespace"], body["metadata"]["name"])


class Controller:
    def __init__(self, kube: Kube, clock: Clock, options: Options,
                 identity: str = "gpurental-operator") -> None:
        self.kube = kube
        self.clock = clock
        self.options = options
        self.world = World()
        self.charges = metrics.ChargeTracker()
        self.stops = StopRequests(clock.monotonic)
        self.events = EventPoster(kube, clock, identity)
        self.echoes = EchoFilter()  # of the operator's own rental writes
        self.idle_findings: IdleFindings = {}
        self.queue: WorkQueue[Key] = WorkQueue(clock.monotonic)
        self.wallet_queue: WorkQueue[Key] = WorkQueue(clock.monotonic)
        self.offer_queue: WorkQueue[str] = WorkQueue(clock.monotonic)
        self.wallets = WalletReconciler(
            self.world, kube, clock, options.metering_interval,
            schedule=self.wallet_queue.add, wake_rentals=self.enqueue)
        self.offers = OfferReconciler(self.world, kube, clock)
        executor = PlanExecutor(kube, self.world, clock, echoes=self.echoes,
                                events=self.events, stops=self.stops, charges=self.charges)
        self.rentals = RentalReconciler(
            self.world, kube, clock, options, executor=executor, stops=self.stops,
            findings=self.idle_findings, schedule=self.queue.add,
            wake_wallet=self.enqueue_wallet)
        self.loops = (
            WorkLoop("rentals", self.queue, self.rentals.urgent_aware,
                     refresh=self.rentals.refresh, workers=options.workers, timed=True),
            WorkLoop("wallets", self.wallet_queue, self.wallets.reconcile,
                     refresh=self.wallets.refresh, workers=WALLET_WORKERS),
            WorkLoop("offers", self.offer_queue, self.offers.reconcile),
        )

    # --- feeding the cache (from the watches) -------------------------------------------

    def rental_seen(self, body: dict[str, Any]) -> None:
        """Cache a rental (also while the cache is still being listed: no pass runs yet)."""
        key = _key(body)
        before = self.world.rental(key)
        view = self.world.put_rental(body)
        if view is not None:
            self.stops.note(before, view)

    def rental_gone(self, body: dict[str, Any]) -> None:
        key = _key(body)
        view = self.world.rental(key)
        if view is not None and view.uid == body["metadata"].get("uid"):
            self.world.drop_rental(key)
            self.echoes.forget(key)
            self.stops.forget(key)
            self.loops[0].forget(key)
            self.charges.forget(view.uid)
            if view.spec.get("wallet"):
                self.enqueue_wallet((view.namespace, str(view.spec["wallet"])))

    def rental_changed(self, body: dict[str, Any]) -> None:
        """A watch event for a rental: queue it, unless it echoes the operator's own write."""
        if not self.echoes.is_echo(body):
            self.enqueue(_key(body))

    def child_seen(self, kind: str, body: dict[str, Any], deleted: bool = False,
                   final: bool = True) -> Key | None:
        """Cache a pod / PVC / Secret / Service / Ingress; returns its rental's key. A deleted
        child's body is `final` when the watch delivered its last state (not when a relisting
        found it gone)."""
        return self.world.put_child(kind, body, deleted=deleted, final=final)

    def node_seen(self, body: dict[str, Any], deleted: bool = False) -> list[Key]:
        """Cache a node; returns the rentals on it when it was lost or came back."""
        return self.world.put_node(body, deleted=deleted)

    def offer_seen(self, body: dict[str, Any], deleted: bool = False) -> list[Key]:
        """Cache an offer; returns the rentals that use it."""
        name = body["metadata"]["name"]
        if deleted:
            self.world.drop_offer(name)
        else:
            self.world.put_offer(name, dict(body))
        return list(self.world.rentals_of_offer(name))

    def offer_changed(self, body: dict[str, Any], deleted: bool) -> None:
        """An offer's watch event: its rentals re-plan, and its own status is kept true."""
        self.enqueue(*self.offer_seen(body, deleted=deleted))
        if not deleted:
            self.offer_queue.add(body["metadata"]["name"])

    def wallet_seen(self, body: dict[str, Any], deleted: bool = False) -> list[Key]:
        """Cache a wallet; returns the rentals it pays for."""
        key = _key(body)
        if deleted:
            self.world.drop_wallet(key)
        else:
            self.world.put_wallet(key, dict(body))
        return list(self.world.rentals_of_wallet(key))

    def wallet_changed(self, body: dict[str, Any], deleted: bool) -> None:
        """A wallet's watch event: its rentals and the wallet itself are looked at again,
        except on the echo of the wallet reconciler's own status write."""
        keys = self.wallet_seen(body, deleted=deleted)
        if deleted:
            self.wallets.echoes.forget(_key(body))
            self.enqueue(*keys)
        elif not self.wallets.echoes.is_echo(dict(body)):
            self.enqueue(*keys)
            self.enqueue_wallet(_key(body))

    # --- queueing --------------------------------------------------------------------------

    def enqueue(self, *keys: Key) -> None:
        """Queue rentals for a pass."""
        for key in keys:
            # A rental with a stop or pause request not yet carried out jumps the queue.
            self.queue.add(key, urgent=key in self.stops)

    def enqueue_wallet(self, key: Key) -> None:
        self.wallet_queue.add(key)

    def enqueue_all(self) -> None:
        """Every rental, wallet and offer looked at again (the cache just synced, or the wall
        clock jumped)."""
        self.enqueue(*self.world.rentals)
        for wallet in list(self.world.wallets):
            self.enqueue_wallet(wallet)
        for offer in list(self.world.offers):
            self.offer_queue.add(offer)

    # --- running -----------------------------------------------------------------------------

    async def run(self) -> None:
        """Every work loop, the Event poster and the clock watch, until cancelled."""
        await asyncio.gather(*(loop.run() for loop in self.loops), self.events.run(),
                             self._watch_clock())

    async def _watch_clock(self, every: float = 0.5) -> None:
        """Re-check every deadline when the wall clock jumps (an NTP step, or a test moving
        the injectable clock): deadlines are queued in monotonic time."""
        skew = self.clock.now().timestamp() - self.clock.monotonic()
        while True:
            await asyncio.sleep(every)
            current = self.clock.now().timestamp() - self.clock.monotonic()
            if abs(current - skew) > 0.5:
                log.info("wall clock moved by %+.1fs; re-checking all deadlines", current - skew)
                self.enqueue_all()
            skew = current
