"""The kubelet's own admission check (GeneralPredicates) against the pods it already runs.

Scheduled pods always fit; this matters for pods bound by hand (``spec.nodeName``), which a
real kubelet rejects with ``OutOf<resource>`` when the node is full.
"""

from __future__ import annotations

from decimal import Decimal

from .objects import Obj
from .quantities import pod_requests
from .state import NodeState, Usage


def admission_failure(requests: dict[str, Decimal], admitted: Usage,
                      allocatable: dict[str, Decimal]) -> tuple[str, str] | None:
    """(reason, message) when the pod does not fit next to the admitted pods, as kubelet says."""
    def refuse(name: str, wanted: Decimal, used: Decimal, capacity: Decimal) -> tuple[str, str]:
        scale = 1000 if name == "cpu" else 1  # kubelet reports cpu in millicores
        return (f"OutOf{name}", f"Node didn't have enough resource: {name}, requested: "
                f"{int(wanted * scale)}, used: {int(used * scale)}, capacity: "
                f"{int(capacity * scale)}")

    if len(admitted.pods) + 1 > allocatable["pods"]:
        return refuse("pods", Decimal(1), Decimal(len(admitted.pods)), allocatable["pods"])
    basic = [n for n in ("cpu", "memory", "ephemeral-storage") if n in requests]
    for name in basic + sorted(set(requests) - set(basic)):
        used = admitted.used.get(name, Decimal(0))
        capacity = allocatable.get(name, Decimal(0))
        if requests[name] > 0 and requests[name] + used > capacity:
            return refuse(name, requests[name], used, capacity)
    return None


class Admitted:
    """The pods each node's kubelet accepted, so that their requests count until they end."""

    def __init__(self) -> None:
        self._by_node: dict[str, Usage] = {}  # node -> pods the kubelet accepted
        self._node_of: dict[str, str] = {}  # uid -> node

    def admit(self, pod: Obj, node: NodeState, *, force: bool = False) -> tuple[str, str] | None:
        """Accept ``pod`` on ``node``, or return (reason, message) when it does not fit.

        ``force`` accepts it regardless: a pod already running when the simulator started.
        """
        uid = str(pod["metadata"]["uid"])
        admitted = self._by_node.setdefault(node.spec.name, Usage())
        if uid in admitted.pods:
            return None
        requests = pod_requests(pod)
        if not force:
            rejection = admission_failure(requests, admitted, node.allocatable)
            if rejection is not None:
                return rejection
        admitted.add(uid, requests)
        self._node_of[uid] = node.spec.name
        return None

    def release(self, uid: str) -> None:
        """The pod ended or is gone: its requests no longer count."""
        node = self._node_of.pop(uid, None)
        if node is not None:
            self._by_node[node].remove(uid)
