"""Table columns of the built-in kinds, after kube-apiserver's printers (pkg/printers).

Each column is its definition plus a function from the object to the cell kubectl prints.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

Obj = dict[str, Any]
Column = tuple[dict[str, Any], Callable[[Obj], Any]]


def human_duration(seconds: float) -> str:
    """apimachinery's `duration.HumanDuration`."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    m = s // 60
    if m < 10:
        return f"{m}m{s % 60}s" if s % 60 else f"{m}m"
    if m < 180:
        return f"{m}m"
    h = s // 3600
    if h < 8:
        return f"{h}h{m % 60}m" if m % 60 else f"{h}h"
    if h < 48:
        return f"{h}h"
    if h < 192:
        return f"{h // 24}d{h % 24}h" if h % 24 else f"{h // 24}d"
    if h < 24 * 365 * 2:
        return f"{h // 24}d"
    y = h // (24 * 365)
    return f"{y}y{h // 24 % 365}d" if y < 8 else f"{y}y"


def since(value: Any) -> str:
    """A timestamp as the age kubectl shows ("5m", "<unknown>")."""
    if not value:
        return "<unknown>"
    text = str(value).replace("Z", "+00:00")
    try:
        then = datetime.fromisoformat(text)
    except ValueError:
        return "<unknown>"
    if then.tzinfo is None:
        then = then.replace(tzinfo=UTC)
    return human_duration((datetime.now(UTC) - then).total_seconds())


def col(name: str, fn: Callable[[Obj], Any], priority: int = 0, fmt: str = "") -> Column:
    return ({"name": name, "type": "string", "format": fmt, "description": "",
             "priority": priority}, fn)


def _get(obj: Any, *path: str) -> Any:
    for key in path:
        obj = obj.get(key) if isinstance(obj, dict) else None
    return obj


def _none(value: Any) -> str:
    return str(value) if value not in (None, "", []) else "<none>"


NAME = col("Name", lambda o: o["metadata"]["name"], fmt="name")
AGE = col("Age", lambda o: since(o["metadata"].get("creationTimestamp")))


# --- pods ------------------------------------------------------------------------------------

def _pod_ready(pod: Obj) -> str:
    statuses = _get(pod, "status", "containerStatuses") or []
    total = len(_get(pod, "spec", "containers") or [])
    return f"{sum(1 for c in statuses if c.get('ready'))}/{total}"


def _pod_status(pod: Obj) -> str:
    status = pod.get("status") or {}
    reason = status.get("reason") or status.get("phase") or "Pending"
    for c in status.get("containerStatuses") or []:
        state = c.get("state") or {}
        if (state.get("waiting") or {}).get("reason"):
            reason = state["waiting"]["reason"]
        elif (state.get("terminated") or {}).get("reason"):
            reason = state["terminated"]["reason"]
    if pod["metadata"].get("deletionTimestamp"):
        reason = "Terminating"
    return str(reason)


def _pod_restarts(pod: Obj) -> str:
    statuses = _get(pod, "status", "containerStatuses") or []
    return str(sum(c.get("restartCount", 0) for c in statuses))


POD = [NAME, col("Ready", _pod_ready), col("Status", _pod_status),
       col("Restarts", _pod_restarts), AGE,
       col("IP", lambda p: _none(_get(p, "status", "podIP")), 1),
       col("Node", lambda p: _none(_get(p, "spec", "nodeName")), 1),
       col("Nominated Node", lambda p: _none(_get(p, "status", "nominatedNodeName")), 1),
       col("Readiness Gates", lambda p: _none(_get(p, "spec", "readinessGates")), 1)]


# --- events ----------------------------------------------------------------------------------

def _event_last_seen(ev: Obj) -> str:
    series = ev.get("series") or {}
    when = (series.get("lastObservedTime") or ev.get("lastTimestamp") or ev.get("eventTime")
            or ev.get("deprecatedLastTimestamp") or ev["metadata"].get("creationTimestamp"))
    return since(when)


def _event_object(ev: Obj) -> str:
    ref = ev.get("involvedObject") or ev.get("regarding") or {}
    return f"{str(ref.get('kind', '')).lower()}/{ref.get('name', '')}"


def _event_source(ev: Obj) -> str:
    source = ev.get("source") or {}
    component = source.get("component") or ev.get("reportingComponent") or ev.get(
        "reportingController") or ""
    host = source.get("host")
    return f"{component}, {host}" if host else str(component)


EVENT = [col("Last Seen", _event_last_seen), col("Type", lambda e: e.get("type", "")),
         col("Reason", lambda e: e.get("reason", "")), col("Object", _event_object),
         col("Subobject", lambda e: (e.get("involvedObject") or {}).get("fieldPath", ""), 1),
         col("Source", _event_source, 1),
         col("Message", lambda e: e.get("message") or e.get("note") or ""),
         col("First Seen", lambda e: since(e.get("firstTimestamp") or e.get("eventTime")), 1),
         col("Count", lambda e: str(e.get("count") or (e.get("series") or {}).get("count")
                                    or 1), 1),
         col("Name", lambda e: e["metadata"]["name"], 1)]


# --- the others ------------------------------------------------------------------------------

def _node_status(node: Obj) -> str:
    conditions = _get(node, "status", "conditions") or []
    ready = next((c.get("status") for c in conditions if c.get("type") == "Ready"), None)
    status = "Ready" if ready == "True" else "NotReady" if ready == "False" else "Unknown"
    if _get(node, "spec", "unschedulable"):
        status += ",SchedulingDisabled"
    return status


def _node_roles(node: Obj) -> str:
    labels = node["metadata"].get("labels") or {}
    roles = sorted(k.split("/", 1)[1] for k in labels
                   if k.startswith("node-role.kubernetes.io/"))
    return ",".join(roles) or "<none>"


