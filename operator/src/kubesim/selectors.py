"""Label selectors (equality and set-based) and field selectors, parsed once per request."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from .errors import bad_request

Matcher = Callable[[dict[str, Any]], bool]

_SET_RE = re.compile(r"^\s*(!?)\s*([^\s!=<>()]+)\s*(?:(in|notin)\s*\((.*)\))?\s*$")
_EQ_RE = re.compile(r"^\s*([^\s!=]+)\s*(==|=|!=)\s*(.*?)\s*$")
_CMP_RE = re.compile(r"^\s*([^\s!=<>]+)\s*([<>])\s*(-?\d+)\s*$")


def _split_top(text: str) -> list[str]:
    """Split on commas that are not inside a `( ... )` value set."""
    parts: list[str] = []
    cur: list[str] = []
    depth = 0
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return [p for p in parts if p.strip()]


def _label_requirement(term: str) -> Callable[[dict[str, str]], bool]:
    m = _EQ_RE.match(term)
    if m and "(" not in term:
        key, op, val = m.groups()
        if op == "!=":
            return lambda labels: labels.get(key) != val
        return lambda labels: labels.get(key) == val
    m = _CMP_RE.match(term)
    if m:
        key, op, num = m.group(1), m.group(2), int(m.group(3))

        def compare(labels: dict[str, str]) -> bool:
            raw = labels.get(key)
            if raw is None or not raw.lstrip("-").isdigit():
                return False
            return int(raw) > num if op == ">" else int(raw) < num
        return compare
    m = _SET_RE.match(term)
    if not m:
        raise bad_request(f"unable to parse requirement: {term!r}")
    neg, key, op, values = m.groups()
    if op:
        allowed = {v.strip() for v in values.split(",")}
        if op == "in":
            return lambda labels: labels.get(key) in allowed
        return lambda labels: labels.get(key) not in allowed
    if neg:
        return lambda labels: key not in labels
    return lambda labels: key in labels


def label_matcher(selector: str | None) -> Matcher | None:
    """A predicate on whole objects, or None when the selector selects everything."""
    if not selector or not selector.strip():
        return None
    reqs = [_label_requirement(t) for t in _split_top(selector)]

    def match(obj: dict[str, Any]) -> bool:
        labels = (obj.get("metadata") or {}).get("labels") or {}
        return all(r(labels) for r in reqs)
    return match


def field_value(obj: dict[str, Any], path: str) -> str:
    """A field's value as the apiserver's field-label conversion renders it (string)."""
    cur: Any = obj
    for part in path.split("."):
        if not isinstance(cur, dict):
            cur = None
            break
        cur = cur.get(part)
    if cur is None:
        return ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    if path == "source" and isinstance(cur, dict):  # events: source.component
        return str(cur.get("component", ""))
    return str(cur)


def field_matcher(selector: str | None, allowed: tuple[str, ...],
                  custom: bool = False) -> Matcher | None:
    """Parse `a=b,c!=d`; unsupported field labels are a 400 like the real server (worded
    otherwise for custom resources and built-in kinds, as kube-apiserver 1.37 words them)."""
    if not selector or not selector.strip():
        return None
    reqs: list[tuple[str, bool, str]] = []
    for term in _split_top(selector):
        m = _EQ_RE.match(term)
        if not m:
            raise bad_request(f"invalid selector: '{selector}'; can't understand '{term}'")
        key, op, val = m.groups()
        known = ("metadata.name", "metadata.namespace", *allowed)
        if key not in known and custom:
            raise bad_request(f"field label not supported: {key}")
        if key not in known:
            raise bad_request(f'"{key}" is not a known field selector: only '
                              + ", ".join(f'"{k}"' for k in known))
        reqs.append((key, op != "!=", val))

    def match(obj: dict[str, Any]) -> bool:
        return all((field_value(obj, k) == v) == eq for k, eq, v in reqs)
    return match


def combine(*matchers: Matcher | None) -> Matcher | None:
    present = [m for m in matchers if m is not None]
    if not present:
        return None
    if len(present) == 1:
        return present[0]
    return lambda obj: all(m(obj) for m in present)
