"""pods/log: what `kubectl logs` gets, with the apiserver's answers for pods not yet running.

There is no container runtime: a running container's log is the text the simulated kubelet
(or a test) puts in the pod annotation `kubesim.dev/log` (empty when absent).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .errors import ApiError, bad_request

LOG_ANNOTATION = "kubesim.dev/log"


def _container(pod: dict[str, Any], name: str | None) -> str:
    containers = [c.get("name", "") for c in (pod.get("spec") or {}).get("containers") or []]
    pod_name = pod["metadata"]["name"]
    if name:
        if name not in containers:
            raise bad_request(f"container {name} is not valid for pod {pod_name}")
        return name
    if len(containers) != 1:
        raise bad_request(f"a container name must be specified for pod {pod_name}, choose one "
                          f"of: [{' '.join(containers)}]")
    return containers[0]


def pod_log(pod: dict[str, Any], query: Mapping[str, str]) -> bytes:
    """The log text, or a 400 like the apiserver's when the container has not started."""
    name = _container(pod, query.get("container"))
    pod_name = pod["metadata"]["name"]
    statuses = {c.get("name"): c for c in (pod.get("status") or {}).get("containerStatuses")
                or []}
    state = (statuses.get(name) or {}).get("state") or {}
    if "running" not in state and "terminated" not in state:
        reason = (state.get("waiting") or {}).get("reason") or "ContainerCreating"
        raise ApiError(400, "BadRequest",
                       f'container "{name}" in pod "{pod_name}" is waiting to start: {reason}')
    text = str(((pod["metadata"].get("annotations") or {}).get(LOG_ANNOTATION)) or "")
    tail = query.get("tailLines")
    if tail and tail.lstrip("-").isdigit():
        lines = text.splitlines(keepends=True)
        text = "".join(lines[-int(tail):]) if int(tail) > 0 else ""
    return text.encode()
