"""The simulated GPU node (kubesim.node): scheduler, kubelet and PVC provisioner over HTTP.

Expected messages and fields are those of kube-scheduler and the kubelet (FitError text,
PodScheduled/Ready conditions, containerStatuses, Events), so the operator sees here what it
would see on a cluster.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from kubernetes import client

from kubesim.node import (
    FilterResult,
    NodeSpec,
    SimulatedNodesThread,
    Taint,
    full_image_ref,
    matches_node_selector,
    parse_quantity,
    pod_requests,
    unschedulable_message,
    untolerated_taint,
)

RFC3339_SECONDS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
A100 = "NVIDIA-A100-SXM4-80GB"
H100 = "NVIDIA-H100-80GB-HBM3"

Nodes = Callable[..., SimulatedNodesThread]


# -- helpers -----------------------------------------------------------------------------------


def wait_for(predicate: Callable[[], Any], timeout: float = 30.0,
             message: str = "condition") -> Any:
    """Poll until ``predicate`` returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}; last: {last!r}")


def core_api(api: client.ApiClient) -> Any:
    """CoreV1Api, untyped: the tests pass plain dicts and read raw JSON responses."""
    return client.CoreV1Api(api)


def gpu_pod(name: str, gpus: int = 1, resource: str = "nvidia.com/gpu", *,
            image: str = "pytorch/pytorch:2.4.0", **spec: Any) -> dict[str, Any]:
    """A pod shaped like the operator's: GPUs in limits only."""
    container = {"name": "main", "image": image, "command": ["sleep", "infinity"],
                 "resources": {"limits": {resource: str(gpus)}}}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [container], "restartPolicy": "Never", **spec}}


def create_pod(api: client.ApiClient, namespace: str, body: dict[str, Any]) -> None:
    core_api(api).create_namespaced_pod(namespace, body)


def read_pod(api: client.ApiClient, namespace: str, name: str) -> dict[str, Any]:
    """The pod as JSON (as the API returns it, not the client's models)."""
    resp = core_api(api).read_namespaced_pod(name, namespace, _preload_content=False)
    return dict(json.loads(resp.data))


def pod_or_none(api: client.ApiClient, namespace: str, name: str) -> dict[str, Any] | None:
    try:
        return read_pod(api, namespace, name)
    except client.ApiException as exc:
        if exc.status == 404:
            return None
        raise


def condition(pod: dict[str, Any], kind: str) -> dict[str, Any] | None:
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind:
            return dict(cond)
    return None


def wait_running(api: client.ApiClient, namespace: str, name: str,
                 timeout: float = 30) -> dict[str, Any]:
    return dict(wait_for(
        lambda: (p := read_pod(api, namespace, name))["status"].get("phase") == "Running" and p,
        timeout, message=f"pod {name} Running"))


def wait_unschedulable(api: client.ApiClient, namespace: str, name: str,
                       timeout: float = 30) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        cond = condition(read_pod(api, namespace, name), "PodScheduled")
        return cond if cond and cond.get("reason") == "Unschedulable" else None
    return dict(wait_for(check, timeout, message=f"pod {name} Unschedulable"))


def events_for(api: client.ApiClient, namespace: str, name: str) -> list[dict[str, Any]]:
    resp = core_api(api).list_namespaced_event(
        namespace, field_selector=f"involvedObject.name={name}", _preload_content=False)
    return list(json.loads(resp.data)["items"])


def wait_event(api: client.ApiClient, namespace: str, name: str, reason: str,
               timeout: float = 30) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        found = [e for e in events_for(api, namespace, name) if e.get("reason") == reason]
        return found[0] if found else None
    return dict(wait_for(check, timeout, message=f"{reason} event for {name}"))


