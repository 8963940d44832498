"""The pod statuses the kubelet writes: Pending with waiting containers, Running, Succeeded.

Pure functions of the pod and the node: the kubelet decides when to write which one.
"""

from __future__ import annotations

from .images import full_image_ref
from .objects import Obj, rfc3339, sha256_hex
from .state import NodeState


def qos_class(pod: Obj) -> str:
    """The pod's QoS class; like the kubelet, only cpu and memory count (GPUs do not)."""
    containers = (pod.get("spec") or {}).get("containers") or []
    limits_all, any_set = True, False
    for container in containers:
        res = container.get("resources") or {}
        requests, limits = res.get("requests") or {}, res.get("limits") or {}
        any_set = any_set or any(k in ("cpu", "memory") for k in [*requests, *limits])
        for name in ("cpu", "memory"):
            if name not in limits or requests.get(name, limits[name]) != limits[name]:
                limits_all = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if limits_all else "Burstable"


def conditions(pod: Obj, *, ready: bool, not_ready: Obj | None = None,
               ready_to_start: bool = True) -> list[Obj]:
    """The five pod conditions; each keeps its lastTransitionTime while its status holds."""
    now = rfc3339()
    existing = {c.get("type"): c for c in (pod.get("status") or {}).get("conditions") or []}

    def cond(kind: str, ok: bool, extra: Obj | None = None) -> Obj:
        status = "True" if ok else "False"
        old = existing.get(kind) or {}
        since = old.get("lastTransitionTime") if old.get("status") == status else None
        out: Obj = {"type": kind, "status": status, "lastProbeTime": None,
                    "lastTransitionTime": since or now}
        # Explicit nulls: the patch is strategic (merged by type), and a condition that
        # turned True must lose the reason and message it had while False.
        if not ok and extra:
            out.update(reason=extra["reason"], message=extra["message"])
        else:
            out.update(reason=None, message=None)
        return out

    return [cond("PodReadyToStartContainers", ready_to_start),
            cond("Initialized", True),
            cond("Ready", ready, not_ready),
            cond("ContainersReady", ready, not_ready),
            cond("PodScheduled", True)]


def pending_status(pod: Obj, node: NodeState, start_time: str, waiting: Obj, *,
                   only: str | None = None, ready_to_start: bool = True) -> Obj:
    """A Pending status whose containers wait (``only`` one with ``waiting``)."""
    statuses = []
    for container in pod["spec"].get("containers") or []:
        reason = waiting if only in (None, container["name"]) else {
            "reason": "ContainerCreating"}
        statuses.append({"name": container["name"], "image": container.get("image", ""),
                         "imageID": "", "ready": False, "restartCount": 0,
                         "started": False, "lastState": {}, "state": {"waiting": reason}})
    not_ready = {"status": "False", "reason": "ContainersNotReady",
                 "message": "containers with unready status: ["
                 + " ".join(s["name"] for s in statuses) + "]"}
    return {"phase": "Pending",
            "conditions": conditions(pod, ready=False, not_ready=not_ready,
                                     ready_to_start=ready_to_start),
            "hostIP": node.host_ip, "hostIPs": [{"ip": node.host_ip}], "startTime": start_time,
            "containerStatuses": statuses, "qosClass": qos_class(pod)}


def running_status(pod: Obj, node: NodeState, pod_ip: str, start_time: str,
                   started: str) -> Obj:
    """The Running status: every container running since ``started``, init containers done."""
    uid = str(pod["metadata"]["uid"])
    containers = pod["spec"].get("containers") or []
    status: Obj = {
        "phase": "Running", "conditions": conditions(pod, ready=True),
        "hostIP": node.host_ip, "hostIPs": [{"ip": node.host_ip}],
        "podIP": pod_ip, "podIPs": [{"ip": pod_ip}], "startTime": start_time,
        "containerStatuses": [_container_running(uid, c, started) for c in containers],
        "qosClass": qos_class(pod),
    }
    inits = pod["spec"].get("initContainers") or []
    if inits:
        status["initContainerStatuses"] = [_init_container_done(c, started) for c in inits]
    return status


def _container_running(uid: str, container: Obj, started: str) -> Obj:
    image = container.get("image", "")
    ref = full_image_ref(image)
    return {"name": container["name"], "image": ref,
            "imageID": f"{ref.split('@')[0].rsplit(':', 1)[0]}@sha256:{sha256_hex(ref)}",
            "containerID": f"containerd://{sha256_hex(uid + container['name'])}",
            "ready": True, "started": True, "restartCount": 0, "lastState": {},
            "state": {"running": {"startedAt": started}}}


def _init_container_done(container: Obj, started: str) -> Obj:
    ref = full_image_ref(container.get("image", ""))
    return {"name": container["name"], "image": ref,
            "imageID": f"{ref}@sha256:{sha256_hex(ref)}",
            "ready": True, "started": False, "restartCount": 0, "lastState": {},
            "state": {"terminated": {"exitCode": 0, "reason": "Completed",
                                     "startedAt": started, "finishedAt": started}}}


def succeeded_status(pod: Obj, finished: str) -> Obj:
    """The status of a pod whose containers were stopped at ``finished`` (exit code 0)."""
    statuses = []
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        running = (cs.get("state") or {}).get("running") or {}
        terminated = {"exitCode": 0, "reason": "Completed", "finishedAt": finished,
                      "startedAt": running.get("startedAt", finished)}
        if cs.get("containerID"):
            terminated["containerID"] = cs["containerID"]
        statuses.append({**cs, "ready": False, "started": False,
                         "state": {"terminated": terminated}})
    not_ready = {"reason": "PodCompleted", "message": ""}
    return {"phase": "Succeeded", "containerStatuses": statuses,
            "conditions": conditions(pod, ready=False, not_ready=not_ready,
                                     ready_to_start=False)}


def rejected_status(pod: Obj, reason: str, message: str) -> Obj:
    """The status of a pod the kubelet refused to admit."""
    return {"phase": "Failed", "reason": reason, "message": f"Pod was rejected: {message}",
            "qosClass": qos_class(pod)}
