"""The `scale` subresource (autoscaling/v1 Scale) of deployments and of CRDs that declare it."""

from __future__ import annotations

from typing import Any

from .resources import ResourceType

DEPLOYMENT_PATHS = {"specReplicasPath": ".spec.replicas",
                    "statusReplicasPath": ".status.replicas",
                    "labelSelectorPath": ".status.selector"}


def paths(rt: ResourceType) -> dict[str, str]:
    return rt.scale_paths or DEPLOYMENT_PATHS


def _read(obj: Any, path: str) -> Any:
    for part in path.lstrip(".").split("."):
        obj = obj.get(part) if isinstance(obj, dict) else None
    return obj


def _write(obj: dict[str, Any], path: str, value: Any) -> None:
    parts = path.lstrip(".").split(".")
    for part in parts[:-1]:
        obj = obj.setdefault(part, {})
    obj[parts[-1]] = value


def _selector(rt: ResourceType, obj: dict[str, Any]) -> str:
    if rt.group_resource == ("apps", "deployments"):
        labels = (((obj.get("spec") or {}).get("selector") or {}).get("matchLabels") or {})
        return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
    path = paths(rt).get("labelSelectorPath")
    return str(_read(obj, path) or "") if path else ""


def to_scale(rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj["metadata"]
    p = paths(rt)
    status: dict[str, Any] = {"replicas": _read(obj, p.get("statusReplicasPath", "")) or 0}
    selector = _selector(rt, obj)
    if selector:
        status["selector"] = selector
    return {"kind": "Scale", "apiVersion": "autoscaling/v1",
            "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion",
                                              "creationTimestamp") if k in meta},
            "spec": {"replicas": _read(obj, p["specReplicasPath"]) or 0}, "status": status}


def apply_scale(rt: ResourceType, obj: dict[str, Any], scale: dict[str, Any]) -> None:
    """Write the Scale's spec.replicas (and its resourceVersion precondition) into obj."""
    replicas = (scale.get("spec") or {}).get("replicas", 0)
    _write(obj, paths(rt)["specReplicasPath"], replicas)
    rv = (scale.get("metadata") or {}).get("resourceVersion")
    if rv:
        obj["metadata"]["resourceVersion"] = rv