def parse_time(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()


# -- pure scheduler logic ----------------------------------------------------------------------


def test_quantities_and_requests_follow_kubernetes_rules() -> None:
    assert parse_quantity("500m") == Decimal("0.5")
    assert parse_quantity("2Gi") == 2 * 2**30
    assert parse_quantity("1e3") == 1000
    pod = gpu_pod("p", 2)
    pod["spec"]["containers"][0]["resources"]["requests"] = {"cpu": "250m"}
    pod["spec"]["initContainers"] = [{"name": "init", "image": "x",
                                      "resources": {"limits": {"nvidia.com/gpu": "1",
                                                               "cpu": "1"}}}]
    # limits-only resources count at their limit; init containers by max, not sum
    assert pod_requests(pod) == {"nvidia.com/gpu": 2, "cpu": 1}


def test_fit_error_message_matches_kube_scheduler_format() -> None:
    message = unschedulable_message([
        FilterResult(["Insufficient nvidia.com/gpu"], unresolvable=False),
        FilterResult(["node(s) didn't match Pod's node affinity/selector"], unresolvable=True),
    ])
    assert message == (
        "0/2 nodes are available: 1 Insufficient nvidia.com/gpu, 1 node(s) didn't match Pod's "
        "node affinity/selector. preemption: 0/2 nodes are available: 1 No preemption victims "
        "found for incoming pod, 1 Preemption is not helpful for scheduling.")


def test_toleration_matching() -> None:
    taint = Taint.parse("nvidia.com/gpu=present:NoSchedule")
    assert untolerated_taint([taint], []) == taint
    assert untolerated_taint([taint], [{"key": "nvidia.com/gpu", "operator": "Exists"}]) is None
    assert untolerated_taint([taint], [{"operator": "Exists"}]) is None
    assert untolerated_taint([taint], [{"key": "nvidia.com/gpu", "value": "present",
                                        "effect": "NoSchedule"}]) is None
    assert untolerated_taint([taint], [{"key": "nvidia.com/gpu", "value": "absent"}]) == taint
    assert untolerated_taint([taint], [{"key": "nvidia.com/gpu", "operator": "Exists",
                                        "effect": "NoExecute"}]) == taint
    # PreferNoSchedule never blocks scheduling
    assert untolerated_taint([Taint.parse("soft:PreferNoSchedule")], []) is None


def test_required_node_affinity_terms() -> None:
    labels = {"nvidia.com/gpu.product": A100, "nvidia.com/gpu.count": "8"}

    def pod(*terms: dict[str, Any]) -> dict[str, Any]:
        return {"spec": {"affinity": {"nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": list(terms)}}}}}

    def expr(key: str, op: str, *values: str) -> dict[str, Any]:
        return {"matchExpressions": [{"key": key, "operator": op, "values": list(values)}]}

    product = "nvidia.com/gpu.product"
    assert matches_node_selector(pod(expr(product, "In", A100, H100)), labels, "n")
    assert not matches_node_selector(pod(expr(product, "NotIn", A100)), labels, "n")
    assert matches_node_selector(pod(expr("nvidia.com/gpu.count", "Gt", "4")), labels, "n")
    assert not matches_node_selector(pod(expr("missing", "Exists")), labels, "n")
    # terms are ORed
    assert matches_node_selector(pod(expr("missing", "Exists"), expr(product, "Exists")),
                                 labels, "n")
    by_name = {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n"]}]}
    assert matches_node_selector(pod(by_name), labels, "n")
    assert not matches_node_selector(pod(by_name), labels, "other")


def test_node_and_image_syntax() -> None:
    spec = NodeSpec.parse("mig-0=NVIDIA-A100-SXM4-80GB:7:nvidia.com/mig-1g.10gb")
    assert (spec.name, spec.product, spec.count, spec.resource) == (
        "mig-0", A100, 7, "nvidia.com/mig-1g.10gb")
    assert NodeSpec.parse("n=P:2").resource == "nvidia.com/gpu"
    with pytest.raises(ValueError):
        NodeSpec.parse("n=P")
    assert full_image_ref("busybox") == "docker.io/library/busybox:latest"
    assert full_image_ref("pytorch/pytorch:2.4.0") == "docker.io/pytorch/pytorch:2.4.0"
    assert full_image_ref("ghcr.io/x/y") == "ghcr.io/x/y:latest"


# -- against the emulator ----------------------------------------------------------------------


def test_registers_nodes_with_gpu_capacity_labels_and_taints(
        sim_api: client.ApiClient, simulated_nodes: Nodes) -> None:
    spec = NodeSpec.parse(f"gpu={H100}:4")
    spec.taints.append(Taint.parse("nvidia.com/gpu=present:NoSchedule"))
    sim = simulated_nodes(spec)
    name = sim.sim.specs[0].name
    resp = core_api(sim_api).read_node(name, _preload_content=False)
    node = json.loads(resp.data)
    assert node["status"]["capacity"]["nvidia.com/gpu"] == "4"
    assert node["status"]["allocatable"]["nvidia.com/gpu"] == "4"
    assert {"cpu", "memory", "pods"} <= set(node["status"]["allocatable"])
    labels = node["metadata"]["labels"]
    assert labels["nvidia.com/gpu.product"] == H100
    assert labels["nvidia.com/gpu.count"] == "4"
    assert labels["kubernetes.io/hostname"] == name
    ready = [c for c in node["status"]["conditions"] if c["type"] == "Ready"]
    assert ready and ready[0]["status"] == "True"
    # The node-lifecycle controller may add node.kubernetes.io/* taints of its own for a moment.
    assert [t for t in node["spec"]["taints"] if not t["key"].startswith("node.kubernetes.io/")
            ] == [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}]


def test_pod_that_fits_is_bound_and_runs_like_on_a_kubelet(
        sim_api: client.ApiClient, sim_namespace: str, simulated_nodes: Nodes) -> None:
    sim = simulated_nodes(f"a100={A100}:4")
    node_name = sim.sim.specs[0].name
    before = time.time()
    create_pod(sim_api, sim_namespace, gpu_pod("train", 2))
    pod = wait_running(sim_api, sim_namespace, "train")
    after = time.time()

    assert pod["spec"]["nodeName"] == node_name
    for kind in ("PodScheduled", "Initialized", "ContainersReady", "Ready"):
        assert (condition(pod, kind) or {}).get("status") == "True", kind
    status = pod["status"]
    (container,) = status["containerStatuses"]
    started = container["state"]["running"]["startedAt"]
    assert RFC3339_SECONDS.match(started), started
    assert int(before) <= parse_time(started) <= after + 1
    assert container["ready"] is True and container["restartCount"] == 0
    assert RFC3339_SECONDS.match(status["startTime"])
    assert status["hostIP"] and status["podIP"]
    assert status["qosClass"] == "BestEffort"  # QoS only counts cpu and memory, not GPUs
    scheduled = wait_event(sim_api, sim_namespace, "train", "Scheduled")
    # kube-scheduler reports through events.k8s.io: the core view names its reportingComponent.
    assert scheduled["reportingComponent"] == "default-scheduler"
    assert scheduled["message"] == f"Successfully assigned {sim_namespace}/train to {node_name}"
    started_event = wait_event(sim_api, sim_namespace, "train", "Started")
    assert started_event["source"]["component"] == "kubelet"


def test_unschedulable_pod_gets_the_scheduler_message_and_event(
        sim_api: client.ApiClient, sim_namespace: str, simulated_nodes: Nodes) -> None:
    simulated_nodes(f"a100={A100}:2", f"h100={H100}:8")
    selector = {"nvidia.com/gpu.product": A100}
    create_pod(sim_api, sim_namespace, gpu_pod("first", 1, nodeSelector=selector))
    wait_running(sim_api, sim_namespace, "first")
    create_pod(sim_api, sim_namespace, gpu_pod("second", 2, nodeSelector=selector))

    cond = wait_unschedulable(sim_api, sim_namespace, "second")
    expected = ("0/2 nodes are available: 1 Insufficient nvidia.com/gpu, 1 node(s) didn't match "
                "Pod's node affinity/selector. preemption: 0/2 nodes are available: 1 No "
                "preemption victims found for incoming pod, 1 Preemption is not helpful for "
                "scheduling.")
    assert cond["status"] == "False"
    assert cond["message"] == expected
    pod = read_pod(sim_api, sim_namespace, "second")
    assert pod["status"]["phase"] == "Pending" and not pod["spec"].get("nodeName")
    event = wait_event(sim_api, sim_namespace, "second", "FailedScheduling")
    assert event["type"] == "Warning"
    assert event["message"] == expected
    assert event["reportingComponent"] == "default-scheduler"


def test_deleting_a_pod_frees_its_gpus_for_a_pending_pod(
        sim_api: client.ApiClient, sim_namespace: str, simulated_nodes: Nodes) -> None:
    simulated_nodes(f"one={A100}:1")
    create_pod(sim_api, sim_namespace, gpu_pod("holder", 1))
    wait_running(sim_api, sim_namespace, "holder")
    create_pod(sim_api, sim_namespace, gpu_pod("waiter", 1))
    wait_unschedulable(sim_api, sim_namespace, "waiter")

    core_api(sim_api).delete_namespaced_pod("holder", sim_namespace)
    wait_for(lambda: pod_or_none(sim_api, sim_namespace, "holder") is None, 30,
             message="the kubelet to remove the deleted pod")
    pod = wait_running(sim_api, sim_namespace, "waiter")
    assert (condition(pod, "PodScheduled") or {}).get("status") == "True"


