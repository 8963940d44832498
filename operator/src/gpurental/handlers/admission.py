"""The validating webhook for GpuRentals, served by kopf's admission server.

Imported (and so registered) only when the operator runs with --webhook-port: kopf refuses to
start with admission handlers but no admission server, and the webhook is optional. The
checks are gpurental.admission's; this handler only feeds them the operator's cache.
"""

from __future__ import annotations

from typing import Any

import kopf

from gpurental.admission import check_rental
from gpurental.constants import GROUP, RENTALS, VERSION

# The webhook's URL path is this id: kopf routes `/<id>` to this handler alone.
HANDLER_ID = "validate-gpurental"


@kopf.on.validate(GROUP, VERSION, RENTALS, id=HANDLER_ID,
                  operations=["CREATE", "UPDATE"])
async def validate_rental(body: kopf.Body, memo: kopf.Memo, **kwargs: Any) -> None:
    operation, old = kwargs.get("operation") or "", kwargs.get("old")
    world = memo.controller.world
    problem = check_rental(operation, dict(body), dict(old) if old else None, world.offers,
                           world.wallets)
    if problem:
        # 422, like a schema violation: the request is well-formed but not acceptable.
        raise kopf.AdmissionError(problem, code=422)
