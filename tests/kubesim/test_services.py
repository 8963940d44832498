"""Services as kube-apiserver allocates them: cluster IPs, node ports for NodePort and
LoadBalancer types, and a load balancer's address written to status (by a cloud controller,
here by the test), and the EndpointSlices that point a Service at its pods."""

from __future__ import annotations

import time

from kubernetes import client

PORTS = [{"name": "ssh", "port": 22, "targetPort": 2222},
         {"name": "web", "port": 8888}]


def create(api_client: client.ApiClient, namespace: str, name: str,
           type_: str) -> client.V1Service:
    return client.CoreV1Api(api_client).create_namespaced_service(namespace, {
        "metadata": {"name": name},
        "spec": {"type": type_, "selector": {"app": name}, "ports": PORTS}})


def test_cluster_ip_services_get_an_address_and_no_node_ports(api_client, namespace):
    svc = create(api_client, namespace, "plain", "ClusterIP")
    assert svc.spec.cluster_ip and svc.spec.cluster_ip != "None"
    assert [p.node_port for p in svc.spec.ports] == [None, None]
    assert [p.protocol for p in svc.spec.ports] == ["TCP", "TCP"]
    assert svc.spec.ports[1].target_port == 8888


def test_node_port_and_load_balancer_services_get_distinct_node_ports(api_client, namespace):
    node = create(api_client, namespace, "np", "NodePort")
    balanced = create(api_client, namespace, "lb", "LoadBalancer")
    ports = [p.node_port for svc in (node, balanced) for p in svc.spec.ports]
    assert all(30000 <= port <= 32767 for port in ports)
    assert len(set(ports)) == 4
    assert node.spec.external_traffic_policy == "Cluster"
    assert balanced.spec.allocate_load_balancer_node_ports is True
    assert not (balanced.status.load_balancer.ingress or [])


def test_a_load_balancers_address_is_written_to_status(api_client, namespace):
    core = client.CoreV1Api(api_client)
    create(api_client, namespace, "lb", "LoadBalancer")
    core.patch_namespaced_service_status(
        "lb", namespace, {"status": {"loadBalancer": {"ingress": [{"ip": "203.0.113.9"}]}}})
    svc = core.read_namespaced_service("lb", namespace)
    assert [i.ip for i in svc.status.load_balancer.ingress] == ["203.0.113.9"]


def test_endpoint_slices_follow_a_services_pods(api_client, namespace):
    """kube-controller-manager's EndpointSlice controller (kubesim's controllers do the same):
    the pod's IP as the kubelet reports it, the named targetPort resolved in its spec."""
    core, discovery = client.CoreV1Api(api_client), client.DiscoveryV1Api(api_client)
    # A node of our own for the pod (the controller skips pods on unknown nodes), kept out of
    # every scheduler's way.
    node = f"slices-{namespace}"
    core.create_node({"metadata": {"name": node}, "spec": {"unschedulable": True}})
    try:
        core.create_namespaced_service(namespace, {
            "metadata": {"name": "web"},
            "spec": {"selector": {"app": "web"},
                     "ports": [{"name": "ssh", "port": 22, "targetPort": "ssh"}]}})
        core.create_namespaced_pod(namespace, {
            "metadata": {"name": "web-0", "labels": {"app": "web"}},
            "spec": {"nodeName": node, "containers": [
                {"name": "c", "image": "busybox", "ports": [
                    {"name": "ssh", "containerPort": 2222}]}]}})
        core.patch_namespaced_pod_status("web-0", namespace, {"status": {
            "phase": "Running", "podIP": "10.244.99.7", "podIPs": [{"ip": "10.244.99.7"}],
            "conditions": [{"type": "Ready", "status": "True"}]}})
        service = core.read_namespaced_service("web", namespace)

        def sliced():
            slices = discovery.list_namespaced_endpoint_slice(
                namespace, label_selector="kubernetes.io/service-name=web").items
            assert len(slices) == 1 and slices[0].endpoints, slices
            return slices[0]
        found = wait(sliced)
        assert found.address_type == "IPv4"
        assert [(p.name, p.port, p.protocol) for p in found.ports] == [("ssh", 2222, "TCP")]
        (endpoint,) = found.endpoints
        assert endpoint.addresses == ["10.244.99.7"] and endpoint.conditions.ready is True
        assert (endpoint.target_ref.kind, endpoint.target_ref.name) == ("Pod", "web-0")
        assert endpoint.node_name == node
        owner = found.metadata.owner_references[0]
        assert (owner.kind, owner.uid, owner.controller) == ("Service", service.metadata.uid,
                                                             True)
        assert found.metadata.labels["endpointslice.kubernetes.io/managed-by"] == \
            "endpointslice-controller.k8s.io"
    finally:
        core.delete_node(node)


def wait(check, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
