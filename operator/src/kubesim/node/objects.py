"""What every part of the node simulation shares: the JSON object type, constants, small helpers."""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime
from typing import Any

Obj = dict[str, Any]

GPU_RESOURCE = "nvidia.com/gpu"
DEFAULT_SCHEDULER = "default-scheduler"
TERMINAL_PHASES = frozenset({"Succeeded", "Failed"})
KUBELET_VERSION = "v1.37.0"


def rfc3339(ts: float | None = None) -> str:
    """Whole-second RFC 3339 UTC time, the format kubelet writes (``2026-06-07T08:42:11Z``)."""
    moment = datetime.fromtimestamp(time.time() if ts is None else ts, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def object_key(obj: Obj) -> str:
    meta = obj.get("metadata") or {}
    namespace = meta.get("namespace")
    return f"{namespace}/{meta.get('name')}" if namespace else str(meta.get("name"))


def pod_path(pod: Obj, sub: str = "") -> str:
    meta = pod["metadata"]
    return f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}{sub}"


MERGE_PATCH = "application/merge-patch+json"
# A kubelet patches pod status strategically (conditions merge by type), so a condition it
# does not own - the scheduler's DisruptionTarget on a preemption victim - survives its writes.
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"


def with_condition(conditions: list[Obj], new: Obj) -> list[Obj]:
    """Replace the condition of ``new['type']``, keeping lastTransitionTime if status is same."""
    out = []
    for cond in conditions:
        if cond.get("type") == new["type"]:
            if cond.get("status") == new["status"] and cond.get("lastTransitionTime"):
                new = {**new, "lastTransitionTime": cond["lastTransitionTime"]}
            continue
        out.append(cond)
    out.append(new)
    return out


def sha256_hex(text: str) -> str:
    """A stable fake identifier (container and image IDs, machine IDs) derived from ``text``."""
    return hashlib.sha256(text.encode()).hexdigest()
