"""How a write's body becomes the object to store.

On create the server sets the identity fields (name from generateName, uid, creation time,
generation 1) and drops what clients may not set; on update it decides which parts come from
the request and which from storage, and counts spec changes in ``metadata.generation``.
"""

from __future__ import annotations

import random
import uuid
from typing import Any

from . import kinds
from .encoding import dumps, loads, now_rfc3339
from .resources import ResourceType

_GENERATE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
# Set by the server only: a create ignores what the body says.
_SERVER_SET_ON_CREATE = ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds",
                         "managedFields", "selfLink")
# Kept from storage on update, whatever the body says.
_KEPT_ON_UPDATE = ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds",
                   "generation", "namespace", "name")


def generated_name(prefix: str) -> str:
    """generateName's prefix and five random characters, as kube-apiserver's (names.go)."""
    return prefix + "".join(random.choices(_GENERATE_ALPHABET, k=5))


def init_metadata(rt: ResourceType, obj: dict[str, Any]) -> None:
    """The server-set metadata of a new object (and no status for a custom resource)."""
    meta = obj["metadata"]
    if not meta.get("name") and meta.get("generateName"):
        meta["name"] = generated_name(meta["generateName"])
    for key in _SERVER_SET_ON_CREATE:
        meta.pop(key, None)
    meta["uid"] = str(uuid.uuid4())
    meta["creationTimestamp"] = now_rfc3339()
    if rt.has_generation:
        meta["generation"] = 1
    if rt.custom and rt.has_status:
        obj.pop("status", None)


def merge_update(rt: ResourceType, body: dict[str, Any], old: dict[str, Any],
                 subresource: str) -> dict[str, Any]:
    """The object to store: which parts come from the request and which from storage."""
    if subresource == "status":
        # A /status write changes only status; metadata and spec stay as stored.
        new = loads(dumps(old))
        if "status" in body:
            new["status"] = body["status"]
        else:
            new.pop("status", None)
        kinds.prepare_status_update(rt, new, old)
        return new
    new = body
    new["metadata"] = meta = dict(body["metadata"])
    old_meta = old["metadata"]
    for key in _KEPT_ON_UPDATE:
        if key in old_meta:
            meta[key] = old_meta[key]
        else:
            meta.pop(key, None)
    meta.pop("managedFields", None)
    if rt.has_status:
        # A main-resource write ignores status when the status subresource exists.
        if "status" in old:
            new["status"] = old["status"]
        else:
            new.pop("status", None)
    kinds.prepare_update(rt, new, old)
    return new


def carry_versions(rt: ResourceType, new: dict[str, Any], old: dict[str, Any]) -> None:
    """Give ``new`` the stored resourceVersion, and the next generation if its spec changed.

    With the stored resourceVersion, a write that changes nothing compares equal to the stored
    object and is recognised as a no-op.
    """
    old_meta = old["metadata"]
    new["metadata"]["resourceVersion"] = old_meta["resourceVersion"]
    if "generation" in old_meta and spec_changed(rt, new, old):
        new["metadata"]["generation"] = old_meta["generation"] + 1


def spec_changed(rt: ResourceType, new: dict[str, Any], old: dict[str, Any]) -> bool:
    """Generation counts changes to everything but metadata (and status when it is separate)."""
    skip = {"metadata", "status"} if (rt.has_status or not rt.custom) else {"metadata"}
    keys = (set(new) | set(old)) - skip
    return any(new.get(k) != old.get(k) for k in keys)
