"""The object store: collections, the global resourceVersion, and the object lifecycle rules.

Everything here is synchronous and runs on the server's one event loop, so each operation is
atomic. Objects are stored as immutable dicts plus their JSON bytes (serialized once per write);
writes work on a fresh copy decoded from those bytes.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from . import errors, kinds, objectmeta, schema
from .errors import ApiError, FieldError
from .resources import Registry, ResourceType, types_from_crd
from .watch import Event, History, Stored

_GENERATE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
CRD_CLEANUP = "customresourcecleanup.apiextensions.k8s.io"
POD_GR = ("", "pods")
PVC_GR = ("", "persistentvolumeclaims")
SERVICE_GR = ("", "services")
SLICE_GR = ("discovery.k8s.io", "endpointslices")
PVC_PROTECTION = "kubernetes.io/pvc-protection"
CRD_GR = ("apiextensions.k8s.io", "customresourcedefinitions")
NS_GR = ("", "namespaces")


try:  # orjson serializes several times faster; the stdlib is the fallback
    import orjson

    def dumps(obj: Any) -> bytes:
        return orjson.dumps(obj)

    def loads(raw: bytes | str) -> Any:
        return orjson.loads(raw)
except ImportError:  # pragma: no cover
    def dumps(obj: Any) -> bytes:
        return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()

    def loads(raw: bytes | str) -> Any:
        return json.loads(raw)


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


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

    def count(self) -> int:
        return sum(len(b) for b in self.items.values())


class Store:
    """Owns the data and the semantics of writes: versions, generation, finalizers, GC."""

    def __init__(self, history_size: int = 20_000) -> None:
        self.registry = Registry()
        self.history_size = history_size
        self.collections: dict[tuple[str, str], Collection] = {}
        self.rv = 0
        # uid -> (group/resource, namespace, name): owner lookups for garbage collection.
        self.uids: dict[str, tuple[tuple[str, str], str, str]] = {}
        self.dependents: dict[str, set[tuple[tuple[str, str], str, str]]] = {}
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

    # --- writing ---------------------------------------------------------------------------

    def _commit(self, rt: ResourceType, obj: dict[str, Any], old: Stored | None,
                kind: str) -> Stored:
        """Assign the next resourceVersion, serialize once, store and fan out the event."""
        self.rv += 1
        meta = obj["metadata"]
        meta["resourceVersion"] = str(self.rv)
        # An exact-size copy: orjson's buffers are 4 KiB, which tripled the memory per object.
        stored = Stored(obj, memoryview(dumps(obj)).tobytes())
        coll = self.collection(rt)
        ns, name = meta.get("namespace", ""), meta["name"]
        if kind == "DELETED":
            bucket = coll.items.get(ns)
            if bucket is not None:
                bucket.pop(name, None)
                if not bucket:
                    del coll.items[ns]
            self._unindex(rt, stored)
        else:
            coll.items.setdefault(ns, {})[name] = stored
            self._index(rt, stored, old)
        coll.history.append(Event(self.rv, kind, stored, old))
        if rt.group_resource == CRD_GR:
            self._crd_changed(stored, kind)
        if kind == "MODIFIED" and old is not None and meta.get("deletionTimestamp") and \
                not old.obj["metadata"].get("deletionTimestamp"):
            self.on_terminating(rt, obj)
        if rt.group_resource == POD_GR:
            self.on_pod_changed(meta.get("namespace", ""))
        elif rt.group_resource == SERVICE_GR:
            self.on_service_changed(meta.get("namespace", ""))
        elif rt.group_resource == NS_GR and kind == "ADDED":
            self.on_namespace_added(name)
        return stored

    def _index(self, rt: ResourceType, stored: Stored, old: Stored | None) -> None:
        meta = stored.obj["metadata"]
        key = (rt.group_resource, meta.get("namespace", ""), meta["name"])
        self.uids[meta["uid"]] = key
        old_owners = {r.get("uid") for r in (old.obj["metadata"].get("ownerReferences") or [])
                      } if old else set()
        new_owners = {r.get("uid") for r in meta.get("ownerReferences") or []}
        for uid in old_owners - new_owners:
            self.dependents.get(uid, set()).discard(key)
        for uid in new_owners - old_owners:
            self.dependents.setdefault(uid, set()).add(key)
            if uid not in self.uids:
                self.on_removed(uid)  # a dangling reference: its owner is already gone

    def _unindex(self, rt: ResourceType, stored: Stored) -> None:
        meta = stored.obj["metadata"]
        key = (rt.group_resource, meta.get("namespace", ""), meta["name"])
        self.uids.pop(meta["uid"], None)
        for ref in meta.get("ownerReferences") or []:
            self.dependents.get(ref.get("uid"), set()).discard(key)
        self.on_removed(meta["uid"])

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
        self._check_type(rt, obj)
        meta = obj.get("metadata")
        if not isinstance(meta, dict):
            meta = obj["metadata"] = {}
        if rt.namespaced:
            if meta.get("namespace") not in (None, "", namespace):
                raise errors.bad_request("the namespace of the provided object does not match "
                                         "the namespace sent on the request")
            meta["namespace"] = namespace
            self._check_namespace_open(namespace)
        else:
            meta.pop("namespace", None)
        if rt.custom:
            self._check_crd_open(rt, str(meta.get("name") or ""))
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + "".join(
                random.choices(_GENERATE_ALPHABET, k=5))
        name = meta.get("name") or ""
        for key in ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds",
                    "managedFields", "selfLink"):
            meta.pop(key, None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now_rfc3339()
        if rt.has_generation:
            meta["generation"] = 1
        if rt.custom and rt.has_status:
            obj.pop("status", None)
        kinds.prepare_create(rt, obj)
        self._admit_priority(rt, obj)
        self._admission("mutating", "CREATE", rt, obj, None)
        self._admit(rt, obj, strict, warnings)
        self._admission("validating", "CREATE", rt, obj, None)
        if self.collection(rt).get(namespace if rt.namespaced else "", name) is not None:
            raise errors.already_exists(rt.plural, rt.group, name)
        if dry_run:
            return Stored(obj, dumps(obj))
        return self._commit(rt, obj, None, "ADDED")

    def _admit_priority(self, rt: ResourceType, obj: dict[str, Any]) -> None:
        """The Priority admission plugin: a pod's priorityClassName becomes its priority and
        preemption policy; a class that does not exist forbids the pod."""
        if rt.group_resource != ("", "pods"):
            return
        spec = obj.get("spec")
        if not isinstance(spec, dict) or not spec.get("priorityClassName"):
            return
        name = spec["priorityClassName"]
        classes = self.type_for(("scheduling.k8s.io", "priorityclasses"))
        found = self.collection(classes).get("", str(name)) if classes else None
        if found is None:
            pod = obj["metadata"].get("name", "")
            raise ApiError(403, "Forbidden", f'pods "{pod}" is forbidden: no PriorityClass '
                           f"with name {name} was found", {"name": pod, "kind": "pods"})
        spec["priority"] = int(found.obj.get("value") or 0)
        spec["preemptionPolicy"] = found.obj.get("preemptionPolicy") or "PreemptLowerPriority"

    def _admission(self, stage: str, operation: str, rt: ResourceType,
                   obj: dict[str, Any] | None, old: dict[str, Any] | None) -> None:
        self.admission(stage, operation, rt.group, rt.version, rt.plural, obj, old)

    def _check_type(self, rt: ResourceType, obj: Any) -> None:
        if not isinstance(obj, dict):
            raise errors.bad_request("the body of the request was in an unknown format")
        kind, api_version = obj.get("kind"), obj.get("apiVersion")
        if kind is None or api_version is None:
            obj.setdefault("kind", rt.kind)
            obj.setdefault("apiVersion", rt.api_version)
        elif kind != rt.kind or api_version != rt.api_version:
            raise errors.bad_request(
                f"the API version in the data ({api_version}) does not match the expected API "
                f"version ({rt.api_version})" if api_version != rt.api_version else
                f"the kind in the data ({kind}) does not match the expected kind ({rt.kind})")

    def _check_crd_open(self, rt: ResourceType, name: str) -> None:
        crds = self.collections.get(CRD_GR)
        for crd in crds.iter(None) if crds else ():
            spec = crd.obj.get("spec") or {}
            if spec.get("group") == rt.group and (spec.get("names") or {}).get(
                    "plural") == rt.plural and crd.obj["metadata"].get("deletionTimestamp"):
                raise ApiError(403, "Forbidden",
                               f'{rt.plural}.{rt.group} "{name}" is forbidden: create not '
                               "allowed while custom resource definition is terminating",
                               {"name": name, "group": rt.group, "kind": rt.plural})

    def _check_namespace_open(self, namespace: str) -> None:
        phase = self.namespace_phase(namespace)
        if phase is None:
            raise errors.not_found("namespaces", "", namespace)
        if phase == "Terminating":
            raise ApiError(403, "Forbidden",
                           f"unable to create new content in namespace {namespace} because it "
                           "is being terminated",
                           {"name": namespace, "kind": "namespaces",
                            "causes": [{"reason": "NamespaceTerminating",
                                        "message": f"namespace {namespace} is being terminated",
                                        "field": "metadata.namespace"}]})

    def _admit(self, rt: ResourceType, obj: dict[str, Any], strict: bool,
               warnings: list[str] | None) -> None:
        """Default, prune and validate; raise 422 (or 400 for strict unknown fields)."""
        problems = objectmeta.validate(obj["metadata"], dns_label=rt.group_resource == NS_GR)
        if rt.custom:
            outcome = schema.admit(obj, rt.schema)
            unknown = outcome.unknown
            problems += outcome.errors
        else:
            unknown = kinds.drop_unknown_fields(rt, obj)
            problems += kinds.validate(rt, obj)
        if unknown:
            if strict:
                raise errors.bad_request(
                    f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: '
                    "strict decoding error: " + ", ".join(f'unknown field "{p}"' for p in unknown))
            if warnings is not None:
                warnings.extend(f'unknown field "{p}"' for p in unknown)
        if problems:
            raise errors.invalid(rt.kind, rt.group, obj["metadata"].get("name", ""), problems)

    # --- update ----------------------------------------------------------------------------

    def update(self, rt: ResourceType, namespace: str, name: str, body: dict[str, Any], *,
               subresource: str = "", strict: bool = False, dry_run: bool = False,
               warnings: list[str] | None = None) -> Stored:
        """PUT semantics (patches arrive here as the patched object)."""
        ns = namespace if rt.namespaced else ""
        old = self.get(rt, ns, name)
        self._check_type(rt, body)
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
        new = self._merge_update(rt, body, old.obj, subresource)
        self._admission("mutating", "UPDATE", rt, new, old.obj)
        self._admit(rt, new, strict, warnings)
        problems = kinds.validate_update(rt, new, old.obj) if not subresource else []
        problems += self._finalizer_problems(new, old.obj)
        if problems:
            raise errors.invalid(rt.kind, rt.group, name, problems)
        self._admission("validating", "UPDATE", rt, new, old.obj)
        return self._write_update(rt, new, old, dry_run)

    def _merge_update(self, rt: ResourceType, body: dict[str, Any], old: dict[str, Any],
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
        for key in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds",
                    "generation", "namespace", "name"):
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

    def _finalizer_problems(self, new: dict[str, Any], old: dict[str, Any]) -> list[FieldError]:
        if not old["metadata"].get("deletionTimestamp"):
            return []
        added = set(new["metadata"].get("finalizers") or []) - set(
            old["metadata"].get("finalizers") or [])
        if added:
            return [FieldError("metadata.finalizers", "FieldValueForbidden",
                               "no new finalizers can be added if the object is being deleted, "
                               f"found new finalizers {sorted(added)}", show_value=False)]
        return []

    def _write_update(self, rt: ResourceType, new: dict[str, Any], old: Stored,
                      dry_run: bool) -> Stored:
        old_meta = old.obj["metadata"]
        new["metadata"]["resourceVersion"] = old_meta["resourceVersion"]
        if "generation" in old_meta and _spec_changed(rt, new, old.obj):
            new["metadata"]["generation"] = old_meta["generation"] + 1
        if new == old.obj:
            return old  # a no-op write changes nothing: same resourceVersion, no event
        if dry_run:
            return Stored(new, dumps(new))
        if old_meta.get("deletionTimestamp") and not new["metadata"].get("finalizers") and \
                not old_meta.get("deletionGracePeriodSeconds"):
            # The last finalizer is gone (and no grace period is still running): it goes.
            return self._commit(rt, new, old, "DELETED")
        return self._commit(rt, new, old, "MODIFIED")

    # --- delete ----------------------------------------------------------------------------

    def delete(self, rt: ResourceType, namespace: str, name: str,
               options: dict[str, Any] | None = None, dry_run: bool = False) -> Stored:
        """Remove at once, or mark with deletionTimestamp while finalizers (or a running pod's
        grace period) hold the object."""
        options = options or {}
        old = self.get(rt, namespace if rt.namespaced else "", name)
        meta = old.obj["metadata"]
        _check_preconditions(rt, name, meta, options.get("preconditions") or {})
        self._admission("validating", "DELETE", rt, None, old.obj)
        policy = options.get("propagationPolicy") or (
            "Orphan" if options.get("orphanDependents") else "Background")
        finalizers = list(meta.get("finalizers") or [])
        if policy == "Foreground" and "foregroundDeletion" not in finalizers and \
                self.dependents.get(meta["uid"]):
            finalizers.append("foregroundDeletion")
        if policy == "Orphan" and not dry_run:
            self.orphan(meta["uid"])
        if rt.group_resource == CRD_GR and CRD_CLEANUP not in finalizers:
            # The CRD registry adds its cleanup finalizer on the first DELETE (not at create):
            # the CRD then waits for the finalizer controller to remove its resources.
            finalizers.append(CRD_CLEANUP)
        grace = _grace_period(rt, old.obj, options)
        is_ns = rt.group_resource == NS_GR
        if not finalizers and not is_ns and grace == 0:
            return old if dry_run else self._commit(rt, loads(old.raw), old, "DELETED")
        current_grace = meta.get("deletionGracePeriodSeconds")
        if meta.get("deletionTimestamp") and finalizers == meta.get("finalizers") and (
                current_grace is None or grace >= current_grace):
            return old  # already terminating: deleting again changes nothing
        new = loads(old.raw)
        new_meta = new["metadata"]
        if grace or "deletionTimestamp" not in new_meta or grace != current_grace:
            when = datetime.now(UTC) + timedelta(seconds=grace)
            new_meta["deletionTimestamp"] = when.strftime("%Y-%m-%dT%H:%M:%SZ")
        new_meta["deletionGracePeriodSeconds"] = grace
        if finalizers:
            new_meta["finalizers"] = finalizers
        if "generation" in new_meta and "deletionTimestamp" not in meta:
            new_meta["generation"] += 1
        if is_ns:
            new.setdefault("status", {})["phase"] = "Terminating"
        if dry_run:
            return Stored(new, dumps(new))
        stored = self._commit(rt, new, old, "MODIFIED")
        if "foregroundDeletion" in finalizers:
            self.on_foreground(rt.group_resource, new_meta.get("namespace", ""), name)
        if grace:
            self.on_graceful(rt, new_meta.get("namespace", ""), name, new_meta["uid"], grace)
        return stored

    def finish_deletion(self, rt: ResourceType, obj: dict[str, Any], old: Stored) -> Stored:
        """Controllers' last step: the object leaves storage (DELETED event)."""
        return self._commit(rt, obj, old, "DELETED")

    def replace(self, rt: ResourceType, obj: dict[str, Any], old: Stored) -> Stored:
        """Controllers' and subresources' direct writes, with the usual versioning rules."""
        return self._write_update(rt, obj, old, False)

    def remove_finalizer(self, rt: ResourceType, namespace: str, name: str,
                         finalizer: str) -> None:
        """Used by the controllers (namespace, foreground GC) to let a deletion complete."""
        found = self.collection(rt).get(namespace, name)
        if found is None or finalizer not in (found.obj["metadata"].get("finalizers") or []):
            return
        new = loads(found.raw)
        new["metadata"]["finalizers"].remove(finalizer)
        if not new["metadata"]["finalizers"]:
            del new["metadata"]["finalizers"]
        self._write_update(rt, new, found, False)

    def orphan(self, owner_uid: str) -> None:
        """Strip the owner's reference from its dependents (propagationPolicy=Orphan)."""
        for gr, ns, name in list(self.dependents.get(owner_uid, ())):
            self.strip_owner(gr, ns, name, owner_uid)

    def strip_owner(self, gr: tuple[str, str], ns: str, name: str, owner_uid: str) -> None:
        coll = self.collections.get(gr)
        found = coll.get(ns, name) if coll else None
        rt = self.type_for(gr)
        if found is None or rt is None:
            return
        new = loads(found.raw)
        refs = [r for r in new["metadata"].get("ownerReferences") or []
                if r.get("uid") != owner_uid]
        if refs:
            new["metadata"]["ownerReferences"] = refs
        else:
            new["metadata"].pop("ownerReferences", None)
        self._write_update(rt, new, found, False)

    def type_for(self, gr: tuple[str, str]) -> ResourceType | None:
        """The storage-version ResourceType of a group/resource."""
        for rt in self.registry.all():
            if rt.group_resource == gr and rt.version == rt.storage_version:
                return rt
        return None

    def count(self) -> int:
        return sum(c.count() for c in self.collections.values())


