"""Keeping each Wallet's status true: spent, remaining, burn, exhausted, and when it runs out.

One small work queue of wallet keys, separate from the rentals' so a burst of ten thousand rental
transitions never delays a budget decision. A wallet is re-read at its predicted exhaustion
moment and on a heartbeat while it burns; when it runs out or is topped up, every rental it pays
for is re-queued (those rentals also schedule the exhaustion moment themselves, so a lagging
wallet write can never delay a budget pause).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from gpurental import money
from gpurental.clock import parse_ts
from gpurental.constants import WALLETS
from gpurental.k8s import Conflict
from gpurental.models import status_merge_patch
from gpurental.workqueue import WorkQueue
from gpurental.world import EchoFilter, Key

if TYPE_CHECKING:
    from gpurental.reconciler import Controller

log = logging.getLogger(__name__)


class WalletReconciler:
    def __init__(self, controller: Controller, workers: int = 2) -> None:
        self.controller = controller
        self.queue: WorkQueue[Key] = WorkQueue(controller.clock.monotonic)
        self.workers = workers
        # Its own status writes' echoes: re-queueing every rental a wallet pays for on each
        # heartbeat write would double their passes; the flip to or from exhausted re-queues
        # them explicitly instead.
        self.echoes = EchoFilter()

    def enqueue(self, key: Key, delay: float = 0.0) -> None:
        self.queue.add(key, delay)

    async def run_workers(self) -> None:
        await asyncio.gather(*(self._worker() for _ in range(self.workers)))

    async def _worker(self) -> None:
        while True:
            key = await self.queue.get()
            try:
                await self.reconcile(key)
            except Conflict:
                self.queue.add(key, 0.05)
            except Exception as exc:
                log.warning("wallet %s/%s: %s; retrying", *key, exc)
                self.queue.add(key, 2.0)
            finally:
                self.queue.done(key)

    async def reconcile(self, key: Key) -> None:
        ctl = self.controller
        now = ctl.clock.now()
        body = ctl.world.wallets.get(key)
        state = ctl.wallet(key[0], key[1], now)
        if body is None or state is None:
            return
        old = dict(body.get("status") or {})
        generation = int(body["metadata"].get("generation") or 0)
        new = money.wallet_status(old, state.reading, generation, now)
        if money.wallet_changed(old, new) or self._spent_due(old, state.reading):
            updated = await ctl.kube.patch_status(
                WALLETS, key[0], key[1], status_merge_patch(old, new),
                body["metadata"].get("resourceVersion"))
            ctl.world.wallets[key] = updated
            self.echoes.wrote(key, updated)
        if bool(old.get("exhausted")) != state.reading.exhausted:
            ctl.enqueue(*ctl.world.rentals_of_wallet(key))
        self._schedule(key, state.reading)

    def _spent_due(self, old: dict[str, object], reading: money.WalletReading) -> bool:
        """Spent moved. While meters tick that is written once per metering interval; with
        nothing accruing it was a settlement or a transition, written at once."""
        last = old.get("lastUpdatedAt")
        if old.get("spentCents") == reading.spent_cents:
            return False
        if reading.burn_cents_per_hour == 0 or not isinstance(last, str):
            return True
        age = (self.controller.clock.now() - parse_ts(last)).total_seconds()
        return age >= self.controller.settings.metering_interval - 0.5

    def _schedule(self, key: Key, reading: money.WalletReading) -> None:
        delays = []
        if reading.burn_cents_per_hour > 0:
            delays.append(self.controller.settings.metering_interval)
        # An exhausted wallet's predicted moment is "now": scheduling it would re-run this
        # wallet in a busy loop. Its rentals were re-queued when it flipped to exhausted.
        if reading.exhausts_at is not None and not reading.exhausted:
            delays.append((reading.exhausts_at - self.controller.clock.now()).total_seconds())
        if delays:
            self.queue.add(key, max(min(delays), 0.0))

