"""The preemption figure (interruptible offers), on the real control plane only.

A node whose GPUs are all rented by interruptible rentals; an on-demand rental arrives. The
figure is the time from its creation to its pod Running, against the same pod (same
PriorityClass, same GPU count) created directly on the same full pool: kube-scheduler's own
preemption (pick the victims, delete them, wait for them to go, bind) is the floor, and the
difference is what the operator adds (seeing the rental, the claim, the pod create, and the
victims' replacements competing for the freed GPUs). Times are the client's wall clock from
just before its POST to the first read that shows the pod Running, polled every 20 ms.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

from .api import Api
from .report import Figure, Report

NAMESPACE = "bench-preempt"
POOL_GPUS = 8
ON_DEMAND_GPUS = 4
OFFERS = """
apiVersion: gpurental.dev/v1alpha1
kind: GpuOffer
metadata: {name: bench-spot}
spec:
  gpu: {product: NVIDIA-GeForce-RTX-4090}
  pricePerGpuHour: "0.25"
  interruptible: true
---
apiVersion: gpurental.dev/v1alpha1
kind: GpuOffer
metadata: {name: bench-ondemand}
spec:
  gpu: {product: NVIDIA-GeForce-RTX-4090}
  pricePerGpuHour: "0.69"
"""
NODES = [f"gpu-pool=NVIDIA-GeForce-RTX-4090:{POOL_GPUS}"]
ON_DEMAND_CLASS, INTERRUPTIBLE_CLASS = "gpurental-on-demand", "gpurental-interruptible"
PRIORITY_CLASSES = f"""
apiVersion: scheduling.k8s.io/v1
kind: PriorityClass
metadata: {{name: {ON_DEMAND_CLASS}}}
value: 0
preemptionPolicy: PreemptLowerPriority
---
apiVersion: scheduling.k8s.io/v1
kind: PriorityClass
metadata: {{name: {INTERRUPTIBLE_CLASS}}}
value: -1000
preemptionPolicy: Never
"""
OPERATOR_ARGS = ("--on-demand-priority-class", ON_DEMAND_CLASS,
                 "--interruptible-priority-class", INTERRUPTIBLE_CLASS)


async def _pod_phase(api: Api, name: str) -> str | None:
    body = await api.call("GET", f"/api/v1/namespaces/{NAMESPACE}/pods/{name}", ok=(200, 404))
    if not body or body.get("kind") != "Pod":
        return None
    return str((body.get("status") or {}).get("phase"))


async def _until_running(api: Api, name: str, patience: float = 120.0) -> float:
    started = time.monotonic()
    while await _pod_phase(api, name) != "Running":
        if time.monotonic() - started > patience:
            raise TimeoutError(f"pod {name} not Running after {patience:.0f}s")
        await asyncio.sleep(0.02)
    return time.monotonic()


async def _pool_full(api: Api, spots: list[str]) -> None:
    """Every interruptible rental runs: the pool has no free GPU."""
    deadline = time.monotonic() + 180
    while True:
        phases = [await _pod_phase(api, name) for name in spots]
        if all(p == "Running" for p in phases):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"the pool did not fill: {phases}")
        await asyncio.sleep(0.2)


def _direct_pod(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"priorityClassName": ON_DEMAND_CLASS,
                     "nodeSelector": {"nvidia.com/gpu.product": "NVIDIA-GeForce-RTX-4090"},
                     "terminationGracePeriodSeconds": 0,
                     "containers": [{"name": "workload", "image": "busybox:1.36",
                                     "resources": {"limits": {
                                         "nvidia.com/gpu": str(ON_DEMAND_GPUS)}}}]}}


async def _gone(api: Api, path: str) -> None:
    deadline = time.monotonic() + 120
    while (await api.call("GET", path, ok=(200, 404)) or {}).get("kind") not in (None, "Status"):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} still there")
        await asyncio.sleep(0.1)


async def measure(api: Api, report: Report, rounds: int) -> None:
    await api.namespace(NAMESPACE)
    spots = [f"spot-{i}" for i in range(POOL_GPUS)]
    for name in spots:
        await api.create_rental(NAMESPACE, name, offer="bench-spot")
    rental_times, direct_times = [], []
    for round_ in range(rounds):
        await _pool_full(api, spots)
        name = f"ondemand-{round_}"
        started = time.monotonic()
        await api.create_rental(NAMESPACE, name, offer="bench-ondemand", gpus=ON_DEMAND_GPUS)
        rental_times.append(await _until_running(api, name) - started)
        await api.set_state(NAMESPACE, name, "Stopped")
        await _gone(api, f"/api/v1/namespaces/{NAMESPACE}/pods/{name}")

        await _pool_full(api, spots)  # the victims resumed: full again
        pod = f"direct-{round_}"
        started = time.monotonic()
        await api.call("POST", f"/api/v1/namespaces/{NAMESPACE}/pods", _direct_pod(pod))
        direct_times.append(await _until_running(api, pod) - started)
        await api.call("DELETE", f"/api/v1/namespaces/{NAMESPACE}/pods/{pod}")
        await _gone(api, f"/api/v1/namespaces/{NAMESPACE}/pods/{pod}")
    rental, direct = statistics.median(rental_times), statistics.median(direct_times)
    report.add(Figure("preemption_on_demand_rental_until_running", rental, "s", direct,
                      f"median of {rounds}; {ON_DEMAND_GPUS} of {POOL_GPUS} GPUs, pool full "
                      "of interruptible rentals", measured_limit=True))
    report.add(Figure("preemption_direct_pod_until_running", direct, "s", None,
                      "the same pod created directly: kube-scheduler's preemption, the floor"))