def test_kubelet_frees_a_terminated_pods_gpus_before_reporting_it_succeeded(
        sim_emulator: Any, sim_api: client.ApiClient, sim_namespace: str,
        simulated_nodes: Nodes) -> None:
    """kube-scheduler drops a pod the moment it reads Succeeded and may bind the next pod
    before the kubelet hears its own status write answered: the kubelet must not still count
    the finished pod then. Holding that answer back makes the race certain."""
    simulated_nodes(f"one={A100}:1")
    create_pod(sim_api, sim_namespace, gpu_pod("holder", 1))
    wait_running(sim_api, sim_namespace, "holder")
    create_pod(sim_api, sim_namespace, gpu_pod("waiter", 1))
    wait_unschedulable(sim_api, sim_namespace, "waiter")
    admin(sim_emulator.url, "POST", {"verb": "patch", "resource": "pods",
                                     "namespace": sim_namespace, "response_latency_ms": 3000,
                                     "count": 1})
    try:
        core_api(sim_api).delete_namespaced_pod("holder", sim_namespace)
        pod = wait_for(lambda: (p := read_pod(sim_api, sim_namespace, "waiter"))["status"].get(
            "phase") in ("Running", "Failed") and p, 30, message="waiter Running or Failed")
        assert pod["status"]["phase"] == "Running", pod["status"]
    finally:
        admin(sim_emulator.url, "DELETE")


def test_graceful_deletion_is_finished_by_the_kubelet(
        sim_api: client.ApiClient, sim_namespace: str, simulated_nodes: Nodes) -> None:
    """A pod kept by a finalizer shows its containers terminated once it is being deleted."""
    simulated_nodes(f"one={A100}:1")
    body = gpu_pod("kept", 1)
    body["metadata"]["finalizers"] = ["example.com/keep"]
    create_pod(sim_api, sim_namespace, body)
    running = wait_running(sim_api, sim_namespace, "kept")
    started = running["status"]["containerStatuses"][0]["state"]["running"]["startedAt"]
    core = core_api(sim_api)
    core.delete_namespaced_pod("kept", sim_namespace)

    def terminated() -> dict[str, Any] | None:
        pod = read_pod(sim_api, sim_namespace, "kept")
        state = pod["status"]["containerStatuses"][0]["state"]
        return state.get("terminated")

    state = wait_for(terminated, 30, message="container terminated")
    assert state["startedAt"] == started
    assert RFC3339_SECONDS.match(state["finishedAt"])
    core.patch_namespaced_pod("kept", sim_namespace, {"metadata": {"finalizers": None}})
    wait_for(lambda: pod_or_none(sim_api, sim_namespace, "kept") is None, 30,
             message="pod gone once its finalizer is removed")


def test_a_pod_deleted_while_its_start_is_in_flight_ends_with_its_containers_terminated(
        sim_emulator: Any, sim_api: client.ApiClient, sim_namespace: str,
        simulated_nodes: Nodes) -> None:
    """A kubelet runs one pod's syncs one at a time: a deletion that lands while the start's
    Running write is still on its way is handled after it, so the pod's last status has
    terminated containers (an operator closes its meter at their finishedAt). Holding the
    kubelet's first status write back makes the race certain."""
    admin(sim_emulator.url, "POST", {"verb": "patch", "resource": "pods",
                                     "namespace": sim_namespace, "latency_ms": 1500,
                                     "count": 1})
    try:
        simulated_nodes(f"one={A100}:1")
        body = gpu_pod("raced", 1)
        body["metadata"]["finalizers"] = ["example.com/keep"]
        create_pod(sim_api, sim_namespace, body)
        wait_for(lambda: read_pod(sim_api, sim_namespace, "raced")["spec"].get("nodeName"), 30,
                 message="the pod bound")
        assert not read_pod(sim_api, sim_namespace, "raced")["status"].get("containerStatuses")
        core = core_api(sim_api)
        core.delete_namespaced_pod("raced", sim_namespace)
        pod = wait_for(lambda: (p := read_pod(sim_api, sim_namespace, "raced"))["status"].get(
            "phase") == "Succeeded" and p, 30, message="the pod Succeeded")
        (status,) = pod["status"]["containerStatuses"]
        terminated = status["state"]["terminated"]
        assert parse_time(terminated["startedAt"]) <= parse_time(terminated["finishedAt"])
        assert "containerID" in terminated, terminated
    finally:
        admin(sim_emulator.url, "DELETE")
    core.patch_namespaced_pod("raced", sim_namespace, {"metadata": {"finalizers": None}})
    wait_for(lambda: pod_or_none(sim_api, sim_namespace, "raced") is None, 30,
             message="pod gone once its finalizer is removed")


def test_mig_slices_are_a_resource_of_their_own(
        sim_api: client.ApiClient, sim_namespace: str, simulated_nodes: Nodes) -> None:
    sim = simulated_nodes(f"mig={A100}:7:nvidia.com/mig-1g.10gb")
    node = json.loads(core_api(sim_api).read_node(
        sim.sim.specs[0].name, _preload_content=False).data)
    assert node["status"]["allocatable"]["nvidia.com/mig-1g.10gb"] == "7"
    assert "nvidia.com/gpu" not in node["status"]["allocatable"]

    create_pod(sim_api, sim_namespace, gpu_pod("slice", 3, "nvidia.com/mig-1g.10gb"))
    wait_running(sim_api, sim_namespace, "slice")
    create_pod(sim_api, sim_namespace, gpu_pod("whole", 1))
    cond = wait_unschedulable(sim_api, sim_namespace, "whole")
    assert cond["message"] == (
        "0/1 nodes are available: 1 Insufficient nvidia.com/gpu. preemption: 0/1 nodes are "
        "available: 1 Preemption is not helpful for scheduling.")
    create_pod(sim_api, sim_namespace, gpu_pod("too-many", 5, "nvidia.com/mig-1g.10gb"))
    cond = wait_unschedulable(sim_api, sim_namespace, "too-many")
    assert cond["message"] == (
        "0/1 nodes are available: 1 Insufficient nvidia.com/mig-1g.10gb. preemption: 0/1 nodes "
        "are available: 1 No preemption victims found for incoming pod.")


