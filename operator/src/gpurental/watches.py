"""What the operator watches, and what each watch event feeds into the controller.

Two stages, as client-go's "wait for caches to sync" (and kopf's index handlers before it):
until every kind a pass reads has been listed, events only fill the cache; then every rental,
wallet and offer is queued once and from then on each event also queues what it affects.
That makes a restart safe: a rental is never reconciled before its pod, claim and Secret have
been listed, which would look like a pod lost behind the operator's back, and no wallet pass
sees half of its rentals.

Nodes are watched too but are not waited for: a loss seen a moment later is timed from the
node's own heartbeat, so nothing is over-billed, and an operator whose RBAC lacks nodes keeps
working, only blind to node loss (its informer retries quietly).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from gpurental.constants import (
    GROUP,
    LABEL_MANAGED_BY,
    MANAGED_BY,
    OFFERS,
    RENTALS,
    VERSION,
    WALLETS,
)
from gpurental.controller import Controller
from gpurental.informers import DELETED, VANISHED, Informer, Resource, Sink
from gpurental.k8s import Kube

log = logging.getLogger(__name__)

# Only the children this operator labels are watched (a server-side label selector), so a
# cluster full of other pods costs the operator nothing.
MANAGED = f"{LABEL_MANAGED_BY}={MANAGED_BY}"
RENTAL = Resource(GROUP, VERSION, RENTALS, "GpuRental")
WALLET = Resource(GROUP, VERSION, WALLETS, "Wallet")
OFFER = Resource(GROUP, VERSION, OFFERS, "GpuOffer", namespaced=False)
NODE = Resource("", "v1", "nodes", "Node", namespaced=False)
CHILDREN = (
    Resource("", "v1", "pods", "Pod", label_selector=MANAGED),
    Resource("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim",
             label_selector=MANAGED),
    Resource("", "v1", "secrets", "Secret", label_selector=MANAGED),
    Resource("", "v1", "services", "Service", label_selector=MANAGED),
    Resource("networking.k8s.io", "v1", "ingresses", "Ingress", label_selector=MANAGED),
)
NAMESPACED = (RENTAL, WALLET, *CHILDREN)


class Watches:
    """Every informer the operator runs, and the barrier before any pass may start."""

    def __init__(self, kube: Kube, controller: Controller,
                 namespaces: tuple[str, ...] = ()) -> None:
        self.controller = controller
        self.synced = asyncio.Event()  # every kind a pass reads is listed
        scopes: tuple[str | None, ...] = namespaces or (None,)
        gated = [Informer(kube, resource, scope, self._sink(resource))
                 for resource in NAMESPACED for scope in scopes]
        gated.append(Informer(kube, OFFER, None, self._sink(OFFER)))
        self._gated = gated
        self._nodes = Informer(kube, NODE, None, self._sink(NODE))

    async def run(self) -> None:
        """Start every stream; once the gated ones are listed, queue everything once."""
        for informer in (*self._gated, self._nodes):
            informer.start()
        await asyncio.gather(*(informer.synced.wait() for informer in self._gated))
        self.synced.set()
        world = self.controller.world
        log.info("cache synced: %d rentals, %d wallets, %d offers", len(world.rentals),
                 len(world.wallets), len(world.offers))
        self.controller.enqueue_all()

    async def close(self) -> None:
        await asyncio.gather(*(informer.close() for informer in (*self._gated, self._nodes)))

    def _sink(self, resource: Resource) -> Sink:
        controller = self.controller
        feeds: dict[str, Sink] = {
            "GpuRental": self._rental, "Wallet": self._wallet, "GpuOffer": self._offer,
            "Node": self._node,
        }
        if resource.kind in feeds:
            return feeds[resource.kind]
        kind = resource.kind

        def child(event: str, body: dict[str, Any]) -> None:
            key = controller.child_seen(kind, body, deleted=event in (DELETED, VANISHED),
                                        final=event == DELETED)
            if key is not None and self.synced.is_set():
                controller.enqueue(key)
        return child

    def _rental(self, event: str, body: dict[str, Any]) -> None:
        if event in (DELETED, VANISHED):
            self.controller.rental_gone(body)
            return
        self.controller.rental_seen(body)
        if self.synced.is_set():
            self.controller.rental_changed(body)

    def _wallet(self, event: str, body: dict[str, Any]) -> None:
        self._catalog(event, body, self.controller.wallet_changed, self.controller.wallet_seen)

    def _offer(self, event: str, body: dict[str, Any]) -> None:
        self._catalog(event, body, self.controller.offer_changed, self.controller.offer_seen)

    def _catalog(self, event: str, body: dict[str, Any], changed: Callable[..., object],
                 seen: Callable[..., object]) -> None:
        """A wallet or an offer: cached while listing, then also what it affects queued."""
        feed = changed if self.synced.is_set() else seen
        feed(body, deleted=event in (DELETED, VANISHED))

    def _node(self, event: str, body: dict[str, Any]) -> None:
        keys = self.controller.node_seen(body, deleted=event in (DELETED, VANISHED))
        if self.synced.is_set():
            self.controller.enqueue(*keys)

