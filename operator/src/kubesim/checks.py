"""The API server's own checks on a write, before and around the admission webhooks.

The body's kind, NamespaceLifecycle (no new objects in a terminating namespace), the CRD's
lifecycle (no new custom resources while their CRD terminates), the Priority admission plugin,
and defaulting, pruning and validation (built-in kinds or a CRD's structural schema).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from . import errors, kinds, objectmeta, schema
from .errors import ApiError
from .resources import NS_GR, POD_GR, ResourceType
from .watch import Stored


def check_type(rt: ResourceType, obj: Any) -> None:
    """The body is an object of this resource's kind and version (both defaulted if absent)."""
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


def check_namespace_open(namespace: str, phase: str | None) -> None:
    """NamespaceLifecycle: the namespace exists and is not terminating."""
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


def check_crd_open(rt: ResourceType, name: str, crds: Iterable[Stored]) -> None:
    """A custom resource may not be created while its CRD is terminating."""
    for crd in crds:
        spec = crd.obj.get("spec") or {}
        if spec.get("group") == rt.group and (spec.get("names") or {}).get(
                "plural") == rt.plural and crd.obj["metadata"].get("deletionTimestamp"):
            raise ApiError(403, "Forbidden",
                           f'{rt.plural}.{rt.group} "{name}" is forbidden: create not '
                           "allowed while custom resource definition is terminating",
                           {"name": name, "group": rt.group, "kind": rt.plural})


def admit_priority(rt: ResourceType, obj: dict[str, Any],
                   priority_class: Callable[[str], Stored | None]) -> None:
    """The Priority admission plugin: a pod's priorityClassName becomes its priority and
    preemption policy; a class that does not exist forbids the pod."""
    if rt.group_resource != POD_GR:
        return
    spec = obj.get("spec")
    if not isinstance(spec, dict) or not spec.get("priorityClassName"):
        return
    name = spec["priorityClassName"]
    found = priority_class(str(name))
    if found is None:
        pod = obj["metadata"].get("name", "")
        raise ApiError(403, "Forbidden", f'pods "{pod}" is forbidden: no PriorityClass '
                       f"with name {name} was found", {"name": pod, "kind": "pods"})
    spec["priority"] = int(found.obj.get("value") or 0)
    spec["preemptionPolicy"] = found.obj.get("preemptionPolicy") or "PreemptLowerPriority"


def default_and_validate(rt: ResourceType, obj: dict[str, Any], strict: bool,
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
