"""Resource quantities and the requests of a pod, as kube-scheduler and the kubelet count them."""

from __future__ import annotations

import contextlib
import re
from decimal import Decimal

from .objects import Obj

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {"n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": Decimal(1),
            "k": Decimal("1e3"), "M": Decimal("1e6"), "G": Decimal("1e9"), "T": Decimal("1e12"),
            "P": Decimal("1e15"), "E": Decimal("1e18")}
_QUANTITY = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)([a-zA-Z]{0,2})$")


def parse_quantity(value: object) -> Decimal:
    """Parse a Kubernetes resource quantity (``500m``, ``2Gi``, ``1e3``, ``8``) into a Decimal."""
    match = _QUANTITY.match(str(value).strip())
    if not match:
        raise ValueError(f"invalid quantity {value!r}")
    number, suffix = Decimal(match.group(1)), match.group(2)
    if suffix in _BINARY:
        return number * _BINARY[suffix]
    if suffix in _DECIMAL:
        return number * _DECIMAL[suffix]
    raise ValueError(f"invalid quantity suffix in {value!r}")


def _is_checked_resource(name: str) -> bool:
    """Resources the NodeResourcesFit filter compares: the basic ones and extended resources."""
    return name in ("cpu", "memory", "ephemeral-storage") or (
        "/" in name and not name.startswith(("kubernetes.io/", "requests.", "hugepages-"))
    )


def pod_requests(pod: Obj) -> dict[str, Decimal]:
    """Effective requests of a pod, as the scheduler computes them.

    A resource given only in ``limits`` counts as requested at its limit (the API server defaults
    requests to limits, and extended resources such as GPUs may only be given as limits).
    Init containers run one at a time, so they count with their maximum, not their sum.
    """
    spec = pod.get("spec") or {}
    total: dict[str, Decimal] = {}
    for container in spec.get("containers") or []:
        for name, amount in _container_requests(container).items():
            total[name] = total.get(name, Decimal(0)) + amount
    for container in spec.get("initContainers") or []:
        for name, amount in _container_requests(container).items():
            total[name] = max(total.get(name, Decimal(0)), amount)
    return total


def _container_requests(container: Obj) -> dict[str, Decimal]:
    resources = container.get("resources") or {}
    merged = dict(resources.get("limits") or {})
    merged.update(resources.get("requests") or {})
    out: dict[str, Decimal] = {}
    for name, value in merged.items():
        if _is_checked_resource(name):
            with contextlib.suppress(ValueError):
                out[name] = parse_quantity(value)
    return out
