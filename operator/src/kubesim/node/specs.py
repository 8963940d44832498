"""What a simulated node is made of: its taints, GPUs, capacity and labels."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from .objects import GPU_RESOURCE, Obj
from .quantities import parse_quantity


@dataclass(frozen=True)
class Taint:
    """A node taint; ``parse("nvidia.com/gpu=present:NoSchedule")``."""

    key: str
    value: str
    effect: str

    @classmethod
    def parse(cls, text: str) -> Taint:
        """Parse ``KEY[=VALUE]:EFFECT`` (the ``kubectl taint`` syntax)."""
        keyval, sep, effect = text.rpartition(":")
        if not sep or effect not in ("NoSchedule", "PreferNoSchedule", "NoExecute"):
            raise ValueError(f"taint {text!r} must look like KEY[=VALUE]:NoSchedule|NoExecute|...")
        key, _, value = keyval.partition("=")
        if not key:
            raise ValueError(f"taint {text!r} has no key")
        return cls(key, value, effect)

    def to_api(self) -> Obj:
        out: Obj = {"key": self.key, "effect": self.effect}
        if self.value:
            out["value"] = self.value
        return out


@dataclass
class NodeSpec:
    """One simulated node: ``NodeSpec.parse("gpu-1=NVIDIA-A100-SXM4-80GB:8[:RESOURCE]")``."""

    name: str
    product: str
    count: int
    resource: str = GPU_RESOURCE
    taints: list[Taint] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    cpu: str = "64"
    memory: str = "512Gi"
    pods: int = 110

    @classmethod
    def parse(cls, text: str) -> NodeSpec:
        """Parse the ``--node NAME=PRODUCT:COUNT[:RESOURCE]`` syntax."""
        name, sep, rest = text.partition("=")
        parts = rest.split(":")
        if not name or not sep or len(parts) not in (2, 3) or not parts[0]:
            raise ValueError(f"node {text!r} must look like NAME=PRODUCT:COUNT[:RESOURCE]")
        try:
            count = int(parts[1])
        except ValueError:
            raise ValueError(f"node {text!r}: COUNT must be an integer") from None
        resource = parts[2] if len(parts) == 3 and parts[2] else GPU_RESOURCE
        return cls(name=name, product=parts[0], count=count, resource=resource)

    def allocatable(self) -> dict[str, Decimal]:
        return {
            "cpu": parse_quantity(self.cpu),
            "memory": parse_quantity(self.memory),
            "ephemeral-storage": parse_quantity("1Ti"),
            "pods": Decimal(self.pods),
            self.resource: Decimal(self.count),
        }

    def node_labels(self) -> dict[str, str]:
        labels = {
            "kubernetes.io/hostname": self.name,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64",
            "nvidia.com/gpu.present": "true",
            "nvidia.com/gpu.product": self.product,
            "nvidia.com/gpu.count": str(self.count),
        }
        if self.resource.startswith("nvidia.com/mig-"):
            labels["nvidia.com/mig.strategy"] = "mixed"
            labels[f"{self.resource}.count"] = str(self.count)
        labels.update(self.labels)
        return labels


def as_specs(nodes: Iterable[NodeSpec | str]) -> list[NodeSpec]:
    specs = [n if isinstance(n, NodeSpec) else NodeSpec.parse(n) for n in nodes]
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate node names in {names}")
    return specs
