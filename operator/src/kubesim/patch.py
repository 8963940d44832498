"""Patch application: JSON merge patch, JSON patch (RFC 6902) and strategic merge patch."""

from __future__ import annotations

import copy
from typing import Any

from .errors import ApiError

JSON_PATCH = "application/json-patch+json"
MERGE = "application/merge-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
APPLY = "application/apply-patch+yaml"  # server-side apply, treated as a merge patch


def patch_type(content_type: str, custom: bool) -> str:
    """The patch type named by Content-Type; 415 for others (and SMP on custom resources)."""
    kind = content_type.split(";")[0].strip()
    accepted = [JSON_PATCH, MERGE, APPLY] if custom else [JSON_PATCH, MERGE, STRATEGIC, APPLY]
    if kind not in accepted:
        raise ApiError(415, "UnsupportedMediaType",
                       "the body of the request was in an unknown format - accepted media "
                       f"types include: {', '.join(accepted)}", {})
    return kind


def apply(kind: str, current: dict[str, Any], body: Any) -> dict[str, Any]:
    """The patched object; anything that is not an object with metadata is a 400."""
    if kind == JSON_PATCH:
        patched = json_patch(current, body)
    elif kind == STRATEGIC:
        patched = strategic_merge(current, body)
    elif isinstance(body, dict):
        patched = merge_patch(current, body)
    else:
        raise PatchError("the body of the request was in an unknown format", 400)
    if not isinstance(patched, dict) or not isinstance(patched.get("metadata"), dict):
        raise PatchError("the patched object is not a valid object", 400)
    return patched


class PatchError(ApiError):
    """A patch that cannot be applied: 422 like the apiserver answers failed JSON patches."""

    def __init__(self, message: str, code: int = 422) -> None:
        super().__init__(code, "Invalid" if code == 422 else "BadRequest", message, {})


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge recursively, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


# --- JSON patch -------------------------------------------------------------------------------

def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f"invalid JSON pointer: {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _index(container: list[Any], token: str, allow_end: bool) -> int:
    if token == "-" and allow_end:
        return len(container)
    if not token.isdigit():
        raise PatchError(f"invalid array index: {token!r}")
    idx = int(token)
    if idx > len(container) or (idx == len(container) and not allow_end):
        raise PatchError(f"array index out of bounds: {idx}")
    return idx


def _parent(doc: Any, tokens: list[str], path: str) -> Any:
    cur = doc
    for tok in tokens[:-1]:
        if isinstance(cur, dict) and tok in cur:
            cur = cur[tok]
        elif isinstance(cur, list):
            cur = cur[_index(cur, tok, False)]
        else:
            raise PatchError(f"doc is missing path: {path!r}: missing value")
    return cur


def _get(doc: Any, path: str) -> Any:
    cur = doc
    for tok in _pointer(path):
        if isinstance(cur, dict) and tok in cur:
            cur = cur[tok]
        elif isinstance(cur, list):
            cur = cur[_index(cur, tok, False)]
        else:
            raise PatchError(f"doc is missing path: {path!r}: missing value")
    return cur


def _add(doc: Any, path: str, value: Any) -> Any:
    tokens = _pointer(path)
    if not tokens:
        return value
    parent = _parent(doc, tokens, path)
    if isinstance(parent, dict):
        parent[tokens[-1]] = value
    elif isinstance(parent, list):
        parent.insert(_index(parent, tokens[-1], True), value)
    else:
        raise PatchError(f"doc is missing path: {path!r}: missing value")
    return doc


def _remove(doc: Any, path: str) -> Any:
    tokens = _pointer(path)
    parent = _parent(doc, tokens, path)
    if isinstance(parent, dict) and tokens[-1] in parent:
        del parent[tokens[-1]]
    elif isinstance(parent, list):
        del parent[_index(parent, tokens[-1], False)]
    else:
        raise PatchError(f"Unable to remove nonexistent key: {tokens[-1]}: missing value")
    return doc


def json_patch(doc: Any, ops: Any) -> Any:
    """Apply RFC 6902 operations to a deep copy; a failed `test` is a 422."""
    if not isinstance(ops, list):
        raise PatchError("json: cannot unmarshal object into Go value of type jsonpatch.Patch",
                         400)
    doc = copy.deepcopy(doc)
    for op in ops:
        if not isinstance(op, dict):
            raise PatchError("invalid JSON patch operation", 400)
        kind, path = op.get("op"), op.get("path", "")
        if kind == "test":
            if _get(doc, path) != op.get("value"):
                # kube-apiserver says no more than this (details empty).
                raise PatchError("the server rejected our request due to an error in our "
                                 "request")
        elif kind == "add":
            doc = _add(doc, path, copy.deepcopy(op.get("value")))
        elif kind == "remove":
            doc = _remove(doc, path)
        elif kind == "replace":
            _get(doc, path)
            doc = _add(_remove(doc, path), path, copy.deepcopy(op.get("value"))) \
                if _pointer(path) else copy.deepcopy(op.get("value"))
        elif kind in ("move", "copy"):
            value = copy.deepcopy(_get(doc, op.get("from", "")))
            if kind == "move":
                doc = _remove(doc, op.get("from", ""))
            doc = _add(doc, path, value)
        else:
            raise PatchError(f"Unexpected kind: {kind}", 400)
    return doc


