"""Settling a deleted rental into its wallet, exactly once.

A stopped rental's charge stays visible on the rental itself; once the rental object is deleted
its final charge must live on in the wallet. The debit and the proof that it happened are one
conditional write to the wallet's status (settledCents plus the rental's uid in
`settlements`), so a crash after it, before the finalizer is removed, replays into a no-op.
Entries are pruned once their rental is gone, which keeps the ledger small.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from gpurental import meter
from gpurental.clock import format_ts
from gpurental.constants import WALLETS
from gpurental.k8s import Conflict, Kube
from gpurental.observed import RentalView
from gpurental.world import World

log = logging.getLogger(__name__)
ATTEMPTS = 8


async def settle_deleted_rental(
    kube: Kube, world: World, view: RentalView, wallet: str, now: datetime
) -> None:
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
        world.wallets[(view.namespace, wallet)] = updated
        return
    raise Conflict(f"wallet {view.namespace}/{wallet} kept changing while settling {view.name}")
