"""/openapi/v3: enough of the document for kubectl's server-side field validation check.

kubectl (client-go's QueryParamVerifierV3) looks, in the group/version document, for a PATCH
operation tagged with the kind's `x-kubernetes-group-version-kind` that lists a `fieldValidation`
query parameter; finding it, kubectl leaves validation to the server. CRD schemas are included
under components so `kubectl explain` has something to show.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from .resources import Registry, ResourceType

_QUERY_PARAMS = ("dryRun", "fieldManager", "fieldValidation", "force", "pretty")


def _gv_path(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def _schema_name(rt: ResourceType) -> str:
    group = ".".join(reversed(rt.group.split("."))) if rt.group else "io.k8s.api.core"
    return f"{group}.{rt.version}.{rt.kind}"


def _gvk(rt: ResourceType) -> dict[str, str]:
    return {"group": rt.group, "version": rt.version, "kind": rt.kind}


def _paths(rt: ResourceType) -> dict[str, Any]:
    base = "/" + _gv_path(rt.group, rt.version)
    if rt.namespaced:
        base += "/namespaces/{namespace}"
    params = [{"name": p, "in": "query", "schema": {"type": "string", "uniqueItems": True}}
              for p in _QUERY_PARAMS]
    ref = {"$ref": f"#/components/schemas/{_schema_name(rt)}"}
    patch_types = ["application/json-patch+json", "application/merge-patch+json",
                   "application/apply-patch+yaml"]
    # Strategic merge is accepted for built-in kinds but not advertised here: kubectl would
    # then compute apply patches from these (schemaless) documents instead of its compiled-in
    # types, which know the real list merge keys.
    ok = {"200": {"description": "OK", "content": {"application/json": {"schema": ref}}}}
    ext = {"x-kubernetes-group-version-kind": _gvk(rt)}
    item = {
        "get": {"operationId": f"read{rt.kind}", "responses": ok, **ext,
                "x-kubernetes-action": "get"},
        "put": {"operationId": f"replace{rt.kind}", "parameters": params, "responses": ok,
                "requestBody": {"content": {"application/json": {"schema": ref}}}, **ext,
                "x-kubernetes-action": "put"},
        "patch": {"operationId": f"patch{rt.kind}", "parameters": params, "responses": ok,
                  "requestBody": {"content": {t: {"schema": {"type": "object"}}
                                              for t in patch_types}}, **ext,
                  "x-kubernetes-action": "patch"},
    }
    coll = {"post": {"operationId": f"create{rt.kind}", "parameters": params, "responses": ok,
                     "requestBody": {"content": {"application/json": {"schema": ref}}}, **ext,
                     "x-kubernetes-action": "post"}}
    return {f"{base}/{rt.plural}/{{name}}": item, f"{base}/{rt.plural}": coll}


def _component(rt: ResourceType) -> dict[str, Any]:
    schema = dict(rt.schema) if rt.schema else {
        "type": "object", "x-kubernetes-preserve-unknown-fields": True}
    schema["x-kubernetes-group-version-kind"] = [_gvk(rt)]
    return schema


def gv_document(registry: Registry, group: str, version: str) -> dict[str, Any] | None:
    types = registry.in_group_version(group, version)
    if not types:
        return None
    paths: dict[str, Any] = {}
    components: dict[str, Any] = {}
    for rt in types:
        paths.update(_paths(rt))
        if rt.custom:
            components[_schema_name(rt)] = _component(rt)
        else:
            components[_schema_name(rt)] = {"type": "object",
                                            "x-kubernetes-preserve-unknown-fields": True}
    return {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": "v1.37.0"},
            "paths": paths, "components": {"schemas": components}}


def root(registry: Registry) -> dict[str, Any]:
    """Lists every group/version with a hash that changes when its document does."""
    paths = {}
    for group, versions in registry.group_versions().items():
        for version in versions:
            doc = gv_document(registry, group, version)
            digest = hashlib.sha512(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:32]
            key = _gv_path(group, version)
            paths[key] = {"serverRelativeURL": f"/openapi/v3/{key}?hash={digest.upper()}"}
    return {"paths": paths}
