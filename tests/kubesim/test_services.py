"""Services as kube-apiserver allocates them: cluster IPs, node ports for NodePort and
LoadBalancer types, and a load balancer's address written to status (by a cloud controller,
here by the test)."""

from __future__ import annotations

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