def test_taints_keep_pods_without_a_matching_toleration_away(
        sim_api: client.ApiClient, sim_namespace: str, simulated_nodes: Nodes) -> None:
    spec = NodeSpec.parse(f"tainted={H100}:2")
    spec.taints.append(Taint.parse("nvidia.com/gpu=present:NoSchedule"))
    simulated_nodes(spec)
    create_pod(sim_api, sim_namespace, gpu_pod("plain", 1))
    wrong = [{"key": "nvidia.com/gpu", "operator": "Equal", "value": "absent",
              "effect": "NoSchedule"}]
    create_pod(sim_api, sim_namespace, gpu_pod("wrong-value", 1, tolerations=wrong))
    right = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    create_pod(sim_api, sim_namespace, gpu_pod("tolerant", 1, tolerations=right))

    wait_running(sim_api, sim_namespace, "tolerant")
    expected = ("0/1 nodes are available: 1 node(s) had untolerated taint(s). preemption: 0/1 "
                "nodes are available: 1 Preemption is not helpful for scheduling.")
    for name in ("plain", "wrong-value"):
        assert wait_unschedulable(sim_api, sim_namespace, name)["message"] == expected


def test_image_pull_failure_shows_in_container_status_and_events(
        sim_api: client.ApiClient, sim_namespace: str, simulated_nodes: Nodes) -> None:
    simulated_nodes(f"one={A100}:1", pull_fail_images=r"^registry\.invalid/",
                    pull_backoff=0.2)
    create_pod(sim_api, sim_namespace, gpu_pod("bad", 1, image="registry.invalid/no/such:1"))

    def waiting_reason() -> str | None:
        statuses = read_pod(sim_api, sim_namespace, "bad")["status"].get("containerStatuses")
        waiting = (statuses or [{}])[0].get("state", {}).get("waiting") or {}
        return waiting.get("reason") if waiting.get("reason") == "ImagePullBackOff" else None

    wait_for(waiting_reason, 30, message="ImagePullBackOff")
    pod = read_pod(sim_api, sim_namespace, "bad")
    assert pod["status"]["phase"] == "Pending"
    assert (condition(pod, "Ready") or {}).get("status") == "False"
    failed = wait_event(sim_api, sim_namespace, "bad", "Failed")
    assert failed["type"] == "Warning"
    assert failed["source"]["component"] == "kubelet"
    wait_for(lambda: any(
        e["message"].startswith('Failed to pull image "registry.invalid/no/such:1"')
        for e in events_for(sim_api, sim_namespace, "bad") if e["reason"] == "Failed"),
        30, message="the 'Failed to pull image' event")
    wait_event(sim_api, sim_namespace, "bad", "BackOff")


def pvc(name: str, storage_class: str | None = None, size: str = "10Gi") -> dict[str, Any]:
    spec: dict[str, Any] = {"accessModes": ["ReadWriteOnce"],
                            "resources": {"requests": {"storage": size}}}
    if storage_class:
        spec["storageClassName"] = storage_class
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name},
            "spec": spec}


def read_pvc(api: client.ApiClient, namespace: str, name: str) -> dict[str, Any]:
    resp = core_api(api).read_namespaced_persistent_volume_claim(
        name, namespace, _preload_content=False)
    return dict(json.loads(resp.data))


def with_claim(body: dict[str, Any], claim: str) -> dict[str, Any]:
    body["spec"]["volumes"] = [{"name": "workspace", "persistentVolumeClaim": {
        "claimName": claim}}]
    body["spec"]["containers"][0]["volumeMounts"] = [{"name": "workspace",
                                                      "mountPath": "/workspace"}]
    return body


def test_provisioner_binds_claims_and_pods_mount_them(
        sim_api: client.ApiClient, sim_namespace: str, simulated_nodes: Nodes) -> None:
    simulated_nodes(f"one={A100}:1")
    core = core_api(sim_api)
    core.create_namespaced_persistent_volume_claim(sim_namespace, pvc("data", size="50Gi"))
    claim = wait_for(lambda: (c := read_pvc(sim_api, sim_namespace, "data"))["status"].get(
        "phase") == "Bound" and c, 30, message="PVC Bound")
    assert claim["status"]["capacity"]["storage"] == "50Gi"
    assert claim["status"]["accessModes"] == ["ReadWriteOnce"]
    assert claim["spec"]["volumeName"] == f"pvc-{claim['metadata']['uid']}"
    wait_event(sim_api, sim_namespace, "data", "ProvisioningSucceeded")
    create_pod(sim_api, sim_namespace, with_claim(gpu_pod("user", 1), "data"))
    wait_running(sim_api, sim_namespace, "user")


def test_provisioned_volume_is_a_bound_pv_deleted_with_its_claim(
        sim_api: client.ApiClient, sim_namespace: str, simulated_nodes: Nodes) -> None:
    simulated_nodes(f"one={A100}:1")
    core = core_api(sim_api)
    core.create_namespaced_persistent_volume_claim(sim_namespace, pvc("data", size="50Gi"))
    claim = wait_for(lambda: (c := read_pvc(sim_api, sim_namespace, "data"))["status"].get(
        "phase") == "Bound" and c, 30, message="PVC Bound")
    volume = claim["spec"]["volumeName"]
    pv = json.loads(core.read_persistent_volume(volume, _preload_content=False).data)
    assert pv["spec"]["claimRef"]["name"] == "data"
    assert pv["spec"]["claimRef"]["uid"] == claim["metadata"]["uid"]
    assert pv["spec"]["capacity"]["storage"] == "50Gi"
    assert pv["spec"]["persistentVolumeReclaimPolicy"] == "Delete"
    assert pv["status"]["phase"] == "Bound"

    core.delete_namespaced_persistent_volume_claim("data", sim_namespace)

    def volume_gone() -> bool:
        try:
            core.read_persistent_volume(volume)
        except client.ApiException as exc:
            return exc.status == 404
        return False
    wait_for(volume_gone, 30, message="the volume deleted with its claim (reclaim Delete)")


def test_pod_with_a_missing_claim_waits_in_container_creating(
        sim_api: client.ApiClient, sim_namespace: str, simulated_nodes: Nodes) -> None:
    simulated_nodes(f"one={A100}:1")
    create_pod(sim_api, sim_namespace, with_claim(gpu_pod("early", 1), "later"))
    event = wait_event(sim_api, sim_namespace, "early", "FailedMount")
    assert event["type"] == "Warning" and "later" in event["message"]
    pod = read_pod(sim_api, sim_namespace, "early")
    assert pod["status"]["phase"] == "Pending"
    assert pod["status"]["containerStatuses"][0]["state"]["waiting"]["reason"] == (
        "ContainerCreating")

    core_api(sim_api).create_namespaced_persistent_volume_claim(sim_namespace,
                                                                        pvc("later"))
    wait_running(sim_api, sim_namespace, "early")


