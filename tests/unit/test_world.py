"""The cache's children: the operator's own delete mark outlives events written before it."""

from __future__ import annotations

from typing import Any

from gpurental.world import World


def pod(rv: str, running: bool, deleting: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "r1", "namespace": "ns", "uid": "pod-1",
                            "resourceVersion": rv,
                            "ownerReferences": [{"controller": True, "uid": "rental-1"}]}
    if deleting:
        meta["deletionTimestamp"] = "2026-06-07T08:00:01Z"
    status: dict[str, Any] = {"phase": "Running" if running else "Pending"}
    if running:
        status["containerStatuses"] = [{"name": "workload", "state": {
            "running": {"startedAt": "2026-06-07T08:00:00Z"}}}]
    return {"metadata": meta, "status": status}


def test_a_status_event_older_than_our_delete_does_not_resurrect_the_pod() -> None:
    world = World()
    world.put_child("Pod", pod("10", running=False))
    world.mark_deleting("Pod", "rental-1")  # the operator's DELETE landed
    world.put_child("Pod", pod("11", running=True))  # the kubelet's patch, written before it
    seen = world.children("rental-1").pod
    assert seen is not None and seen.deleting and not seen.running


def test_a_new_pod_after_the_deleted_one_is_live() -> None:
    world = World()
    world.put_child("Pod", pod("10", running=True))
    world.mark_deleting("Pod", "rental-1")
    world.put_child("Pod", pod("12", running=True), deleted=True)
    fresh = {**pod("20", running=True)}
    fresh["metadata"] = {**fresh["metadata"], "uid": "pod-2"}
    world.put_child("Pod", fresh)
    seen = world.children("rental-1").pod
    assert seen is not None and not seen.deleting and seen.running


def service(rv: str, node_port: int | None = None,
            ingress: list[dict[str, str]] | None = None) -> dict[str, Any]:
    port: dict[str, Any] = {"name": "ssh", "port": 22, "targetPort": "ssh"}
    if node_port:
        port["nodePort"] = node_port
    return {"metadata": {"name": "r1", "namespace": "ns", "resourceVersion": rv,
                         "ownerReferences": [{"controller": True, "uid": "rental-1"}]},
            "spec": {"type": "LoadBalancer", "clusterIP": "10.96.0.9", "ports": [port]},
            "status": {"loadBalancer": {"ingress": ingress or []}}}


def test_services_are_cached_with_the_addresses_kubernetes_gave_them() -> None:
    world = World()
    world.put_child("Service", service("5"))
    seen = world.children("rental-1").service
    assert seen is not None and seen.node_ports == {} and seen.ingress == ()
    world.put_child("Service", service("6", 30222, [{"hostname": "lb.example"}]))
    seen = world.children("rental-1").service
    assert seen is not None
    assert (seen.type, seen.cluster_ip, seen.ports) == ("LoadBalancer", "10.96.0.9",
                                                         (("ssh", 22),))
    assert seen.node_ports == {"ssh": 30222} and seen.ingress == ("lb.example",)
    world.mark_deleting("Service", "rental-1")
    assert world.children("rental-1").service.deleting  # type: ignore[union-attr]
    world.put_child("Service", service("7"), deleted=True)
    assert world.children("rental-1").service is None
