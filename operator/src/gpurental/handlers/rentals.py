"""Watching GpuRentals."""

from __future__ import annotations

from typing import Any

import kopf

from gpurental.constants import GROUP, RENTALS, VERSION


@kopf.index(GROUP, VERSION, RENTALS)
async def cache_rental(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    memo.controller.rental_seen(dict(body))


@kopf.on.event(GROUP, VERSION, RENTALS)
async def rental_event(event: kopf.RawEvent, body: kopf.Body, memo: kopf.Memo,
                      **_: Any) -> None:
    if event["type"] == "DELETED":
        memo.controller.rental_gone(dict(body))
        return
    memo.controller.rental_changed(dict(body))