def _check_preconditions(rt: ResourceType, name: str, meta: dict[str, Any],
                         pre: dict[str, Any]) -> None:
    if pre.get("uid") and pre["uid"] != meta["uid"]:
        raise errors.conflict(rt.plural, rt.group, name,
                              f"Precondition failed: UID in precondition: {pre['uid']}, "
                              f"UID in object meta: {meta['uid']}")
    if pre.get("resourceVersion") and pre["resourceVersion"] != meta["resourceVersion"]:
        raise errors.conflict(rt.plural, rt.group, name,
                              "Precondition failed: ResourceVersion in precondition: "
                              f"{pre['resourceVersion']}, ResourceVersion in object meta: "
                              f"{meta['resourceVersion']}")


def _grace_period(rt: ResourceType, obj: dict[str, Any], options: dict[str, Any]) -> int:
    """Only pods on a node that are not finished terminate gracefully (the kubelet's job)."""
    if rt.group_resource != ("", "pods"):
        return 0
    spec = obj.get("spec") or {}
    phase = (obj.get("status") or {}).get("phase")
    if not spec.get("nodeName") or phase in ("Succeeded", "Failed"):
        return 0
    grace = options.get("gracePeriodSeconds")
    if grace is None:
        grace = spec.get("terminationGracePeriodSeconds", 30)
    return max(int(grace), 0)


def _spec_changed(rt: ResourceType, new: dict[str, Any], old: dict[str, Any]) -> bool:
    """Generation counts changes to everything but metadata (and status when it is separate)."""
    skip = {"metadata", "status"} if (rt.has_status or not rt.custom) else {"metadata"}
    keys = (set(new) | set(old)) - skip
    return any(new.get(k) != old.get(k) for k in keys)
