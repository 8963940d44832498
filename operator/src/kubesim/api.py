"""The REST verbs on resources: get, list, create, update, patch, delete, deletecollection.

Each returns `(status, body bytes)`; watch lives in watchstream.py. Bodies are built from the
bytes stored with each object, so GET and LIST never re-serialize stored objects.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import yaml

from . import errors, patch, protobuf, scale, tables
from .encoding import dumps, loads, now_rfc3339
from .errors import ApiError
from .hooks import Hooks, Identity
from .resources import ResourceType
from .routing import Target
from .selectors import Matcher, combine, field_matcher, label_matcher
from .store import Store
from .watch import Stored

JSON = "application/json"


def wants_table(accept: str) -> bool:
    return "as=Table" in accept


def render(rt: ResourceType, stored: Stored) -> bytes:
    """The stored bytes, re-labelled only when a CRD serves the object in another version."""
    if stored.obj.get("apiVersion") == rt.api_version:
        return stored.raw
    obj = dict(stored.obj)
    obj["apiVersion"] = rt.api_version
    return dumps(obj)


def selector(target: Target, query: Mapping[str, str]) -> Matcher | None:
    return combine(label_matcher(query.get("labelSelector")),
                   field_matcher(query.get("fieldSelector"), target.rt.field_selectors,
                                 custom=target.rt.custom))


def parse_body(raw: bytes, content_type: str) -> Any:
    if not raw:
        raise errors.bad_request("the body of the request was empty")
    if "protobuf" in content_type:
        return protobuf.decode(raw)
    try:
        if "yaml" in content_type:
            return yaml.safe_load(raw)
        return loads(raw)
    except (ValueError, yaml.YAMLError) as exc:
        raise errors.bad_request(f"the body of the request could not be decoded: {exc}") from exc


class Api:
    """Resource verbs over one Store."""

    def __init__(self, store: Store, hooks: Hooks | None = None) -> None:
        self.store = store
        self.hooks = hooks or Hooks()

    # --- reads -----------------------------------------------------------------------------

    def get(self, target: Target, query: Mapping[str, str], accept: str) -> bytes:
        ns = target.namespace or ""
        stored = self.store.get(target.rt, ns, target.name)
        if target.subresource == "scale":
            return dumps(scale.to_scale(target.rt, stored.obj))
        if wants_table(accept):
            meta = {"resourceVersion": stored.obj["metadata"]["resourceVersion"]}
            return dumps(tables.table(target.rt, [stored.obj], meta,
                                      query.get("includeObject", "Metadata")))
        return render(target.rt, stored)

    def list_objects(self, target: Target, query: Mapping[str, str], accept: str) -> bytes:
        rt = target.rt
        match = selector(target, query)
        limit = int(query.get("limit") or 0)
        start = _decode_continue(query.get("continue"))
        items: list[Stored] = []
        more = False
        coll = self.store.collection(rt)
        for stored in coll.iter(target.namespace):
            if start is not None and _key(stored) <= start:
                continue
            if match is None or match(stored.obj):
                if limit and len(items) == limit:
                    more = True
                    break
                items.append(stored)
        meta: dict[str, Any] = {"resourceVersion": str(self.store.rv)}
        if more:
            meta["continue"] = _encode_continue(_key(items[-1]), self.store.rv)
        if wants_table(accept):
            return dumps(tables.table(rt, [s.obj for s in items], meta,
                                      query.get("includeObject", "Metadata")))
        head = dumps({"kind": rt.list_kind, "apiVersion": rt.api_version, "metadata": meta})
        return head[:-1] + b',"items":[' + b",".join(render(rt, s) for s in items) + b"]}"

    # --- writes ----------------------------------------------------------------------------

    def create(self, target: Target, query: Mapping[str, str], body: Any,
               warnings: list[str]) -> tuple[int, bytes]:
        if target.subresource == "binding":
            return self.bind(target, body)
        if target.subresource == "token":
            return self.issue_token(target, body)
        if target.subresource == "eviction":
            return self.evict(target, body)
        if target.name or target.subresource:
            raise errors.method_not_allowed()
        if target.rt.namespaced and target.namespace is None:
            raise errors.method_not_allowed()
        stored = self.store.create(target.rt, target.namespace or "", body,
                                   strict=_strict(query), dry_run=_dry(query), warnings=warnings)
        return 201, render(target.rt, stored)

    def update(self, target: Target, query: Mapping[str, str], body: Any,
               warnings: list[str]) -> tuple[int, bytes]:
        if not target.name:
            raise errors.method_not_allowed()
        if not isinstance(body, dict):
            raise errors.bad_request("the body of the request was in an unknown format")
        if target.subresource == "scale":
            return self._write_scale(target, body)
        if target.rt.custom and not (body.get("metadata") or {}).get("resourceVersion"):
            # Custom resources do not allow unconditional updates. The error names the
            # resource (widgets.group), as the custom resource registry's update does.
            raise errors.invalid(target.rt.plural, target.rt.group, target.name, [
                errors.FieldError("metadata.resourceVersion", "FieldValueInvalid",
                                  "must be specified for an update", errors.Bare("0"))])
        stored = self.store.update(target.rt, target.namespace or "", target.name, body,
                                   subresource=target.subresource, strict=_strict(query),
                                   dry_run=_dry(query), warnings=warnings)
        return 200, render(target.rt, stored)

    def patch(self, target: Target, query: Mapping[str, str], content_type: str, raw: bytes,
              warnings: list[str]) -> tuple[int, bytes]:
        rt = target.rt
        if not target.name:
            raise errors.method_not_allowed()
        kind = patch.patch_type(content_type, custom=rt.custom)
        body = parse_body(raw, kind)
        ns = target.namespace or ""
        if kind == patch.APPLY:
            _require_field_manager(query)
            if self.store.collection(rt).get(ns, target.name) is None:
                if target.subresource:
                    raise errors.not_found(rt.plural, rt.group, target.name)
                return self._apply_create(target, query, body, warnings)
        current = loads(self.store.get(rt, ns, target.name).raw)
        if target.subresource == "scale":
            return self._write_scale(target, patch.apply(kind, scale.to_scale(rt, current), body))
        patched = patch.apply(kind, current, body)
        stored = self.store.update(rt, ns, target.name, patched, subresource=target.subresource,
                                   strict=_strict(query), dry_run=_dry(query), warnings=warnings)
        return 200, render(rt, stored)

    def _write_scale(self, target: Target, body: dict[str, Any]) -> tuple[int, bytes]:
        """A Scale write changes only the object's replica count (a spec change)."""
        rt = target.rt
        current = self.store.get(rt, target.namespace or "", target.name)
        obj = loads(current.raw)
        scale.apply_scale(rt, obj, body)
        stored = self.store.update(rt, target.namespace or "", target.name, obj)
        return 200, dumps(scale.to_scale(rt, stored.obj))

    def _apply_create(self, target: Target, query: Mapping[str, str], body: Any,
                      warnings: list[str]) -> tuple[int, bytes]:
        if not isinstance(body, dict):
            raise errors.bad_request("the body of the request was in an unknown format")
        body.setdefault("metadata", {})["name"] = target.name
        stored = self.store.create(target.rt, target.namespace or "", body,
                                   strict=_strict(query), dry_run=_dry(query), warnings=warnings)
        return 201, render(target.rt, stored)

    def delete(self, target: Target, query: Mapping[str, str], body: Any) -> tuple[int, bytes]:
        options = _delete_options(query, body)
        rt = target.rt
        stored = self.store.delete(rt, target.namespace or "", target.name, options,
                                   dry_run=_dry(query, options))
        if rt.custom or stored.obj["metadata"].get("deletionTimestamp"):
            # Custom resources return what was deleted (ReturnDeletedObject); so does any kind
            # whose deletion is pending (grace period, finalizers): the object as it now is.
            return 200, render(rt, stored)
        # Built-in kinds deleted at once answer a Status, as kube-apiserver's registry does.
        meta = stored.obj["metadata"]
        details: dict[str, Any] = {"name": meta["name"], "kind": rt.plural,
                                   "uid": meta.get("uid")}
        if rt.group:
            details["group"] = rt.group
        return 200, dumps({"kind": "Status", "apiVersion": "v1", "metadata": {},
                           "status": "Success", "details": details})

    def delete_collection(self, target: Target, query: Mapping[str, str],
                          body: Any) -> tuple[int, bytes]:
        rt = target.rt
        if rt.group_resource == ("", "namespaces"):
            raise errors.method_not_allowed()
        match = selector(target, query)
        options = _delete_options(query, body)
        victims = [s for s in self.store.collection(rt).iter(target.namespace)
                   if match is None or match(s.obj)]
        deleted = []
        for stored in victims:
            meta = stored.obj["metadata"]
            try:
                deleted.append(self.store.delete(rt, meta.get("namespace", ""), meta["name"],
                                                 options, dry_run=_dry(query, options)))
            except ApiError as exc:
                if exc.code != 404:
                    raise
        head = dumps({"kind": rt.list_kind, "apiVersion": rt.api_version,
                      "metadata": {"resourceVersion": str(self.store.rv)}})
        return 200, head[:-1] + b',"items":[' + b",".join(render(rt, s) for s in deleted) + b"]}"

    def issue_token(self, target: Target, body: Any) -> tuple[int, bytes]:
        """serviceaccounts/token (TokenRequest): a token that authenticates as the account."""
        ns = target.namespace or ""
        account = self.store.get(target.rt, ns, target.name)
        spec = dict((body or {}).get("spec") or {}) if isinstance(body, dict) else {}
        seconds = int(spec.get("expirationSeconds") or 3600)
        spec["expirationSeconds"] = seconds
        token = "kubesim-sa-" + secrets.token_urlsafe(24)
        self.hooks.tokens[token] = Identity(
            f"system:serviceaccount:{ns}:{target.name}",
            ("system:serviceaccounts", f"system:serviceaccounts:{ns}", "system:authenticated"))
        expires = datetime.now(UTC) + timedelta(seconds=seconds)
        return 201, dumps({
            "kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"name": target.name, "namespace": ns,
                         "creationTimestamp": now_rfc3339(),
                         "uid": account.obj["metadata"]["uid"]},
            "spec": spec,
            "status": {"token": token,
                       "expirationTimestamp": expires.strftime("%Y-%m-%dT%H:%M:%SZ")}})

    def evict(self, target: Target, body: Any) -> tuple[int, bytes]:
        """pods/eviction (policy/v1 Eviction): the pod gets kube-apiserver's DisruptionTarget
        condition, then a graceful delete. No PodDisruptionBudgets are judged here."""
        ns = target.namespace or ""
        options = dict((body or {}).get("deleteOptions") or {}) if isinstance(body, dict) else {}
        current = self.store.get(target.rt, ns, target.name)
        pod = loads(current.raw)
        if not pod["metadata"].get("deletionTimestamp"):
            conditions = [c for c in pod.setdefault("status", {}).get("conditions") or []
                          if c.get("type") != "DisruptionTarget"]
            conditions.append({"type": "DisruptionTarget", "status": "True",
                               "reason": "EvictionByEvictionAPI",
                               "message": "Eviction API: evicting",
                               "lastTransitionTime": now_rfc3339(), "lastProbeTime": None})
            pod["status"]["conditions"] = conditions
            self.store.replace(target.rt, pod, current)
            self.store.delete(target.rt, ns, target.name, options)
        return 201, dumps({"kind": "Status", "apiVersion": "v1", "metadata": {},
                           "status": "Success", "code": 201})

    def bind(self, target: Target, body: Any) -> tuple[int, bytes]:
        """pods/binding: what the scheduler posts to put a pod on a node."""
        ns = target.namespace or ""
        node = ((body or {}).get("target") or {}).get("name") if isinstance(body, dict) else None
        if not node:
            raise errors.invalid("Binding", "", target.name, [errors.FieldError(
                "target.name", "FieldValueRequired", show_value=False)])
        current = self.store.get(target.rt, ns, target.name)
        pod = loads(current.raw)
        if pod.get("spec", {}).get("nodeName"):
            raise errors.conflict("pods", "", target.name,
                                  f'pod {target.name} is already assigned to node '
                                  f'"{pod["spec"]["nodeName"]}"')
        if pod["metadata"].get("deletionTimestamp"):
            raise errors.conflict("pods", "", target.name,
                                  f"pod {target.name} is being deleted, cannot be assigned to "
                                  "a host")
        pod["spec"]["nodeName"] = node
        conditions = [c for c in pod.setdefault("status", {}).get("conditions") or []
                      if c.get("type") != "PodScheduled"]
        conditions.append({"type": "PodScheduled", "status": "True",
                           "lastTransitionTime": now_rfc3339(), "lastProbeTime": None})
        pod["status"]["conditions"] = conditions
        self.store.replace(target.rt, pod, current)
        return 201, dumps({"kind": "Status", "apiVersion": "v1", "metadata": {},
                           "status": "Success", "code": 201})


