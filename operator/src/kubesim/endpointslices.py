"""What kube-controller-manager's EndpointSlice controller makes of a Service and its pods.

Pure: the slice a selector Service should have, given the pods of its namespace. One slice per
Service (the real controller splits at 100 endpoints, which no test here reaches), IPv4, ports
resolved per the Service's targetPort (a name is looked up in the pods' container ports).
"""

from __future__ import annotations

from typing import Any

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
MANAGED_BY = "endpointslice-controller.k8s.io"


def selects(service: dict[str, Any]) -> bool:
    """Services without a selector get no controller-managed slices (users write them)."""
    spec = service.get("spec") or {}
    return bool(spec.get("selector")) and spec.get("type") != "ExternalName"


def _ready(pod: dict[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


def _selected(selector: dict[str, str], labels: dict[str, str]) -> bool:
    # A Service's selector is a plain map: every key equal (no expressions).
    return all(labels.get(key) == value for key, value in selector.items())


def _member(pod: dict[str, Any], selector: dict[str, str]) -> bool:
    status = pod.get("status") or {}
    return (bool(status.get("podIP")) and status.get("phase") not in ("Succeeded", "Failed")
            and _selected(selector, pod["metadata"].get("labels") or {}))


def _target(port: dict[str, Any], pod: dict[str, Any] | None) -> int | None:
    target = port.get("targetPort", port.get("port"))
    if isinstance(target, int):
        return target
    for container in ((pod or {}).get("spec") or {}).get("containers") or []:
        for declared in container.get("ports") or []:
            if declared.get("name") == target:
                return int(declared["containerPort"])
    return None


def _endpoint(pod: dict[str, Any]) -> dict[str, Any]:
    meta, terminating = pod["metadata"], bool(pod["metadata"].get("deletionTimestamp"))
    endpoint: dict[str, Any] = {
        "addresses": [pod["status"]["podIP"]],
        "conditions": {"ready": _ready(pod) and not terminating, "serving": _ready(pod),
                       "terminating": terminating},
        "targetRef": {"kind": "Pod", "namespace": meta.get("namespace"), "name": meta["name"],
                      "uid": meta["uid"]},
    }
    node = (pod.get("spec") or {}).get("nodeName")
    if node:
        endpoint["nodeName"] = node
    return endpoint


def desired(service: dict[str, Any], pods: list[dict[str, Any]]) -> dict[str, Any]:
    """The slice's addressType, endpoints and ports (what the controller keeps in sync)."""
    selector = (service.get("spec") or {}).get("selector") or {}
    members = sorted((p for p in pods if _member(p, selector)),
                     key=lambda p: p["metadata"]["name"])
    ports = []
    for port in (service.get("spec") or {}).get("ports") or []:
        number = _target(port, members[0] if members else None)
        if number is not None:
            ports.append({"name": port.get("name", ""), "port": number,
                          "protocol": port.get("protocol", "TCP")})
    return {"addressType": "IPv4", "endpoints": [_endpoint(p) for p in members],
            "ports": ports if members else None}


def new_slice(service: dict[str, Any], content: dict[str, Any]) -> dict[str, Any]:
    meta = service["metadata"]
    return {
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {
            "generateName": f"{meta['name']}-",
            "labels": {SERVICE_NAME_LABEL: meta["name"], MANAGED_BY_LABEL: MANAGED_BY},
            "ownerReferences": [{"apiVersion": "v1", "kind": "Service", "name": meta["name"],
                                 "uid": meta["uid"], "controller": True,
                                 "blockOwnerDeletion": True}],
        },
        **content,
    }
