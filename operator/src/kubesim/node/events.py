"""core/v1 Events, recorded the way kubelet and kube-scheduler record them."""

from __future__ import annotations

import itertools
import time

from .background import Background
from .client import KubeClient
from .objects import Obj, rfc3339


class EventRecorder:
    """Posts core/v1 Events the way kubelet and kube-scheduler record them."""

    def __init__(self, client: KubeClient, background: Background, *,
                 warnings_only: bool = False):
        self.client = client
        self.background = background
        self.warnings_only = warnings_only  # benchmarks: skip the routine Normal events
        self._seq = itertools.count()

    def emit(self, obj: Obj, kind: str, reason: str, message: str, *, component: str,
             host: str | None = None, field_path: str | None = None) -> None:
        if self.warnings_only and kind == "Normal":
            return
        meta = obj.get("metadata") or {}
        namespace = meta.get("namespace") or "default"
        now = rfc3339()
        involved: Obj = {"apiVersion": obj.get("apiVersion", "v1"), "kind": obj.get("kind", "Pod"),
                         "name": meta.get("name"), "namespace": meta.get("namespace"),
                         "uid": meta.get("uid"), "resourceVersion": meta.get("resourceVersion")}
        if field_path:
            involved["fieldPath"] = field_path
        # Real event names are "<object>.<hex nanoseconds>"; a counter keeps them unique.
        name = f"{meta.get('name')}.{time.time_ns() + next(self._seq):x}"
        event: Obj = {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": name, "namespace": namespace},
            "involvedObject": {k: v for k, v in involved.items() if v is not None},
            "reason": reason, "message": message, "type": kind,
            "source": {"component": component, **({"host": host} if host else {})},
            "firstTimestamp": now, "lastTimestamp": now, "count": 1,
            "reportingComponent": component, "reportingInstance": host or component,
        }
        path = f"/api/v1/namespaces/{namespace}/events"
        self.background.spawn(self.client.request("POST", path, event), f"event {reason}")