def test_claim_of_a_failing_storage_class_stays_pending(
        sim_api: client.ApiClient, sim_namespace: str, simulated_nodes: Nodes) -> None:
    simulated_nodes(f"one={A100}:1", fail_storage_classes=["broken"])
    core_api(sim_api).create_namespaced_persistent_volume_claim(
        sim_namespace, pvc("stuck", storage_class="broken"))
    event = wait_event(sim_api, sim_namespace, "stuck", "ProvisioningFailed")
    assert event["type"] == "Warning"
    assert event["message"] == 'storageclass.storage.k8s.io "broken" not found'
    assert read_pvc(sim_api, sim_namespace, "stuck")["status"].get("phase") == "Pending"


def test_pods_for_other_schedulers_or_nodes_are_left_alone(
        sim_api: client.ApiClient, sim_namespace: str, simulated_nodes: Nodes) -> None:
    simulated_nodes(f"one={A100}:4")
    create_pod(sim_api, sim_namespace, gpu_pod("manual", 1, schedulerName="manual"))
    create_pod(sim_api, sim_namespace, gpu_pod("elsewhere", 1, nodeName="not-simulated"))
    create_pod(sim_api, sim_namespace, gpu_pod("marker", 1))
    # The marker was created last; once it runs, the others have been seen and skipped.
    wait_running(sim_api, sim_namespace, "marker")
    wait_event(sim_api, sim_namespace, "marker", "Started")
    manual = read_pod(sim_api, sim_namespace, "manual")
    assert not manual["spec"].get("nodeName")
    assert condition(manual, "PodScheduled") is None
    elsewhere = read_pod(sim_api, sim_namespace, "elsewhere")
    assert elsewhere["status"].get("phase") == "Pending"
    assert not elsewhere["status"].get("containerStatuses")
    # ... so a test can drive them by hand
    core_api(sim_api).patch_namespaced_pod_status("elsewhere", sim_namespace, {
        "status": {"phase": "Running"}})
    assert read_pod(sim_api, sim_namespace, "elsewhere")["status"]["phase"] == "Running"


def test_restarted_simulator_keeps_running_pods_and_their_gpus(
        sim_api: client.ApiClient, sim_namespace: str, simulated_nodes: Nodes) -> None:
    first = simulated_nodes(f"one={A100}:1", keep_nodes=True)
    node_spec = first.sim.specs[0]
    create_pod(sim_api, sim_namespace, gpu_pod("survivor", 1))
    started = wait_running(sim_api, sim_namespace, "survivor")["status"]
    first.stop()

    second = simulated_nodes(NodeSpec(node_spec.name.rsplit("-", 1)[0], A100, 1))
    assert second.sim.specs[0].name == node_spec.name
    create_pod(sim_api, sim_namespace, gpu_pod("latecomer", 1))
    assert "Insufficient nvidia.com/gpu" in wait_unschedulable(
        sim_api, sim_namespace, "latecomer")["message"]
    assert read_pod(sim_api, sim_namespace, "survivor")["status"][
        "containerStatuses"] == started["containerStatuses"]


def test_command_line_runs_nodes_until_terminated(
        sim_kubeconfig: str, sim_api: client.ApiClient, sim_namespace: str) -> None:
    name = f"cli-{sim_namespace}"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "kubesim", "node", "--kubeconfig", sim_kubeconfig,
         "--node", f"{name}=NVIDIA-L4:2", "--taint", "dedicated=ml:NoSchedule",
         "--namespace", sim_namespace],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        ready = json.loads(proc.stdout.readline())
        assert ready == {"nodes": [name]}
        node = json.loads(core_api(sim_api).read_node(
            name, _preload_content=False).data)
        assert node["metadata"]["labels"]["nvidia.com/gpu.product"] == "NVIDIA-L4"
        assert node["spec"]["taints"][0]["key"] == "dedicated"
    finally:
        proc.terminate()
        proc.wait(30)
    assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""

    def gone() -> bool:
        try:
            core_api(sim_api).read_node(name)
        except client.ApiException as exc:
            return exc.status == 404
        return False
    wait_for(gone, 10, message="node deleted on exit")


def admin(url: str, method: str, body: dict[str, Any] | None = None) -> Any:
    """Call the emulator's /_kubesim/faults admin endpoint."""
    import urllib.request
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"{url}/_kubesim/faults", data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read() or b"null")


def test_survives_dropped_watches_410_gone_and_server_errors(
        sim_emulator: Any, sim_api: client.ApiClient, sim_namespace: str,
        simulated_nodes: Nodes) -> None:
    faults = [
        {"verb": "watch", "resource": "pods", "namespace": sim_namespace, "watch": "gone",
         "after_events": 2, "count": 2},
        {"verb": "watch", "resource": "pods", "namespace": sim_namespace, "watch": "drop",
         "after_events": 3, "count": 2},
        {"verb": "watch", "resource": "persistentvolumeclaims", "namespace": sim_namespace,
         "watch": "gone", "after_events": 0, "count": 1},
        {"verb": "patch", "resource": "pods", "namespace": sim_namespace, "code": 500,
         "rate": 0.5, "count": 4},
        {"verb": "patch", "resource": "pods", "namespace": sim_namespace, "code": 429,
         "retry_after": 1, "count": 1},
    ]
    for rule in faults:
        admin(sim_emulator.url, "POST", rule)
    try:
        simulated_nodes(f"four={A100}:4")
        for i in range(6):
            create_pod(sim_api, sim_namespace, gpu_pod(f"p{i}", 1))
        wait_for(lambda: sum(read_pod(sim_api, sim_namespace, f"p{i}")["status"].get("phase")
                             == "Running" for i in range(6)) == 4, 60, message="4 running")
        pending = [f"p{i}" for i in range(6)
                   if read_pod(sim_api, sim_namespace, f"p{i}")["status"]["phase"] == "Pending"]
        for name in pending:
            wait_unschedulable(sim_api, sim_namespace, name)
        running = sorted({f"p{i}" for i in range(6)} - set(pending))
        for name in running[:2]:
            core_api(sim_api).delete_namespaced_pod(name, sim_namespace)
        for name in pending:
            wait_running(sim_api, sim_namespace, name, timeout=60)
        left = {(r["watch"] or r["code"], r["resource"]): r["count"]
                for r in admin(sim_emulator.url, "GET")["faults"]}
        # the watch faults really fired: both informers went through 410 Gone and drops
        assert left[("gone", "pods")] == left[("drop", "pods")] == 0, left
        assert left[("gone", "persistentvolumeclaims")] == 0, left
    finally:
        admin(sim_emulator.url, "DELETE")


