"""Turning a URL path and method into what it targets (RequestInfo + ResourceType)."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import PageNotFound, unknown_path
from .hooks import RequestInfo
from .resources import Registry, ResourceType

_VERBS = {"GET": "get", "POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


@dataclass
class Target:
    """A resource request resolved against the registry."""

    rt: ResourceType
    namespace: str | None  # None: all namespaces (list/watch), or a cluster-scoped type
    name: str
    subresource: str


def request_info(method: str, path: str, watch: bool) -> RequestInfo:
    """Parse like the apiserver's RequestInfoFactory (no registry needed)."""
    parts = [p for p in path.split("/") if p]
    verb = _VERBS.get(method, method.lower())
    if len(parts) >= 2 and parts[0] == "api":
        group, version, rest = "", parts[1], parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return RequestInfo(verb=method.lower(), path=path)
    info = RequestInfo(verb=verb, path=path, resource_request=bool(rest), group=group,
                       version=version)
    if not rest:
        info.verb = method.lower()
        return info
    if rest[0] == "namespaces" and len(rest) >= 3 and rest[2] not in ("status", "finalize"):
        info.namespace, rest = rest[1], rest[2:]
    elif rest[0] == "namespaces" and len(rest) >= 2:
        info.namespace = rest[1]
    info.resource = rest[0]
    if len(rest) >= 2:
        info.name = rest[1]
    if len(rest) >= 3:
        info.subresource = rest[2]
    if not info.name:
        if verb == "get":
            info.verb = "watch" if watch else "list"
        elif verb == "delete":
            info.verb = "deletecollection"
    return info


def resolve(registry: Registry, info: RequestInfo) -> Target:
    """Find the resource type; unknown groups, versions and resources are a plain 404."""
    rt = registry.get(info.group, info.version, info.resource)
    if rt is None:
        if not registry.in_group_version(info.group, info.version):
            raise PageNotFound()
        raise unknown_path()
    if rt.namespaced:
        namespace: str | None = info.namespace or None
        if info.name and namespace is None:
            raise unknown_path()
    else:
        if info.namespace and info.resource != "namespaces":
            raise unknown_path()
        namespace = None
    if info.subresource and info.subresource not in rt.subresources:
        raise unknown_path()
    return Target(rt, namespace, info.name, info.subresource)