def _require_field_manager(query: Mapping[str, str]) -> None:
    if not query.get("fieldManager"):
        raise errors.invalid("PatchOptions", "meta.k8s.io", "", [errors.FieldError(
            "fieldManager", "FieldValueRequired", "is required for apply patch",
            show_value=False)])


def _strict(query: Mapping[str, str]) -> bool:
    return query.get("fieldValidation", "") == "Strict"


def _dry(query: Mapping[str, str], options: dict[str, Any] | None = None) -> bool:
    """dryRun=All as a query parameter, or in a DeleteOptions body (what kubectl sends)."""
    return query.get("dryRun") == "All" or "All" in ((options or {}).get("dryRun") or [])


def _delete_options(query: Mapping[str, str], body: Any) -> dict[str, Any]:
    options = dict(body) if isinstance(body, dict) else {}
    if query.get("propagationPolicy"):
        options["propagationPolicy"] = query["propagationPolicy"]
    if query.get("gracePeriodSeconds"):
        options["gracePeriodSeconds"] = int(query["gracePeriodSeconds"])
    return options


def _key(stored: Stored) -> tuple[str, str]:
    meta = stored.obj["metadata"]
    return (meta.get("namespace", ""), meta["name"])


def _encode_continue(key: tuple[str, str], rv: int) -> str:
    raw = json.dumps({"v": "meta.k8s.io/v1", "rv": rv, "start": list(key)}).encode()
    return base64.urlsafe_b64encode(raw).decode()


def _decode_continue(token: str | None) -> tuple[str, str] | None:
    if not token:
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        return (data["start"][0], data["start"][1])
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise errors.bad_request(f"continue key is not valid: {exc}") from exc