# --- Strategic merge patch ---------------------------------------------------------------------

# Field name -> merge key, for the built-in kinds' `patchStrategy:"merge"` lists. `None` marks a
# list of primitives merged as a set (finalizers). Lists not named here are replaced atomically.
MERGE_KEYS: dict[str, str | None] = {
    "containers": "name", "initContainers": "name", "ephemeralContainers": "name",
    "volumes": "name", "env": "name", "volumeMounts": "mountPath",
    "volumeDevices": "devicePath", "imagePullSecrets": "name", "conditions": "type",
    "ownerReferences": "uid", "finalizers": None, "hostAliases": "ip",
    "topologySpreadConstraints": "topologyKey", "resourceClaims": "name",
    "secrets": "name", "addresses": "ip", "taints": "key",
    "ports": "containerPort",  # service ports use "port": decided per list below
}
_DIRECTIVE_PREFIXES = ("$setElementOrder/", "$retainKeys", "$deleteFromPrimitiveList/")


def _merge_key(field: str, items: list[Any]) -> str | None:
    key = MERGE_KEYS.get(field)
    first = items[0] if items else None
    if field == "ports" and isinstance(first, dict) and "containerPort" not in first:
        return "port"
    return key


def strategic_merge(target: Any, patch: Any) -> Any:
    """Strategic merge patch for the common list keys of the built-in kinds."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if patch.get("$patch") == "delete":
        return None
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            result[field] = [v for v in result.get(field) or [] if v not in value]
            continue
        if key == "$patch" or key.startswith(_DIRECTIVE_PREFIXES):
            continue
        if value is None:
            result.pop(key, None)
        elif isinstance(value, list) and key in MERGE_KEYS:
            result[key] = _merge_list(key, result.get(key), value)
        else:
            result[key] = strategic_merge(result.get(key), value)
    return result


def _merge_list(field: str, current: Any, patch: list[Any]) -> list[Any]:
    current = list(current) if isinstance(current, list) else []
    if any(isinstance(p, dict) and p.get("$patch") == "replace" for p in patch):
        return [copy.deepcopy(p) for p in patch if not (isinstance(p, dict) and "$patch" in p)]
    key = _merge_key(field, patch or current)
    if key is None:  # set of primitives
        return current + [p for p in patch if p not in current]
    out = [copy.deepcopy(c) for c in current]
    for item in patch:
        if not isinstance(item, dict):
            continue
        pos = next((i for i, c in enumerate(out)
                    if isinstance(c, dict) and c.get(key) == item.get(key)), None)
        if item.get("$patch") == "delete":
            if pos is not None:
                del out[pos]
        elif pos is None:
            out.append(strategic_merge({}, item))
        else:
            out[pos] = strategic_merge(out[pos], item)
    return _normalize_order(out, patch, current, key)


def _normalize_order(merged: list[Any], patch: list[Any], current: list[Any],
                     key: str) -> list[Any]:
    """apimachinery's normalizeElementOrder: the patch's items in the patch's order, the
    server-only items in the server's order, merged so that two items the server has both keep
    the server's relative order (and otherwise the patch's item comes first)."""
    def key_of(item: Any) -> Any:
        return item.get(key) if isinstance(item, dict) else item
    patch_keys = [key_of(p) for p in patch if isinstance(p, dict)]
    server = [key_of(c) for c in current]
    left = sorted((m for m in merged if key_of(m) in patch_keys),
                  key=lambda m: patch_keys.index(key_of(m)))
    right = [m for m in merged if key_of(m) not in patch_keys]
    out: list[Any] = []
    i = j = 0
    while i < len(left) or j < len(right):
        if i < len(left) and j < len(right):
            lk, rk = key_of(left[i]), key_of(right[j])
            take_left = not (lk in server and rk in server) or server.index(lk) < server.index(rk)
        else:
            take_left = i < len(left)
        if take_left:
            out.append(left[i])
            i += 1
        else:
            out.append(right[j])
            j += 1
    return out
