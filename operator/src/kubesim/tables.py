"""`Table` responses (meta.k8s.io/v1) as `kubectl get` asks for them.

Custom resources get Name plus the CRD's additionalPrinterColumns (or Name and Age when none
are declared); built-in kinds get their printers' columns (printers.py).
"""

from __future__ import annotations

import re
from typing import Any

from .printers import AGE, BUILTIN, NAME, Column, human_duration, since
from .resources import ResourceType

__all__ = ["human_duration", "jsonpath", "table"]

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
    """apiextensions' cell formatting: dates become ages, strings are stringified."""
    if value is None:
        return None
    if col_type == "date":
        return since(value)
    if col_type == "string" and not isinstance(value, str):
        if isinstance(value, (dict, list)):
            return value
        return str(value).lower() if isinstance(value, bool) else str(value)
    if col_type == "integer" and isinstance(value, (int, float)):
        return int(value)
    return value


def _custom_column(spec: dict[str, Any]) -> Column:
    col_type = spec.get("type", "string")
    definition = {"name": spec["name"], "type": col_type, "format": spec.get("format", ""),
                  "description": spec.get("description", ""), "priority": spec.get("priority", 0)}
    path = spec["jsonPath"]
    return (definition, lambda obj: _cell(jsonpath(obj, path), col_type))


def columns_for(rt: ResourceType) -> list[Column]:
    if rt.custom:
        if rt.printer_columns is None:
            return [NAME, AGE]
        return [NAME] + [_custom_column(c) for c in rt.printer_columns]
    return BUILTIN.get(rt.group_resource, [NAME, AGE])


def _object_field(obj: dict[str, Any], include: str) -> dict[str, Any] | None:
    if include == "None":
        return None
    if include == "Object":
        return obj
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
            "metadata": obj["metadata"]}


def table(rt: ResourceType, objs: list[dict[str, Any]], meta: dict[str, Any],
          include: str = "Metadata", headers: bool = True) -> dict[str, Any]:
    columns = columns_for(rt)
    out: dict[str, Any] = {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": meta}
    if headers:
        out["columnDefinitions"] = [definition for definition, _ in columns]
    rows = []
    for obj in objs:
        row: dict[str, Any] = {"cells": [fn(obj) for _, fn in columns]}
        embedded = _object_field(obj, include)
        if embedded is not None:
            row["object"] = embedded
        rows.append(row)
    out["rows"] = rows
    return out
