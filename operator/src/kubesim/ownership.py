"""Who owns whom: the ownerReference index that garbage collection and foreground deletion read.

Every stored object is indexed by uid, and every owner uid maps to the objects that name it in
``metadata.ownerReferences``, so that finding an owner's dependents never scans storage.
"""

from __future__ import annotations

from typing import Any

# Where an object is stored: (group/resource, namespace, name).
Key = tuple[tuple[str, str], str, str]


def _owner_uids(meta: dict[str, Any] | None) -> set[Any]:
    return {r.get("uid") for r in ((meta or {}).get("ownerReferences") or [])}


class OwnerIndex:
    """uid -> storage key of every object, and owner uid -> its dependents' keys."""

    def __init__(self) -> None:
        self.uids: dict[str, Key] = {}
        self.dependents: dict[str, set[Key]] = {}

    def stored(self, key: Key, meta: dict[str, Any], old_meta: dict[str, Any] | None) -> list[str]:
        """Index a written object; return the owners it newly names that are already gone.

        Such a dangling reference must reach the garbage collector as if the owner had just been
        removed, or the dependent would outlive its owner forever.
        """
        self.uids[meta["uid"]] = key
        old_owners = _owner_uids(old_meta) if old_meta is not None else set()
        new_owners = _owner_uids(meta)
        for uid in old_owners - new_owners:
            self.dependents.get(uid, set()).discard(key)
        dangling = []
        for uid in new_owners - old_owners:
            self.dependents.setdefault(uid, set()).add(key)
            if uid not in self.uids:
                dangling.append(uid)
        return dangling

    def removed(self, key: Key, meta: dict[str, Any]) -> None:
        """Forget an object that left storage (its own dependents stay, for the collector)."""
        self.uids.pop(meta["uid"], None)
        for ref in meta.get("ownerReferences") or []:
            self.dependents.get(ref.get("uid"), set()).discard(key)


def drop_owner(obj: dict[str, Any], owner_uid: str) -> None:
    """Remove the references to ``owner_uid`` from ``obj`` (a fresh copy), in place."""
    refs = [r for r in obj["metadata"].get("ownerReferences") or []
            if r.get("uid") != owner_uid]
    if refs:
        obj["metadata"]["ownerReferences"] = refs
    else:
        obj["metadata"].pop("ownerReferences", None)
