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
    memo.controller.offer_changed(dict(body), deleted=event["type"] == "DELETED")


@kopf.index(GROUP, VERSION, WALLETS)
async def cache_wallet(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    memo.controller.wallet_seen(dict(body))


@kopf.on.event(GROUP, VERSION, WALLETS)
async def wallet_event(event: kopf.RawEvent, body: kopf.Body, memo: kopf.Memo,
                      **_: Any) -> None:
    memo.controller.wallet_changed(dict(body), deleted=event["type"] == "DELETED")
