"""What a kubelet registers with the API server: its Node object and its heartbeat Lease."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from datetime import UTC, datetime

import aiohttp

from .client import ApiError, KubeClient
from .objects import KUBELET_VERSION, MERGE_PATCH, Obj, rfc3339, sha256_hex
from .state import NodeState

LEASES = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"


def node_object(state: NodeState) -> Obj:
    """The Node a kubelet registers: capacity, labels, taints, addresses, Ready."""
    spec, now = state.spec, rfc3339()
    resources = {"cpu": spec.cpu, "memory": spec.memory, "ephemeral-storage": "1Ti",
                 "pods": str(spec.pods), spec.resource: str(spec.count)}
    ready = {"type": "Ready", "status": "True", "reason": "KubeletReady",
             "message": "kubelet is posting ready status",
             "lastHeartbeatTime": now, "lastTransitionTime": now}
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": spec.name, "labels": spec.node_labels(),
                     "annotations": {"kubesim.dev/simulated": "true"}},
        "spec": {"taints": [t.to_api() for t in spec.taints],
                 "podCIDR": f"10.{244 + state.index // 256}.{state.index % 256}.0/24"},
        "status": {
            "capacity": resources, "allocatable": dict(resources), "conditions": [ready],
            "addresses": [{"type": "InternalIP", "address": state.host_ip},
                          {"type": "Hostname", "address": spec.name}],
            "nodeInfo": {"kubeletVersion": KUBELET_VERSION, "kubeProxyVersion": "",
                         "architecture": "amd64", "operatingSystem": "linux",
                         "containerRuntimeVersion": "containerd://2.1.0",
                         "osImage": "kubesim", "kernelVersion": "6.8.0",
                         "machineID": sha256_hex(spec.name)[:32],
                         "systemUUID": sha256_hex("uuid" + spec.name)[:32],
                         "bootID": sha256_hex("boot" + spec.name)[:32]},
            "phase": "Running",
        },
    }


async def register_nodes(client: KubeClient, nodes: Iterable[NodeState]) -> None:
    """Create each Node, or take over an existing one (a restarted simulator), and its status."""
    for state in nodes:
        body = node_object(state)
        try:
            await client.request("POST", "/api/v1/nodes", body)
        except ApiError as exc:
            if exc.status != 409:
                raise
            path = f"/api/v1/nodes/{state.spec.name}"
            await client.request("PATCH", path, {"metadata": body["metadata"],
                                                 "spec": body["spec"]},
                                 content_type=MERGE_PATCH)
        await client.request("PATCH", f"/api/v1/nodes/{state.spec.name}/status",
                             {"status": body["status"]}, content_type=MERGE_PATCH)


async def renew_lease(client: KubeClient, name: str) -> None:
    """One heartbeat of node ``name``: renew its Lease, creating it (owned by the Node) if new."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    path = f"{LEASES}/{name}"
    spec = {"holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": now}
    try:
        await client.request("PATCH", path, {"spec": spec}, content_type=MERGE_PATCH)
    except ApiError as exc:
        if exc.status != 404:
            raise
        node = await client.request("GET", f"/api/v1/nodes/{name}")
        owner = {"apiVersion": "v1", "kind": "Node", "name": name,
                 "uid": node["metadata"]["uid"]}
        await client.request(
            "POST", LEASES,
            {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
             "metadata": {"name": name, "namespace": "kube-node-lease",
                          "ownerReferences": [owner]},
             "spec": spec})


async def delete_nodes(client: KubeClient, names: Iterable[str]) -> None:
    """Best effort: the API server may already be gone."""
    for name in names:
        with contextlib.suppress(ApiError, aiohttp.ClientError, TimeoutError):
            await client.request("DELETE", f"/api/v1/nodes/{name}")
