"""Which PersistentVolumeClaims keep a pod from starting, and what the kubelet says about them."""

from __future__ import annotations

from .client import ApiError, KubeClient
from .objects import Obj

# (volume, claim, problem) for one PVC volume that is missing or not Bound.
Unready = tuple[str, str, str]


def unready_claims(pod: Obj, pvcs: dict[str, Obj]) -> list[Unready]:
    """The pod's PVC volumes whose claim the cache ``pvcs`` lacks or has not Bound."""
    namespace = pod["metadata"]["namespace"]
    missing = []
    for volume in (pod.get("spec") or {}).get("volumes") or []:
        claim = (volume.get("persistentVolumeClaim") or {}).get("claimName")
        if not claim:
            continue
        pvc = pvcs.get(f"{namespace}/{claim}")
        if pvc is None:
            missing.append((volume["name"], claim,
                            f'persistentvolumeclaim "{claim}" not found'))
        elif (pvc.get("status") or {}).get("phase") != "Bound":
            missing.append((volume["name"], claim,
                            f'persistentvolumeclaim "{claim}" is not bound'))
    return missing


async def confirm_unready(client: KubeClient, pod: Obj,
                          missing: list[Unready]) -> list[Unready]:
    """Ask the server about claims the cache lacks: its PVC watch may just lag behind."""
    confirmed = []
    namespace = pod["metadata"]["namespace"]
    for volume, claim, problem in missing:
        try:
            pvc = await client.request(
                "GET", f"/api/v1/namespaces/{namespace}/persistentvolumeclaims/{claim}")
        except ApiError as exc:
            if exc.status != 404:
                raise
            confirmed.append((volume, claim, problem))
            continue
        if (pvc.get("status") or {}).get("phase") != "Bound":
            confirmed.append((volume, claim, f'persistentvolumeclaim "{claim}" is not bound'))
    return confirmed


def mount_failure_message(pod: Obj, missing: list[Unready]) -> str:
    """The kubelet's FailedMount message for the unready claims of ``pod``."""
    namespace = pod["metadata"]["namespace"]
    volumes = " ".join(sorted(v for v, _, _ in missing))
    problems = "; ".join(p for _, _, p in missing)
    return (f"Unable to attach or mount volumes: unmounted volumes=[{volumes}], "
            f"unattached volumes=[{volumes}]: error processing PVC "
            f"{namespace}/{missing[0][1]}: {problems}")
