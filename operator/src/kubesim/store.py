"""The object store: collections, the global resourceVersion, and the order of every write.

Everything here is synchronous and runs on the server's one event loop, so each operation is
atomic. Objects are stored as immutable dicts plus their JSON bytes (serialized once per write);
writes work on a fresh copy decoded from those bytes.

The rules a write applies live beside it: :mod:`.checks` (kind, namespace and CRD lifecycle,
Priority, defaulting and validation), :mod:`.writes` (server-set metadata, update merging,
generation), :mod:`.deletion` (preconditions, propagation, finalizers, grace periods) and
:mod:`.ownership` (the ownerReference index). The :class:`Store` methods below say in which
order they apply, and every change reaches storage through :meth:`Store._commit`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from . import checks, deletion, errors, kinds, writes
from .encoding import dumps, loads
from .ownership import OwnerIndex, drop_owner
from .resources import (
    CRD_GR,
    NS_GR,
    POD_GR,
    PRIORITY_CLASS_GR,
    SERVICE_GR,
    Registry,
    ResourceType,
    types_from_crd,
)
from .watch import Event, History, Stored

GENERATE_ATTEMPTS = 8  # kube-apiserver's maxNameGenerationCreateAttempts


class Collection:
    """All objects of one group/resource, by namespace then name, plus their event history."""

    def __init__(self, history_size: int) -> None:
        self.items: dict[str, dict[str, Stored]] = {}
        self.history = History(history_size)

    def get(self, namespace: str, name: str) -> Stored | None:
        bucket = self.items.get(namespace)
        return bucket.get(name) if bucket else None

    def iter(self, namespace: str | None) -> Iterator[Stored]:
        """Objects in key order (namespace, then name), as etcd lists them."""
        spaces = [namespace] if namespace is not None else sorted(self.items)
        for ns in spaces:
            bucket = self.items.get(ns) or {}
            for name in sorted(bucket):
                yield bucket[name]

    def put(self, namespace: str, name: str, stored: Stored) -> None:
        self.items.setdefault(namespace, {})[name] = stored

    def discard(self, namespace: str, name: str) -> None:
        bucket = self.items.get(namespace)
        if bucket is not None:
            bucket.pop(name, None)
            if not bucket:
                del self.items[namespace]

    def count(self) -> int:
        return sum(len(b) for b in self.items.values())


class Store:
    """Owns the data and the semantics of writes: versions, generation, finalizers, GC."""

    def __init__(self, history_size: int = 20_000) -> None:
        self.registry = Registry()
        self.history_size = history_size
        self.collections: dict[tuple[str, str], Collection] = {}
        self.rv = 0
        # Owner lookups for garbage collection and foreground deletion.
        self.owners = OwnerIndex()
        self.on_removed: Callable[[str], None] = lambda uid: None
        # An object got its deletionTimestamp (namespaces and CRDs have controllers to run).
        self.on_terminating: Callable[[ResourceType, dict[str, Any]], None] = \
            lambda rt, obj: None
        # An object now waits for its dependents (foreground deletion): (group/resource, ns, name).
        self.on_foreground: Callable[[tuple[str, str], str, str], None] = lambda *_: None
        self.on_pod_changed: Callable[[str], None] = lambda namespace: None
        self.on_service_changed: Callable[[str], None] = lambda namespace: None
        # A namespace was created (controllers put their per-namespace objects in it).
        self.on_namespace_added: Callable[[str], None] = lambda name: None
        # Admission (hooks.Hooks.admit): stage, operation, group, version, resource, obj, old.
        self.admission: Callable[..., None] = lambda *args: None
        # A running pod deleted with a grace period: the kubelet (or, failing it, the server
        # once the period is over) finishes the deletion.
        self.on_graceful: Callable[[ResourceType, str, str, str, int], None] = \
            lambda rt, ns, name, uid, grace: None

    # --- reading ---------------------------------------------------------------------------

    def collection(self, rt: ResourceType) -> Collection:
        coll = self.collections.get(rt.group_resource)
        if coll is None:
            coll = self.collections[rt.group_resource] = Collection(self.history_size)
        return coll

    def get(self, rt: ResourceType, namespace: str, name: str) -> Stored:
        found = self.collection(rt).get(namespace, name)
        if found is None:
            raise errors.not_found(rt.plural, rt.group, name)
        return found

    def namespace_phase(self, name: str) -> str | None:
        found = self.collections.get(NS_GR)
        ns = found.get("", name) if found else None
        if ns is None:
            return None
        return "Terminating" if ns.obj["metadata"].get("deletionTimestamp") else "Active"

    def type_for(self, gr: tuple[str, str]) -> ResourceType | None:
        """The storage-version ResourceType of a group/resource."""
        for rt in self.registry.all():
            if rt.group_resource == gr and rt.version == rt.storage_version:
                return rt
        return None

    def count(self) -> int:
        return sum(c.count() for c in self.collections.values())

    # --- committing ------------------------------------------------------------------------

    def _commit(self, rt: ResourceType, obj: dict[str, Any], old: Stored | None,
                kind: str) -> Stored:
        """Assign the next resourceVersion, serialize once, store, index and fan out the event.

        Every change to storage goes through here, so the resourceVersions in the histories
        are exactly the order of the writes.
        """
        self.rv += 1
        meta = obj["metadata"]
        meta["resourceVersion"] = str(self.rv)
        # An exact-size copy: orjson's result sits in a 4 KiB buffer, which would triple the
        # memory each stored object takes.
        stored = Stored(obj, memoryview(dumps(obj)).tobytes())
        coll = self.collection(rt)
        ns, name = meta.get("namespace", ""), meta["name"]
        key = (rt.group_resource, ns, name)
        if kind == "DELETED":
            coll.discard(ns, name)
            self.owners.removed(key, meta)
            self.on_removed(meta["uid"])
        else:
            coll.put(ns, name, stored)
            old_meta = old.obj["metadata"] if old else None
            for owner in self.owners.stored(key, meta, old_meta):
                self.on_removed(owner)  # a dangling reference: its owner is already gone
        coll.history.append(Event(self.rv, kind, stored, old))
        if rt.group_resource == CRD_GR:
            self._crd_changed(stored, kind)
        self._notify(rt, kind, obj, old)
        return stored

    def _notify(self, rt: ResourceType, kind: str, obj: dict[str, Any],
                old: Stored | None) -> None:
        """Tell the controllers what they follow: terminations, pods, services, namespaces."""
        meta = obj["metadata"]
        if kind == "MODIFIED" and old is not None and meta.get("deletionTimestamp") and \
                not old.obj["metadata"].get("deletionTimestamp"):
            self.on_terminating(rt, obj)
        if rt.group_resource == POD_GR:
            self.on_pod_changed(meta.get("namespace", ""))
        elif rt.group_resource == SERVICE_GR:
            self.on_service_changed(meta.get("namespace", ""))
        elif rt.group_resource == NS_GR and kind == "ADDED":
            self.on_namespace_added(meta["name"])

    def _crd_changed(self, stored: Stored, kind: str) -> None:
        name = stored.obj["metadata"]["name"]
        if kind == "DELETED":
            types = self.registry.crd_types.get(name, [])
            self.registry.remove_crd(name)
            for rt in types[:1]:
                coll = self.collections.pop(rt.group_resource, None)
                for watcher in list(coll.history.watchers) if coll else []:
                    watcher.close()  # the resource is gone: its watches end
        else:
            self.registry.set_crd(name, types_from_crd(stored.obj))

    # --- create ----------------------------------------------------------------------------

    def create(self, rt: ResourceType, namespace: str, body: dict[str, Any], *,
               strict: bool = False, dry_run: bool = False,
               warnings: list[str] | None = None) -> Stored:
        obj = body
        checks.check_type(rt, obj)
        meta = obj.get("metadata")
        if not isinstance(meta, dict):
            meta = obj["metadata"] = {}
        if rt.namespaced:
            if meta.get("namespace") not in (None, "", namespace):
                raise errors.bad_request("the namespace of the provided object does not match "
                                         "the namespace sent on the request")
            meta["namespace"] = namespace
            checks.check_namespace_open(namespace, self.namespace_phase(namespace))
        else:
            meta.pop("namespace", None)
        if rt.custom:
            crds = self.collections.get(CRD_GR)
            checks.check_crd_open(rt, str(meta.get("name") or ""),
                                  crds.iter(None) if crds else ())
        generated = not meta.get("name") and bool(meta.get("generateName"))
        writes.init_metadata(rt, obj)
        kinds.prepare_create(rt, obj)
        checks.admit_priority(rt, obj, self._priority_class)
        self._admission("mutating", "CREATE", rt, obj, None)
        checks.default_and_validate(rt, obj, strict, warnings)
        self._admission("validating", "CREATE", rt, obj, None)
        self._free_name(rt, namespace if rt.namespaced else "", obj, generated)
        if dry_run:
            return Stored(obj, dumps(obj))
        return self._commit(rt, obj, None, "ADDED")

    def _free_name(self, rt: ResourceType, scope: str, obj: dict[str, Any],
                   generated: bool) -> str:
        """The new object's name, or AlreadyExists. A name made from generateName that is
        taken is made again, up to GENERATE_ATTEMPTS in all, as kube-apiserver's generic
        store does (createWithGenerateNameRetry): clients naming Events that way never see
        a 409 there (27^5 names: about 30 collisions while 30,000 Events accumulate)."""
        meta = obj["metadata"]
        collection = self.collection(rt)
        for attempt in range(GENERATE_ATTEMPTS if generated else 1):
            if attempt:
                meta["name"] = writes.generated_name(meta["generateName"])
            if collection.get(scope, meta["name"]) is None:
                return str(meta["name"])
        raise errors.already_exists(rt.plural, rt.group, meta["name"])

    def _priority_class(self, name: str) -> Stored | None:
        classes = self.type_for(PRIORITY_CLASS_GR)
        return self.collection(classes).get("", name) if classes else None

    def _admission(self, stage: str, operation: str, rt: ResourceType,
                   obj: dict[str, Any] | None, old: dict[str, Any] | None) -> None:
        self.admission(stage, operation, rt.group, rt.version, rt.plural, obj, old)

    # --- update ----------------------------------------------------------------------------

    def update(self, rt: ResourceType, namespace: str, name: str, body: dict[str, Any], *,
               subresource: str = "", strict: bool = False, dry_run: bool = False,
               warnings: list[str] | None = None) -> Stored:
        """PUT semantics (patches arrive here as the patched object)."""
        ns = namespace if rt.namespaced else ""
        old = self.get(rt, ns, name)
        checks.check_type(rt, body)
        meta = body.get("metadata")
        if not isinstance(meta, dict):
            raise errors.bad_request("metadata is required")
        if meta.get("name", name) != name:
            raise errors.bad_request(
                f'the name of the object ({meta.get("name")}) does not match the name on the '
                f'URL ({name})')
        if rt.namespaced and meta.get("namespace") not in (None, "", ns):
            raise errors.bad_request("the namespace of the provided object does not match the "
                                     "namespace sent on the request")
        want_rv = meta.get("resourceVersion")
        if want_rv not in (None, "") and want_rv != old.obj["metadata"]["resourceVersion"]:
            raise errors.conflict(rt.plural, rt.group, name)
        new = writes.merge_update(rt, body, old.obj, subresource)
        self._admission("mutating", "UPDATE", rt, new, old.obj)
        checks.default_and_validate(rt, new, strict, warnings)
        problems = kinds.validate_update(rt, new, old.obj) if not subresource else []
        problems += deletion.finalizer_problems(new, old.obj)
        if problems:
            raise errors.invalid(rt.kind, rt.group, name, problems)
        self._admission("validating", "UPDATE", rt, new, old.obj)
        return self._write_update(rt, new, old, dry_run)

    def _write_update(self, rt: ResourceType, new: dict[str, Any], old: Stored,
                      dry_run: bool) -> Stored:
        writes.carry_versions(rt, new, old.obj)
        if new == old.obj:
            return old  # a no-op write changes nothing: same resourceVersion, no event
        if dry_run:
            return Stored(new, dumps(new))
        if deletion.released(old.obj["metadata"], new["metadata"]):
            return self._commit(rt, new, old, "DELETED")
        return self._commit(rt, new, old, "MODIFIED")

    def replace(self, rt: ResourceType, obj: dict[str, Any], old: Stored) -> Stored:
        """Controllers' and subresources' direct writes, with the usual versioning rules."""
        return self._write_update(rt, obj, old, False)

    # --- delete ----------------------------------------------------------------------------

    def delete(self, rt: ResourceType, namespace: str, name: str,
               options: dict[str, Any] | None = None, dry_run: bool = False) -> Stored:
        """Remove at once, or mark with deletionTimestamp while finalizers (or a running pod's
        grace period) hold the object."""
        options = options or {}
        old = self.get(rt, namespace if rt.namespaced else "", name)
        meta = old.obj["metadata"]
        deletion.check_preconditions(rt, name, meta, options.get("preconditions") or {})
        self._admission("validating", "DELETE", rt, None, old.obj)
        policy = deletion.propagation_policy(options)
        finalizers = deletion.finalizers_for(rt, meta, policy,
                                             bool(self.owners.dependents.get(meta["uid"])))
        if policy == "Orphan" and not dry_run:
            self.orphan(meta["uid"])
        grace = deletion.grace_period(rt, old.obj, options)
        if deletion.removed_at_once(rt, finalizers, grace):
            return old if dry_run else self._commit(rt, loads(old.raw), old, "DELETED")
        if deletion.changes_nothing(meta, finalizers, grace):
            return old  # already terminating: deleting again changes nothing
        new = loads(old.raw)
        deletion.mark_terminating(rt, new, meta, grace, finalizers)
        if dry_run:
            return Stored(new, dumps(new))
        stored = self._commit(rt, new, old, "MODIFIED")
        new_meta = new["metadata"]
        if deletion.FOREGROUND in finalizers:
            self.on_foreground(rt.group_resource, new_meta.get("namespace", ""), name)
        if grace:
            self.on_graceful(rt, new_meta.get("namespace", ""), name, new_meta["uid"], grace)
        return stored

    def finish_deletion(self, rt: ResourceType, obj: dict[str, Any], old: Stored) -> Stored:
        """Controllers' last step: the object leaves storage (DELETED event)."""
        return self._commit(rt, obj, old, "DELETED")

    def remove_finalizer(self, rt: ResourceType, namespace: str, name: str,
                         finalizer: str) -> None:
        """Used by the controllers (namespace, foreground GC) to let a deletion complete."""
        found = self.collection(rt).get(namespace, name)
        if found is None or finalizer not in (found.obj["metadata"].get("finalizers") or []):
            return
        new = loads(found.raw)
        deletion.drop_finalizer(new, finalizer)
        self._write_update(rt, new, found, False)

    def orphan(self, owner_uid: str) -> None:
        """Strip the owner's reference from its dependents (propagationPolicy=Orphan)."""
        for gr, ns, name in list(self.owners.dependents.get(owner_uid, ())):
            self.strip_owner(gr, ns, name, owner_uid)

    def strip_owner(self, gr: tuple[str, str], ns: str, name: str, owner_uid: str) -> None:
        coll = self.collections.get(gr)
        found = coll.get(ns, name) if coll else None
        rt = self.type_for(gr)
        if found is None or rt is None:
            return
        new = loads(found.raw)
        drop_owner(new, owner_uid)
        self._write_update(rt, new, found, False)
