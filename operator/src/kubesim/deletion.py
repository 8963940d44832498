"""The rules of deletion: preconditions, propagation, finalizers and graceful termination.

Pure functions over metadata; :meth:`kubesim.store.Store.delete` applies them in order. An
object leaves storage at once only when nothing holds it: no finalizer, no grace period (only a
running pod on a node has one) and not a namespace (its controller always drains it first).
Otherwise it gets a ``deletionTimestamp`` and stays until the last holder lets go.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from . import errors
from .errors import FieldError
from .resources import CRD_GR, NS_GR, POD_GR, ResourceType

CRD_CLEANUP = "customresourcecleanup.apiextensions.k8s.io"
PVC_PROTECTION = "kubernetes.io/pvc-protection"
FOREGROUND = "foregroundDeletion"


def check_preconditions(rt: ResourceType, name: str, meta: dict[str, Any],
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


def propagation_policy(options: dict[str, Any]) -> str:
    """Background unless the DeleteOptions ask otherwise (``orphanDependents`` is the old way)."""
    return options.get("propagationPolicy") or (
        "Orphan" if options.get("orphanDependents") else "Background")


def finalizers_for(rt: ResourceType, meta: dict[str, Any], policy: str,
                   has_dependents: bool) -> list[str]:
    """The finalizers the object has once this DELETE is accepted."""
    finalizers = list(meta.get("finalizers") or [])
    if policy == "Foreground" and FOREGROUND not in finalizers and has_dependents:
        finalizers.append(FOREGROUND)
    if rt.group_resource == CRD_GR and CRD_CLEANUP not in finalizers:
        # The CRD registry adds its cleanup finalizer on the first DELETE (not at create):
        # the CRD then waits for the finalizer controller to remove its resources.
        finalizers.append(CRD_CLEANUP)
    return finalizers


def grace_period(rt: ResourceType, obj: dict[str, Any], options: dict[str, Any]) -> int:
    """Only pods on a node that are not finished terminate gracefully (the kubelet's job)."""
    if rt.group_resource != POD_GR:
        return 0
    spec = obj.get("spec") or {}
    phase = (obj.get("status") or {}).get("phase")
    if not spec.get("nodeName") or phase in ("Succeeded", "Failed"):
        return 0
    grace = options.get("gracePeriodSeconds")
    if grace is None:
        grace = spec.get("terminationGracePeriodSeconds", 30)
    return max(int(grace), 0)


def removed_at_once(rt: ResourceType, finalizers: list[str], grace: int) -> bool:
    return not finalizers and rt.group_resource != NS_GR and grace == 0


def changes_nothing(meta: dict[str, Any], finalizers: list[str], grace: int) -> bool:
    """Already terminating with these finalizers and no shorter grace period asked for."""
    current_grace = meta.get("deletionGracePeriodSeconds")
    return bool(meta.get("deletionTimestamp")) and finalizers == meta.get("finalizers") and (
        current_grace is None or grace >= current_grace)


def mark_terminating(rt: ResourceType, new: dict[str, Any], old_meta: dict[str, Any],
                     grace: int, finalizers: list[str]) -> None:
    """Turn ``new`` (a fresh copy of the stored object) into its terminating version."""
    new_meta = new["metadata"]
    current_grace = old_meta.get("deletionGracePeriodSeconds")
    if grace or "deletionTimestamp" not in new_meta or grace != current_grace:
        when = datetime.now(UTC) + timedelta(seconds=grace)
        new_meta["deletionTimestamp"] = when.strftime("%Y-%m-%dT%H:%M:%SZ")
    new_meta["deletionGracePeriodSeconds"] = grace
    if finalizers:
        new_meta["finalizers"] = finalizers
    if "generation" in new_meta and "deletionTimestamp" not in old_meta:
        new_meta["generation"] += 1
    if rt.group_resource == NS_GR:
        new.setdefault("status", {})["phase"] = "Terminating"


def released(old_meta: dict[str, Any], new_meta: dict[str, Any]) -> bool:
    """An update that removed the last finalizer of a terminating object with no grace period
    still running: the object leaves storage instead of being written."""
    return bool(old_meta.get("deletionTimestamp")) and not new_meta.get("finalizers") and \
        not old_meta.get("deletionGracePeriodSeconds")


def finalizer_problems(new: dict[str, Any], old: dict[str, Any]) -> list[FieldError]:
    """A terminating object may lose finalizers but never gain one."""
    if not old["metadata"].get("deletionTimestamp"):
        return []
    added = set(new["metadata"].get("finalizers") or []) - set(
        old["metadata"].get("finalizers") or [])
    if added:
        return [FieldError("metadata.finalizers", "FieldValueForbidden",
                           "no new finalizers can be added if the object is being deleted, "
                           f"found new finalizers {sorted(added)}", show_value=False)]
    return []


def drop_finalizer(obj: dict[str, Any], finalizer: str) -> None:
    """Remove ``finalizer`` from ``obj`` (a fresh copy that has it), in place."""
    obj["metadata"]["finalizers"].remove(finalizer)
    if not obj["metadata"]["finalizers"]:
        del obj["metadata"]["finalizers"]
