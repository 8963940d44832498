"""Watching GpuOffers and Wallets: a change re-reconciles every rental that uses them."""

from __future__ import annotations

from typing import Any

import kopf

from gpurental.constants import GROUP, OFFERS, VERSION, WALLETS


@kopf.index(GROUP, VERSION, OFFERS)
async def cache_offer(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    memo.controller.offer_seen(dict(body))


@kopf.on.event(GROUP, VERSION, OFFERS)
async def offer_event(event: kopf.RawEvent, body: kopf.Body, memo: kopf.Memo,
                     **_: Any) -> None:
    keys = memo.controller.offer_seen(dict(body), deleted=event["type"] == "DELETED")
    memo.controller.enqueue(*keys)
    if event["type"] != "DELETED":
        memo.controller.offer_status.enqueue(body["metadata"]["name"])


@kopf.index(GROUP, VERSION, WALLETS)
async def cache_wallet(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    memo.controller.wallet_seen(dict(body))


@kopf.on.event(GROUP, VERSION, WALLETS)
async def wallet_event(event: kopf.RawEvent, body: kopf.Body, memo: kopf.Memo,
                      **_: Any) -> None:
    deleted = event["type"] == "DELETED"
    keys = memo.controller.wallet_seen(dict(body), deleted=deleted)
    meta = body["metadata"]
    key = (meta["namespace"], meta["name"])
    if deleted:
        memo.controller.wallets.echoes.forget(key)
        memo.controller.enqueue(*keys)
    elif not memo.controller.wallets.echoes.is_echo(dict(body)):
        memo.controller.enqueue(*keys)
        memo.controller.wallets.enqueue(key)
