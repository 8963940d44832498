"""Discovery documents: /version, /api, /apis, group and group/version resource lists.

Only the legacy (unaggregated) format is served; clients that ask for aggregated discovery
fall back to it when the answer's content type says plain `application/json`.
"""

from __future__ import annotations

import hashlib
from typing import Any

from .resources import ALL_VERBS, Registry, ResourceType

VERSION_INFO = {
    "major": "1", "minor": "37", "gitVersion": "v1.37.0-kubesim", "gitCommit": "kubesim",
    "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.26",
    "compiler": "gc", "platform": "linux/amd64",
}
# apiextensions-apiserver lists a custom resource's verbs in this (unsorted) order.
CUSTOM_VERBS = ["delete", "deletecollection", "get", "list", "patch", "create", "update", "watch"]
_SUB_VERBS = {"status": ["get", "patch", "update"], "binding": ["create"],
              "scale": ["get", "patch", "update"], "token": ["create"], "log": ["get"],
              "eviction": ["create"]}
_SUB_KIND = {"binding": "Binding", "scale": "Scale", "token": "TokenRequest", "log": "Pod",
             "eviction": "Eviction"}


def api_versions(server_address: str) -> dict[str, Any]:
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0",
                                            "serverAddress": server_address}]}


def _group(name: str, versions: list[str]) -> dict[str, Any]:
    entries = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
    return {"name": name, "versions": entries, "preferredVersion": entries[0]}


def api_group_list(registry: Registry) -> dict[str, Any]:
    groups = [_group(g, vs) for g, vs in sorted(registry.group_versions().items()) if g]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_group(registry: Registry, group: str) -> dict[str, Any] | None:
    versions = registry.group_versions().get(group)
    if not versions:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group(group, versions)}


def _resource_entries(rt: ResourceType) -> list[dict[str, Any]]:
    verbs = list(CUSTOM_VERBS if rt.custom else ALL_VERBS)
    if rt.group_resource == ("", "namespaces"):
        verbs.remove("deletecollection")
    main: dict[str, Any] = {
        "name": rt.plural, "singularName": rt.singular, "namespaced": rt.namespaced,
        "kind": rt.kind, "verbs": verbs,
        "storageVersionHash": hashlib.sha256(
            f"{rt.group}/{rt.version}/{rt.kind}".encode()).hexdigest()[:11],
    }
    if rt.short_names:
        main["shortNames"] = rt.short_names
    if rt.categories:
        main["categories"] = rt.categories
    out = [main]
    for sub in sorted(rt.subresources & set(_SUB_VERBS)):
        entry = {"name": f"{rt.plural}/{sub}", "singularName": "",
                 "namespaced": rt.namespaced, "kind": _SUB_KIND.get(sub, rt.kind),
                 "verbs": _SUB_VERBS[sub]}
        if sub == "scale":
            entry.update(group="autoscaling", version="v1")
        elif sub == "token":
            entry.update(group="authentication.k8s.io", version="v1")
        elif sub == "eviction":
            entry.update(group="policy", version="v1")
        out.append(entry)
    return out


def resource_list(registry: Registry, group: str, version: str) -> dict[str, Any] | None:
    types = registry.in_group_version(group, version)
    if not types:
        return None
    resources = [e for rt in sorted(types, key=lambda t: t.plural) for e in _resource_entries(rt)]
    return {"kind": "APIResourceList", "apiVersion": "v1",
            "groupVersion": f"{group}/{version}" if group else version, "resources": resources}
