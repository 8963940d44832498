"""What is placed where: the requests of a set of pods and the live view of each node."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from .objects import Obj
from .specs import NodeSpec, Taint


@dataclass(kw_only=True)
class Usage:
    """The requests of a set of pods (by uid) and their running sum."""

    pods: dict[str, dict[str, Decimal]] = field(default_factory=dict)
    used: dict[str, Decimal] = field(default_factory=dict)

    def add(self, uid: str, requests: dict[str, Decimal]) -> None:
        if uid in self.pods:
            return
        self.pods[uid] = requests
        for name, amount in requests.items():
            self.used[name] = self.used.get(name, Decimal(0)) + amount

    def remove(self, uid: str) -> bool:
        requests = self.pods.pop(uid, None)
        if requests is None:
            return False
        for name, amount in requests.items():
            self.used[name] = self.used.get(name, Decimal(0)) - amount
        return True


@dataclass
class NodeState(Usage):
    """The scheduler's view of one simulated node: allocatable and what bound pods use."""

    spec: NodeSpec
    index: int
    allocatable: dict[str, Decimal]
    next_ip: int = 2
    # What the scheduler filters on; starts from the spec and follows the live Node object,
    # so `kubectl cordon`, `kubectl taint` and `kubectl label` take effect.
    labels: dict[str, str] = field(default_factory=dict)
    taints: list[Taint] = field(default_factory=list)
    unschedulable: bool = False

    def __post_init__(self) -> None:
        self.labels = self.labels or self.spec.node_labels()
        self.taints = self.taints or list(self.spec.taints)

    def observe(self, node: Obj) -> bool:
        """Take labels, taints and cordon from the live Node; True when any changed."""
        spec = node.get("spec") or {}
        labels = dict((node.get("metadata") or {}).get("labels") or {})
        taints = [Taint(t.get("key", ""), t.get("value") or "", t.get("effect", ""))
                  for t in spec.get("taints") or []]
        unschedulable = bool(spec.get("unschedulable"))
        changed = (labels, taints, unschedulable) != (self.labels, self.taints,
                                                      self.unschedulable)
        self.labels, self.taints, self.unschedulable = labels, taints, unschedulable
        return changed

    @property
    def host_ip(self) -> str:
        return f"192.168.{self.index // 250}.{self.index % 250 + 2}"

    def allocate_pod_ip(self) -> str:
        ip = f"10.{244 + self.index // 256}.{self.index % 256}.{self.next_ip}"
        self.next_ip = self.next_ip + 1 if self.next_ip < 254 else 2
        return ip