def test_hundreds_of_pods_are_scheduled_and_rescheduled_quickly(
        sim_api: client.ApiClient, sim_namespace: str, simulated_nodes: Nodes) -> None:
    """300 pods on 250 GPUs: 250 run, 50 wait; freeing 50 GPUs runs the 50 waiting pods."""
    specs = [NodeSpec(f"big{i}", H100, 125, pods=500) for i in range(2)]
    simulated_nodes(*specs, warning_events_only=True)
    core = core_api(sim_api)
    started = time.monotonic()
    for i in range(300):
        core.create_namespaced_pod(sim_namespace, gpu_pod(f"p{i:03d}", 1))

    def phases() -> dict[str, list[str]]:
        resp = core.list_namespaced_pod(sim_namespace, _preload_content=False)
        out: dict[str, list[str]] = {}
        for pod in json.loads(resp.data)["items"]:
            unschedulable = (condition(pod, "PodScheduled") or {}).get("reason")
            key = "Unschedulable" if unschedulable == "Unschedulable" else pod["status"]["phase"]
            out.setdefault(key, []).append(pod["metadata"]["name"])
        return out

    state = wait_for(lambda: (p := phases()) and len(p.get("Running", [])) == 250
                     and len(p.get("Unschedulable", [])) == 50 and p, 120,
                     message="250 Running and 50 Unschedulable")
    for name in state["Running"][:50]:
        core.delete_namespaced_pod(name, sim_namespace)
    wait_for(lambda: len(phases().get("Running", [])) == 250
             and not phases().get("Unschedulable"), 120, message="the 50 waiting pods run")
    print(f"300 pods placed, 50 rescheduled in {time.monotonic() - started:.1f}s")
    # warning_events_only: FailedScheduling is posted, routine Normal events are not
    resp = core.list_namespaced_event(sim_namespace, _preload_content=False)
    reasons = {e["reason"] for e in json.loads(resp.data)["items"]}
    assert "FailedScheduling" in reasons
    assert not reasons & {"Scheduled", "Pulled", "Created", "Started", "Killing"}, reasons


