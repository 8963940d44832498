"""`Table` responses (meta.k8s.io/v1) as `kubectl get` asks for them."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from .resources import ResourceType

NAME_COLUMN = {"name": "Name", "type": "string", "format": "name", "priority": 0,
               "description": "Name must be unique within a namespace. More info: "
                              "https://kubernetes.io/docs/concepts/overview/working-with-objects/"
                              "names#names"}
AGE_COLUMN = {"name": "Age", "type": "date", "format": "", "priority": 0,
              "description": "CreationTimestamp is a timestamp representing the server time "
                             "when this object was created."}

# Built-in kinds: (column, jsonPath) pairs after Name, close to the real server's printers.
_BUILTIN: dict[tuple[str, str], list[tuple[dict[str, Any], str]]] = {
    ("", "pods"): [
        ({"name": "Ready", "type": "string"}, "@ready"),
        ({"name": "Status", "type": "string"}, "@podstatus"),
        ({"name": "Restarts", "type": "string"}, "@restarts"),
        ({"name": "Age", "type": "string"}, ".metadata.creationTimestamp"),
        ({"name": "IP", "type": "string", "priority": 1}, ".status.podIP"),
        ({"name": "Node", "type": "string", "priority": 1}, ".spec.nodeName"),
    ],
    ("", "namespaces"): [
        ({"name": "Status", "type": "string"}, ".status.phase"),
        ({"name": "Age", "type": "string"}, ".metadata.creationTimestamp"),
    ],
    ("", "nodes"): [
        ({"name": "Status", "type": "string"}, "@nodestatus"),
        ({"name": "Age", "type": "string"}, ".metadata.creationTimestamp"),
    ],
    ("", "persistentvolumeclaims"): [
        ({"name": "Status", "type": "string"}, ".status.phase"),
        ({"name": "Volume", "type": "string"}, ".spec.volumeName"),
        ({"name": "Age", "type": "string"}, ".metadata.creationTimestamp"),
    ],
    ("", "events"): [
        ({"name": "Type", "type": "string"}, ".type"),
        ({"name": "Reason", "type": "string"}, ".reason"),
        ({"name": "Message", "type": "string"}, ".message"),
    ],
    ("apps", "deployments"): [
        ({"name": "Ready", "type": "string"}, "@deployready"),
        ({"name": "Age", "type": "string"}, ".metadata.creationTimestamp"),
    ],
}


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


def _age(value: Any) -> str:
    try:
        then = datetime.strptime(str(value), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return "<unknown>"
    return human_duration((datetime.now(UTC) - then).total_seconds())


_FILTER_RE = re.compile(r"^\[\?\(@\.([\w.]+)\s*==\s*['\"]([^'\"]*)['\"]\)\]")


def jsonpath(obj: Any, path: str) -> Any:
    """The subset of JSONPath printer columns use: `.a.b`, `[0]`, `[?(@.type=="Ready")]`."""
    path = path.strip()
    if path.startswith("{") and path.endswith("}"):
        path = path[1:-1]
    cur = obj
    while path and cur is not None:
        if path.startswith("."):
            m = re.match(r"^\.([\w\-/]+)", path)
            if not m:
                return None
            cur = cur.get(m.group(1)) if isinstance(cur, dict) else None
            path = path[m.end():]
        elif (f := _FILTER_RE.match(path)) is not None:
            key, want = f.group(1), f.group(2)
            cur = next((i for i in cur or [] if isinstance(i, dict)
                        and str(jsonpath(i, "." + key)) == want), None)
            path = path[f.end():]
        elif (m2 := re.match(r"^\[(\d+)\]", path)) is not None:
            idx = int(m2.group(1))
            cur = cur[idx] if isinstance(cur, list) and idx < len(cur) else None
            path = path[m2.end():]
        else:
            return None
    return cur


def _cell(value: Any, col_type: str) -> Any:
    if value is None:
        return None
    if col_type == "date":
        return _age(value)
    if col_type == "string" and not isinstance(value, str):
        return value if isinstance(value, (dict, list)) else (
            str(value).lower() if isinstance(value, bool) else str(value))
    if col_type == "integer" and isinstance(value, (int, float)):
        return int(value)
    return value


def _special(obj: dict[str, Any], what: str) -> Any:
    status = obj.get("status") or {}
    if what == "@ready":
        cs = status.get("containerStatuses") or []
        total = len((obj.get("spec") or {}).get("containers") or [])
        return f"{sum(1 for c in cs if c.get('ready'))}/{total}"
    if what == "@podstatus":
        if obj["metadata"].get("deletionTimestamp"):
            return "Terminating"
        for c in status.get("containerStatuses") or []:
            waiting = (c.get("state") or {}).get("waiting")
            if waiting and waiting.get("reason"):
                return waiting["reason"]
        return status.get("reason") or status.get("phase") or "Pending"
    if what == "@restarts":
        return str(sum(c.get("restartCount", 0) for c in status.get("containerStatuses") or []))
    if what == "@nodestatus":
        ready = jsonpath(obj, '.status.conditions[?(@.type=="Ready")].status')
        return "Ready" if ready == "True" else "NotReady"
    if what == "@deployready":
        return f"{status.get('readyReplicas', 0)}/{(obj.get('spec') or {}).get('replicas', 1)}"
    return None


def columns_for(rt: ResourceType) -> list[tuple[dict[str, Any], str]]:
    """Column definitions (after Name) with the JSONPath that fills each."""
    if rt.custom:
        if rt.printer_columns is None:
            return [(AGE_COLUMN, ".metadata.creationTimestamp")]
        return [({"name": c["name"], "type": c.get("type", "string"),
                  "format": c.get("format", ""), "description": c.get("description", ""),
                  "priority": c.get("priority", 0)}, c["jsonPath"])
                for c in rt.printer_columns]
    cols = _BUILTIN.get(rt.group_resource)
    if cols is None:
        return [(AGE_COLUMN, ".metadata.creationTimestamp")]
    out = []
    for col, path in cols:
        full = {"format": "", "description": "", "priority": 0, **col}
        if path == ".metadata.creationTimestamp":
            full["type"] = "date"
        out.append((full, path))
    return out


def _object_field(obj: dict[str, Any], include: str) -> dict[str, Any] | None:
    if include == "None":
        return None
    if include == "Object":
        return obj
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
            "metadata": obj["metadata"]}


def row(rt: ResourceType, obj: dict[str, Any], include: str = "Metadata") -> dict[str, Any]:
    cells: list[Any] = [obj["metadata"]["name"]]
    for col, path in columns_for(rt):
        value = _special(obj, path) if path.startswith("@") else jsonpath(obj, path)
        cells.append(_cell(value, col["type"]))
    out: dict[str, Any] = {"cells": cells}
    embedded = _object_field(obj, include)
    if embedded is not None:
        out["object"] = embedded
    return out


def table(rt: ResourceType, objs: list[dict[str, Any]], meta: dict[str, Any],
          include: str = "Metadata", headers: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": meta}
    if headers:
        out["columnDefinitions"] = [NAME_COLUMN] + [c for c, _ in columns_for(rt)]
    out["rows"] = [row(rt, o, include) for o in objs]
    return out
