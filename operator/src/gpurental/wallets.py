"""Keeping each Wallet's status true: spent, remaining, burn, exhausted, and when it runs out.

One small work queue of wallet keys, separate from the rentals' so a burst of ten thousand rental
transitions never delays a budget decision. A wallet is re-read at its predicted exhaustion
moment and on a heartbeat while it burns; when it runs out or is topped up, every rental it pays
for is re-queued (those rentals also schedule the exhaustion moment themselves, so a lagging
wallet write can never delay a budget pause).
"""

from __future__ import annotations

from collections.abc import Callable

from gpurental import context, deadlines, money
from gpurental.clock import Clock
from gpurental.constants import WALLETS
from gpurental.k8s import Kube
from gpurental.models import status_merge_patch
from gpurental.observed import Key
from gpurental.world import EchoFilter, World


class WalletReconciler:
    def __init__(self, world: World, kube: Kube, clock: Clock, metering_interval: float, *,
                 schedule: Callable[[Key, float], None],
                 wake_rentals: Callable[..., None]) -> None:
        self.world = world
        self.kube = kube
        self.clock = clock
        self.interval = metering_interval
        self._schedule = schedule
        self._wake_rentals = wake_rentals
        # Its own status writes' echoes: re-queueing every rental a wallet pays for on each
        # heartbeat write would double their passes; the flip to or from exhausted re-queues
        # them explicitly instead.
        self.echoes = EchoFilter()

    async def refresh(self, key: Key) -> None:
        """After a conflict: the server's version replaces the cache's stale one."""
        body = await self.kube.get_wallet(*key)
        if body is None:
            self.world.drop_wallet(key)
        else:
            self.world.put_wallet(key, body)

    async def reconcile(self, key: Key) -> None:
        now = self.clock.now()
        body = self.world.wallets.get(key)
        wallet = context.wallet_of(self.world, key[0], key[1], now)
        if body is None or wallet is None:
            return
        reading = wallet.reading
        old = dict(body.get("status") or {})
        generation = int(body["metadata"].get("generation") or 0)
        new = money.wallet_status(old, reading, generation, now)
        if (money.wallet_changed(old, new)
                or deadlines.wallet_spent_due(old, reading, now, self.interval)):
            updated = await self.kube.patch_status(
                WALLETS, key[0], key[1], status_merge_patch(old, new),
                body["metadata"].get("resourceVersion"))
            self.world.put_wallet(key, updated)
            self.echoes.wrote(key, updated)
        if bool(old.get("exhausted")) != reading.exhausted:
            self._wake_rentals(*self.world.rentals_of_wallet(key))
        delay = deadlines.wallet_delay(reading, now, self.interval)
        if delay is not None:
            self._schedule(key, delay)
