"""Watching Nodes: a node the node-lifecycle controller declares lost takes its pods' GPUs.

An event handler, not an index: rentals need not wait for the node listing after a restart
(a loss seen a moment later is timed from the node's own heartbeat, so nothing is over-billed),
and an operator whose RBAC lacks nodes keeps working as before, only blind to node loss.
"""

from __future__ import annotations

from typing import Any

import kopf


@kopf.on.event("", "v1", "nodes")
async def node_event(event: kopf.RawEvent, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    keys = memo.controller.node_seen(dict(body), deleted=event["type"] == "DELETED")
    memo.controller.enqueue(*keys)
