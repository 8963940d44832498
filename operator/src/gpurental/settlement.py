"""Settling a deleted rental into its wallet, exactly once.

A stopped rental's charge stays visible on the rental itself; once the rental object is deleted
its final charge must live on in the wallet. The debit and the proof that it happened are one
conditional write to the wallet's status (settledCents plus the rental's uid in
`settlements`), so a crash after it, before the finalizer is removed, replays into a no-op.
Entries are pruned once their rental is gone, which keeps the ledger small.

Invariants: a rental is debited at most once (its uid in the ledger is the proof, read and
written in the same conditional patch); the debit is what the wallet's reading counted for the
rental while it lived (:func:`gpurental.meter.billable_cents`), so the wallet's spend does not
jump when the rental object goes; a wallet that no longer exists has nothing to settle.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, Protocol

from gpurental import meter
from gpurental.clock import format_ts
from gpurental.constants import WALLETS
from gpurental.k8s import Conflict
from gpurental.observed import RentalView
from gpurental.world import World

log = logging.getLogger(__name__)
ATTEMPTS = 8


class WalletStore(Protocol):
    """The two calls settlement makes (:class:`gpurental.k8s.Kube` has them)."""

    async def get_wallet(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The wallet object, or None when it does not exist."""
        ...

    async def patch_status(
        self, plural: str, namespace: str | None, name: str, status_patch: dict[str, Any],
        resource_version: str | None,
    ) -> dict[str, Any]:
        """Merge-patch the status; raise Conflict if ``resource_version`` is stale."""
        ...


async def settle_deleted_rental(
    kube: WalletStore, world: World, view: RentalView, wallet: str, now: datetime
) -> None:
    """Debit the deleted rental's final charge to its wallet, exactly once; retried on a
    Conflict (the wallet changed since it was read), at most ATTEMPTS times."""
    for _ in range(ATTEMPTS):
        body = await kube.get_wallet(view.namespace, wallet)
        if body is None:
            log.info("wallet %s/%s is gone; nothing to settle for %s", view.namespace, wallet,
                     view.name)
            return
        status = body.get("status") or {}
        ledger = list(status.get("settlements") or [])
        if any(entry.get("rentalUid") == view.uid for entry in ledger):
            return
        cents = meter.billable_cents(view.status, now)
        ledger = [e for e in ledger if e.get("rentalUid") in world.rental_keys_by_uid]
        ledger.append({"rentalUid": view.uid, "rental": view.name, "cents": cents,
                       "settledAt": format_ts(now)})
        patch: dict[str, Any] = {
            "settledCents": int(status.get("settledCents") or 0) + cents,
            "settlements": ledger,
        }
        try:
            updated = await kube.patch_status(
                WALLETS, view.namespace, wallet, patch,
                body["metadata"].get("resourceVersion"))
        except Conflict:
            continue
        world.put_wallet((view.namespace, wallet), updated)
        return
    raise Conflict(f"wallet {view.namespace}/{wallet} kept changing while settling {view.name}")
