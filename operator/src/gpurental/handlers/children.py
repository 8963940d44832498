"""Watching the pods, volume claims, Secrets, Services and Ingresses the operator owns.

Only objects labelled as managed by this operator are watched (a server-side label selector
set at startup), so a cluster full of other pods costs the operator nothing.
"""

from __future__ import annotations

from typing import Any

import kopf

from gpurental.constants import LABEL_MANAGED_BY, MANAGED_BY

MANAGED = {LABEL_MANAGED_BY: MANAGED_BY}
KINDS = {("", "pods"): "Pod", ("", "persistentvolumeclaims"): "PersistentVolumeClaim",
         ("", "secrets"): "Secret", ("", "services"): "Service",
         ("networking.k8s.io", "ingresses"): "Ingress"}


def _register(group: str, plural: str, kind: str) -> None:
    @kopf.index(group, "v1", plural, labels=MANAGED, id=f"cache_{plural}")
    async def cache(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
        memo.controller.child_seen(kind, dict(body))

    @kopf.on.event(group, "v1", plural, labels=MANAGED, id=f"{plural}_event")
    async def changed(event: kopf.RawEvent, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
        deleted = event["type"] == "DELETED"
        key = memo.controller.child_seen(kind, dict(body), deleted=deleted)
        if key is not None:
            memo.controller.enqueue(key)


for (_group, _plural), _kind in KINDS.items():
    _register(_group, _plural, _kind)