def test_cordon_taint_and_label_with_kubectl_steer_the_scheduler(
        sim_api: client.ApiClient, sim_namespace: str, simulated_nodes: Nodes,
        sim_kubectl: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    sim = simulated_nodes(f"one={A100}:2")
    node = sim.sim.specs[0].name
    state = sim.sim.nodes[node]
    assert sim_kubectl("cordon", node).stdout == f"node/{node} cordoned\n"
    # Node and pod changes reach the scheduler on different watches (as with kube-scheduler):
    # wait until it has seen the node change before creating a pod that depends on it.
    wait_for(lambda: state.unschedulable, 30, message="the scheduler sees the cordon")
    create_pod(sim_api, sim_namespace, gpu_pod("a", 1))
    assert wait_unschedulable(sim_api, sim_namespace, "a")["message"] == (
        "0/1 nodes are available: 1 node(s) were unschedulable. preemption: 0/1 nodes are "
        "available: 1 Preemption is not helpful for scheduling.")
    sim_kubectl("uncordon", node)
    wait_running(sim_api, sim_namespace, "a")

    sim_kubectl("taint", "nodes", node, "maintenance=soon:NoSchedule")
    wait_for(lambda: state.taints, 30, message="the scheduler sees the taint")
    create_pod(sim_api, sim_namespace, gpu_pod("b", 1))
    assert "1 node(s) had untolerated taint(s)" in wait_unschedulable(
        sim_api, sim_namespace, "b")["message"]
    sim_kubectl("taint", "nodes", node, "maintenance-")
    wait_running(sim_api, sim_namespace, "b")

    create_pod(sim_api, sim_namespace, gpu_pod("c", 0, nodeSelector={"pool": "spot"}))
    wait_unschedulable(sim_api, sim_namespace, "c")
    sim_kubectl("label", "nodes", node, "pool=spot")
    wait_running(sim_api, sim_namespace, "c")


def test_start_delay_shows_container_creating_before_running(
        sim_api: client.ApiClient, sim_namespace: str, simulated_nodes: Nodes) -> None:
    simulated_nodes(f"one={A100}:1", start_delay=1.5)
    create_pod(sim_api, sim_namespace, gpu_pod("slow", 1))

    def creating() -> bool:
        statuses = read_pod(sim_api, sim_namespace, "slow")["status"].get("containerStatuses")
        return bool(statuses) and statuses[0]["state"].get("waiting", {}).get("reason") == (
            "ContainerCreating")

    wait_for(creating, 30, message="ContainerCreating while the image is pulled")
    pod = wait_running(sim_api, sim_namespace, "slow")
    started = parse_time(pod["status"]["containerStatuses"][0]["state"]["running"]["startedAt"])
    assert started >= parse_time(pod["status"]["startTime"])


def test_kubectl_describe_pod_shows_node_status_and_events(
        sim_api: client.ApiClient, sim_namespace: str, simulated_nodes: Nodes,
        sim_kubectl: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    sim = simulated_nodes(f"one={A100}:1")
    node = sim.sim.specs[0].name
    create_pod(sim_api, sim_namespace, gpu_pod("shown", 1))
    pod = wait_running(sim_api, sim_namespace, "shown")
    wait_event(sim_api, sim_namespace, "shown", "Scheduled")
    wait_event(sim_api, sim_namespace, "shown", "Started")
    out = sim_kubectl("describe", "pod", "shown", "-n", sim_namespace).stdout
    assert re.search(rf"^Node:\s+{node}/{re.escape(pod['status']['hostIP'])}$", out, re.M), out
    assert re.search(r"^Status:\s+Running$", out, re.M)
    assert re.search(rf"^IP:\s+{re.escape(pod['status']['podIP'])}$", out, re.M)
    assert re.search(r"^\s+State:\s+Running$", out, re.M)
    assert re.search(r"^\s+Ready\s+True\s*$", out, re.M)
    assert re.search(r"^\s+nvidia.com/gpu:\s+1$", out, re.M)
    assert re.search(rf"^\s+Normal\s+Scheduled\s+\S+\s+default-scheduler\s+Successfully "
                     rf"assigned {sim_namespace}/shown to {node}$", out, re.M), out
    # kubectl prefixes the event's fieldPath for container events
    assert re.search(r"^\s+Normal\s+Started\s+\S+\s+kubelet\s+spec.containers\{main\}: "
                     r"Started container main$", out, re.M), out


def test_kubectl_get_pods_shows_kubelet_states(
        sim_api: client.ApiClient, sim_namespace: str, simulated_nodes: Nodes,
        sim_kubectl: Callable[..., subprocess.CompletedProcess[str]],
        parse_table: Callable[[str], list[dict[str, str]]]) -> None:
    sim = simulated_nodes(f"one={A100}:3", pull_fail_images=r"^registry\.invalid/",
                          pull_backoff=0.2)
    node = sim.sim.specs[0].name
    create_pod(sim_api, sim_namespace, gpu_pod("running", 1))
    create_pod(sim_api, sim_namespace, gpu_pod("pulling", 1, image="registry.invalid/x:1"))
    create_pod(sim_api, sim_namespace, with_claim(gpu_pod("mounting", 1), "absent"))
    create_pod(sim_api, sim_namespace, gpu_pod("waiting", 1))
    running = wait_running(sim_api, sim_namespace, "running")
    wait_unschedulable(sim_api, sim_namespace, "waiting")
    wait_event(sim_api, sim_namespace, "mounting", "FailedMount")
    wait_event(sim_api, sim_namespace, "pulling", "BackOff")

    def table() -> dict[str, dict[str, str]]:
        out = sim_kubectl("get", "pods", "-n", sim_namespace).stdout
        assert out.splitlines()[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
        return {r["NAME"]: r for r in parse_table(out)}

    rows = wait_for(lambda: (t := table())["pulling"]["STATUS"] == "ImagePullBackOff" and t,
                    30, message="ImagePullBackOff in kubectl get pods")
    assert (rows["running"]["READY"], rows["running"]["STATUS"], rows["running"]["RESTARTS"]) == (
        "1/1", "Running", "0")
    assert (rows["pulling"]["READY"], rows["pulling"]["STATUS"]) == ("0/1", "ImagePullBackOff")
    assert (rows["mounting"]["READY"], rows["mounting"]["STATUS"]) == ("0/1", "ContainerCreating")
    assert (rows["waiting"]["READY"], rows["waiting"]["STATUS"]) == ("0/1", "Pending")

    wide = {r["NAME"]: r for r in parse_table(
        sim_kubectl("get", "pods", "-n", sim_namespace, "-o", "wide").stdout)}
    assert (wide["running"]["IP"], wide["running"]["NODE"]) == (running["status"]["podIP"], node)
    assert (wide["waiting"]["IP"], wide["waiting"]["NODE"]) == ("<none>", "<none>")


def test_kubectl_get_nodes_and_pvcs(
        sim_api: client.ApiClient, sim_namespace: str, simulated_nodes: Nodes,
        sim_kubectl: Callable[..., subprocess.CompletedProcess[str]],
        parse_table: Callable[[str], list[dict[str, str]]]) -> None:
    sim = simulated_nodes(f"one={A100}:1")
    node = sim.sim.specs[0].name
    out = sim_kubectl("get", "nodes", node).stdout
    assert out.splitlines()[0].split() == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
    (row,) = parse_table(out)
    assert (row["STATUS"], row["ROLES"], row["VERSION"]) == ("Ready", "<none>", "v1.37.0")
    sim_kubectl("cordon", node)
    (row,) = parse_table(sim_kubectl("get", "nodes", node).stdout)
    assert row["STATUS"] == "Ready,SchedulingDisabled"

    core_api(sim_api).create_namespaced_persistent_volume_claim(sim_namespace,
                                                                pvc("data", size="50Gi"))
    claim = wait_for(lambda: (c := read_pvc(sim_api, sim_namespace, "data"))["status"].get(
        "phase") == "Bound" and c, 30, message="PVC Bound")
    out = sim_kubectl("get", "pvc", "-n", sim_namespace).stdout
    header = out.splitlines()[0]
    assert header.startswith("NAME") and "ACCESS MODES" in header
    (row,) = parse_table(out)
    assert (row["STATUS"], row["VOLUME"], row["CAPACITY"], row["ACCESS MODES"]) == (
        "Bound", claim["spec"]["volumeName"], "50Gi", "RWO")


def test_kubectl_wait_ready_and_delete_pod_through_the_kubelet(
        sim_api: client.ApiClient, sim_namespace: str, simulated_nodes: Nodes,
        sim_kubectl: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    simulated_nodes(f"one={A100}:1", start_delay=0.5)
    sim_kubectl("apply", "-n", sim_namespace, "-f", "-", input=json.dumps(gpu_pod("first", 1)))
    out = sim_kubectl("wait", "pod/first", "-n", sim_namespace, "--for=condition=Ready",
                      "--timeout=60s").stdout
    assert out == "pod/first condition met\n"
    sim_kubectl("apply", "-n", sim_namespace, "-f", "-", input=json.dumps(gpu_pod("second", 1)))
    wait_unschedulable(sim_api, sim_namespace, "second")
    # kubectl delete waits until the kubelet has stopped the pod and removed it
    out = sim_kubectl("delete", "pod", "first", "-n", sim_namespace, "--timeout=60s").stdout
    assert out == f'pod "first" deleted from {sim_namespace} namespace\n'
    assert pod_or_none(sim_api, sim_namespace, "first") is None
    out = sim_kubectl("wait", "pod/second", "-n", sim_namespace, "--for=condition=Ready",
                      "--timeout=60s").stdout
    assert out == "pod/second condition met\n"


def test_pod_bound_by_hand_runs_or_is_rejected_by_kubelet_admission(
        sim_api: client.ApiClient, sim_namespace: str, simulated_nodes: Nodes) -> None:
    sim = simulated_nodes(f"two={A100}:2")
    node = sim.sim.specs[0].name
    create_pod(sim_api, sim_namespace, gpu_pod("scheduled", 1))
    wait_running(sim_api, sim_namespace, "scheduled")
    create_pod(sim_api, sim_namespace, gpu_pod("by-hand", 1, nodeName=node))
    wait_running(sim_api, sim_namespace, "by-hand")
    create_pod(sim_api, sim_namespace, gpu_pod("one-too-many", 1, nodeName=node))

    def failed() -> dict[str, Any] | None:
        status = read_pod(sim_api, sim_namespace, "one-too-many")["status"]
        return status if status.get("phase") == "Failed" else None

    status = wait_for(failed, 30, message="kubelet rejects the pod")
    assert status["reason"] == "OutOfnvidia.com/gpu"
    assert status["message"] == ("Pod was rejected: Node didn't have enough resource: "
                                 "nvidia.com/gpu, requested: 1, used: 2, capacity: 2")
    event = wait_event(sim_api, sim_namespace, "one-too-many", "OutOfnvidia.com/gpu")
    assert event["type"] == "Warning"


def test_kubectl_get_events_names_the_pod(
        sim_api: client.ApiClient, sim_namespace: str, simulated_nodes: Nodes,
        sim_kubectl: Callable[..., subprocess.CompletedProcess[str]],
        parse_table: Callable[[str], list[dict[str, str]]]) -> None:
    simulated_nodes(f"one={A100}:1")
    create_pod(sim_api, sim_namespace, gpu_pod("greedy", 4))
    message = wait_unschedulable(sim_api, sim_namespace, "greedy")["message"]
    wait_event(sim_api, sim_namespace, "greedy", "FailedScheduling")
    out = sim_kubectl("get", "events", "-n", sim_namespace, "--field-selector",
                      "reason=FailedScheduling").stdout
    assert out.splitlines()[0].split() == ["LAST", "SEEN", "TYPE", "REASON", "OBJECT",
                                           "MESSAGE"]
    (row,) = parse_table(out)
    assert (row["TYPE"], row["REASON"], row["OBJECT"], row["MESSAGE"]) == (
        "Warning", "FailedScheduling", "pod/greedy", message)


def test_informer_pages_through_lists_and_replays_changes_missed_between_lists(
        sim_kubeconfig: str, sim_api: client.ApiClient, sim_namespace: str) -> None:
    """What a relist after 410 Gone must do: page with continue tokens, emit the difference."""
    import asyncio

    from kubesim.node import Informer, KubeClient, load_kubeconfig

    core = core_api(sim_api)
    for i in range(7):
        core.create_namespaced_config_map(sim_namespace, {"metadata": {"name": f"cm-{i}"}})
    seen: list[tuple[str, str]] = []

    async def scenario() -> dict[str, Any]:
        api = KubeClient(load_kubeconfig(sim_kubeconfig))
        await api.open()
        try:
            informer = Informer(api, f"/api/v1/namespaces/{sim_namespace}/configmaps",
                                lambda kind, obj, old: seen.append((kind, obj["metadata"]["name"])),
                                page_size=3)
            await informer._relist()
            first = {k.split("/")[1] for k in informer.cache if "/cm-" in k}
            seen.clear()
            core.delete_namespaced_config_map("cm-0", sim_namespace)
            core.patch_namespaced_config_map("cm-1", sim_namespace, {"data": {"a": "b"}})
            core.create_namespaced_config_map(sim_namespace, {"metadata": {"name": "cm-new"}})
            await informer._relist()
            return {"first": first, "cache": set(informer.cache)}
        finally:
            await api.close()

    result = asyncio.run(scenario())
    assert result["first"] == {f"cm-{i}" for i in range(7)}
    assert f"{sim_namespace}/cm-0" not in result["cache"]
    assert sorted(e for e in seen if e[1].startswith("cm-")) == [
        ("ADDED", "cm-new"), ("DELETED", "cm-0"), ("MODIFIED", "cm-1")]


def test_no_execute_taint_evicts_pods_that_do_not_tolerate_it(
        sim_api: client.ApiClient, sim_namespace: str, simulated_nodes: Nodes,
        sim_kubectl: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    sim = simulated_nodes(f"one={A100}:3")
    node = sim.sim.specs[0].name
    maintenance = {"key": "maintenance", "operator": "Exists", "effect": "NoExecute"}
    create_pod(sim_api, sim_namespace, gpu_pod("plain", 1))
    create_pod(sim_api, sim_namespace, gpu_pod("brief", 1, tolerations=[
        {**maintenance, "tolerationSeconds": 1}]))
    create_pod(sim_api, sim_namespace, gpu_pod("patient", 1, tolerations=[maintenance]))
    for name in ("plain", "brief", "patient"):
        wait_running(sim_api, sim_namespace, name)

    sim_kubectl("taint", "nodes", node, "maintenance=now:NoExecute")
    wait_for(lambda: pod_or_none(sim_api, sim_namespace, "plain") is None, 30,
             message="the untolerating pod evicted")
    event = wait_event(sim_api, sim_namespace, "plain", "TaintManagerEviction")
    assert event["message"] == f"Marking for deletion Pod {sim_namespace}/plain"
    wait_for(lambda: pod_or_none(sim_api, sim_namespace, "brief") is None, 30,
             message="the pod tolerating for 1s evicted")
    assert read_pod(sim_api, sim_namespace, "patient")["status"]["phase"] == "Running"


def test_unparsable_image_reference_is_invalid_image_name(
        sim_api: client.ApiClient, sim_namespace: str, simulated_nodes: Nodes) -> None:
    simulated_nodes(f"one={A100}:1")
    create_pod(sim_api, sim_namespace, gpu_pod("typo", 1, image="invalid//image"))

    def waiting() -> dict[str, Any] | None:
        statuses = read_pod(sim_api, sim_namespace, "typo")["status"].get("containerStatuses")
        state = (statuses or [{}])[0].get("state", {}).get("waiting") or {}
        return state if state.get("reason") == "InvalidImageName" else None

    state = wait_for(waiting, 30, message="InvalidImageName")
    assert state["message"] == ('Failed to apply default image tag "invalid//image": couldn\'t '
                                'parse image name "invalid//image": invalid reference format')
    assert wait_event(sim_api, sim_namespace, "typo", "InspectFailed")["type"] == "Warning"
    wait_for(lambda: "Error: InvalidImageName" in {
        e["message"] for e in events_for(sim_api, sim_namespace, "typo")
        if e["reason"] == "Failed"}, 30, message="the Failed event")


def test_upper_case_repository_is_an_invalid_image_name() -> None:
    from kubesim.node.images import IMAGE_REFERENCE, _reference_error

    assert not IMAGE_REFERENCE.match("MyImage:1")
    assert _reference_error("MyImage:1") == (
        "invalid reference format: repository name (library/MyImage) must be lowercase")
    assert IMAGE_REFERENCE.match("registry.example.com:5000/team/app:v1.2")