def _ports(svc: Obj) -> str:
    ports = _get(svc, "spec", "ports") or []
    return ",".join(f"{p.get('port')}/{p.get('protocol', 'TCP')}" for p in ports) or "<none>"


def _access_modes(modes: Any) -> str:
    short = {"ReadWriteOnce": "RWO", "ReadOnlyMany": "ROX", "ReadWriteMany": "RWX",
             "ReadWriteOncePod": "RWOP"}
    return ",".join(short.get(m, m) for m in modes or [])


def _claim(pv: Obj) -> str:
    ref = _get(pv, "spec", "claimRef") or {}
    return f"{ref.get('namespace')}/{ref.get('name')}" if ref.get("name") else ""


def _created_at(obj: Obj) -> str:
    return str(obj["metadata"].get("creationTimestamp", ""))


def _deploy_ready(d: Obj) -> str:
    return f"{_get(d, 'status', 'readyReplicas') or 0}/{_get(d, 'spec', 'replicas') or 0}"


BUILTIN: dict[tuple[str, str], list[Column]] = {
    ("", "pods"): POD,
    ("", "events"): EVENT,
    ("events.k8s.io", "events"): EVENT,
    ("", "namespaces"): [NAME, col("Status", lambda n: _get(n, "status", "phase") or ""), AGE],
    ("", "nodes"): [NAME, col("Status", _node_status), col("Roles", _node_roles), AGE,
                    col("Version", lambda n: _get(n, "status", "nodeInfo",
                                                  "kubeletVersion") or "")],
    ("", "persistentvolumeclaims"): [
        NAME, col("Status", lambda c: _get(c, "status", "phase") or ""),
        col("Volume", lambda c: _get(c, "spec", "volumeName") or ""),
        col("Capacity", lambda c: (_get(c, "status", "capacity") or {}).get("storage", "")),
        col("Access Modes", lambda c: _access_modes(_get(c, "status", "accessModes"))),
        col("StorageClass", lambda c: _get(c, "spec", "storageClassName") or "<unset>"),
        col("VolumeAttributesClass", lambda c: _get(c, "spec", "volumeAttributesClassName")
            or "<unset>"),
        AGE, col("VolumeMode", lambda c: _get(c, "spec", "volumeMode") or "", 1)],
    ("", "persistentvolumes"): [
        NAME, col("Capacity", lambda v: (_get(v, "spec", "capacity") or {}).get("storage", "")),
        col("Access Modes", lambda v: _access_modes(_get(v, "spec", "accessModes"))),
        col("Reclaim Policy", lambda v: _get(v, "spec", "persistentVolumeReclaimPolicy") or ""),
        col("Status", lambda v: _get(v, "status", "phase") or ""),
        col("Claim", _claim), col("StorageClass", lambda v: _get(v, "spec", "storageClassName")
                                  or ""),
        col("VolumeAttributesClass", lambda v: _get(v, "spec", "volumeAttributesClassName")
            or "<unset>"),
        col("Reason", lambda v: _get(v, "status", "reason") or ""), AGE,
        col("VolumeMode", lambda v: _get(v, "spec", "volumeMode") or "", 1)],
    ("storage.k8s.io", "storageclasses"): [
        NAME, col("Provisioner", lambda c: c.get("provisioner", "")),
        col("ReclaimPolicy", lambda c: c.get("reclaimPolicy", "Delete")),
        col("VolumeBindingMode", lambda c: c.get("volumeBindingMode", "Immediate")),
        col("AllowVolumeExpansion", lambda c: str(bool(c.get("allowVolumeExpansion"))).lower()),
        AGE],
    ("", "secrets"): [NAME, col("Type", lambda s: s.get("type", "")),
                      col("Data", lambda s: len(s.get("data") or {})), AGE],
    ("", "configmaps"): [NAME, col("Data", lambda c: len(c.get("data") or {}) +
                                   len(c.get("binaryData") or {})), AGE],
    ("", "services"): [NAME, col("Type", lambda s: _get(s, "spec", "type") or ""),
                       col("Cluster-IP", lambda s: _get(s, "spec", "clusterIP") or "<none>"),
                       col("External-IP", lambda s: "<none>"), col("Port(s)", _ports), AGE],
    ("", "serviceaccounts"): [NAME, col("Secrets", lambda s: len(s.get("secrets") or [])), AGE],
    ("apps", "deployments"): [
        NAME, col("Ready", _deploy_ready),
        col("Up-to-date", lambda d: _get(d, "status", "updatedReplicas") or 0),
        col("Available", lambda d: _get(d, "status", "availableReplicas") or 0), AGE],
    ("coordination.k8s.io", "leases"): [
        NAME, col("Holder", lambda lease: _get(lease, "spec", "holderIdentity") or ""), AGE],
    ("apiextensions.k8s.io", "customresourcedefinitions"): [
        NAME, col("Created At", _created_at)],
    ("rbac.authorization.k8s.io", "roles"): [NAME, col("Created At", _created_at)],
    ("rbac.authorization.k8s.io", "clusterroles"): [NAME, col("Created At", _created_at)],
    ("rbac.authorization.k8s.io", "rolebindings"): [
        NAME, col("Role", lambda b: f"{_get(b, 'roleRef', 'kind')}/{_get(b, 'roleRef', 'name')}"),
        AGE],
    ("rbac.authorization.k8s.io", "clusterrolebindings"): [
        NAME, col("Role", lambda b: f"{_get(b, 'roleRef', 'kind')}/{_get(b, 'roleRef', 'name')}"),
        AGE],
}
