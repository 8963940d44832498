"""Reaching a rental: its Service, status.endpoints and `kubectl gpurental ssh/open`, with the
real operator, on every substrate.

The EndpointSlice controller (kube-controller-manager's on the real control plane, kubesim's
own on the emulator) turns the operator's Service into slices pointing at the pod's IP, which
the simulated kubelet reports. No cloud controller runs on either: a load balancer's address
is written into the Service's status by the test, as one would.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e_support import Rentals, eventually, eventually_found
from kubernetes import client

from gpurental_dev.cluster import Cluster

PLUGIN = Path(sys.executable).parent / "kubectl-gpurental"
ACCESS_OFFERS = "".join(f"""---
apiVersion: gpurental.dev/v1alpha1
kind: GpuOffer
metadata: {{name: ssh-{kind.lower()}}}
spec:
  gpu: {{product: NVIDIA-GeForce-RTX-4090}}
  pricePerGpuHour: "0.69"
  tolerations: [{{key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}}]
  access: {{ssh: {{enabled: true, image: example.org/sshd:1}}, expose: {{type: {kind}}}}}
""" for kind in ("ClusterIP", "NodePort", "LoadBalancer")) + """---
apiVersion: gpurental.dev/v1alpha1
kind: GpuOffer
metadata: {name: ssh-routed}
spec:
  gpu: {product: NVIDIA-GeForce-RTX-4090}
  pricePerGpuHour: "0.69"
  tolerations: [{key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}]
  access:
    ssh: {enabled: true}
    ingress: {hostTemplate: "{port}-{rental}-{namespace}.gpus.example", className: nginx}
"""
JUPYTER = [{"name": "jupyter", "port": 8888, "http": True}]


@pytest.fixture(scope="module")
def access_offers(cluster: Cluster) -> Iterator[None]:
    cluster.kubectl("apply", "-f", "-", input=ACCESS_OFFERS)
    yield
    cluster.kubectl("delete", "gpuoffers", "ssh-clusterip", "ssh-nodeport", "ssh-loadbalancer",
                    "ssh-routed")


def service(rentals: Rentals, name: str) -> client.V1Service | None:
    try:
        return rentals.core.read_namespaced_service(name, rentals.namespace)
    except client.ApiException as exc:
        if exc.status == 404:
            return None
        raise


def endpoint(rentals: Rentals, name: str, port: str) -> dict[str, Any]:
    entries = rentals.status(name).get("endpoints") or []
    found = [e for e in entries if e["name"] == port]
    assert found, f"no {port} endpoint in {name}'s status yet: {entries}"
    return found[0]


def start(rentals: Rentals, name: str, offer: str) -> tuple[dict[str, Any], client.V1Pod]:
    rentals.create(name, offer=offer, ports=JUPYTER, command=["sleep", "infinity"])
    rentals.wait_phase(name, "Running")
    return rentals.get(name), rentals.core.read_namespaced_pod(name, rentals.namespace)


def test_the_service_points_at_the_pod_and_endpoints_follow_the_node_port(
        rentals: Rentals, access_offers: None, kubectl: Any) -> None:
    rental, pod = start(rentals, "nb", "ssh-nodeport")
    assert [c.name for c in pod.spec.containers] == ["workload", "sshd"]
    assert pod.spec.share_process_namespace is True
    svc = eventually_found(lambda: service(rentals, "nb"))
    assert svc.spec.type == "NodePort"
    assert svc.metadata.owner_references[0].uid == rental["metadata"]["uid"]
    assert svc.spec.selector == {"gpurental.dev/rental-uid": rental["metadata"]["uid"]}
    by_name = {p.name: p for p in svc.spec.ports}
    assert (by_name["ssh"].port, by_name["ssh"].target_port) == (22, "ssh")
    assert (by_name["jupyter"].port, by_name["jupyter"].target_port) == (8888, 8888)
    node_port = by_name["ssh"].node_port
    assert 30000 <= node_port <= 32767

    def ssh_line() -> str:
        line = endpoint(rentals, "nb", "ssh").get("connect")
        assert line == f"ssh -p {node_port} gpu@{pod.status.host_ip}", line
        return str(line)
    eventually(ssh_line, timeout=30)
    web = endpoint(rentals, "nb", "jupyter")
    assert web["connect"] == f"http://{pod.status.host_ip}:{by_name['jupyter'].node_port}/"
    wide = kubectl("get", "gpurentals", "-n", rentals.namespace, "-o", "wide").stdout
    assert "SSH" in wide.splitlines()[0] and f"ssh -p {node_port} gpu@" in wide
    assert_endpoint_slices_point_at(rentals, "nb", pod)


def assert_endpoint_slices_point_at(rentals: Rentals, name: str, pod: client.V1Pod) -> None:
    discovery = client.DiscoveryV1Api(rentals.core.api_client)

    def sliced() -> tuple[set[str], set[tuple[str, int]]]:
        slices = discovery.list_namespaced_endpoint_slice(
            rentals.namespace, label_selector=f"kubernetes.io/service-name={name}").items
        addresses = {a for s in slices for e in s.endpoints or [] for a in e.addresses}
        ports = {(p.name, p.port) for s in slices for p in s.ports or []}
        assert addresses == {pod.status.pod_ip}, addresses
        return addresses, ports
    _, ports = eventually(sliced, timeout=30)
    assert ports == {("ssh", 2222), ("jupyter", 8888)}


def test_a_load_balancers_address_reaches_status(rentals: Rentals, access_offers: None) -> None:
    _, pod = start(rentals, "lb", "ssh-loadbalancer")
    svc = eventually_found(lambda: service(rentals, "lb"))
    node_port = {p.name: p.node_port for p in svc.spec.ports}["ssh"]
    pending = eventually_found(lambda: endpoint(rentals, "lb", "ssh") if endpoint(
        rentals, "lb", "ssh").get("connect") else None, timeout=30)
    assert pending["connect"] == f"ssh -p {node_port} gpu@{pod.status.host_ip}"
    assert pending["message"] == "the load balancer has no address yet"
    # What a cloud controller does once its load balancer exists.
    rentals.core.patch_namespaced_service_status("lb", rentals.namespace, {
        "status": {"loadBalancer": {"ingress": [{"ip": "203.0.113.10"}]}}})

    def balanced() -> dict[str, Any]:
        entry = endpoint(rentals, "lb", "ssh")
        assert entry.get("connect") == "ssh gpu@203.0.113.10", entry
        return entry
    assert "message" not in eventually(balanced, timeout=30)
    assert endpoint(rentals, "lb", "jupyter")["connect"] == "http://203.0.113.10:8888/"
    assert rentals.status("lb")["ssh"] == "ssh gpu@203.0.113.10"


def test_pause_deletes_the_service_and_resume_recreates_it(
        rentals: Rentals, access_offers: None) -> None:
    start(rentals, "nb", "ssh-clusterip")
    first = eventually_found(lambda: service(rentals, "nb"))
    assert first.spec.type == "ClusterIP"
    rentals.patch("nb", state="Paused")
    rentals.wait_phase("nb", "Paused")
    eventually(lambda: service(rentals, "nb") is None, timeout=30)
    status = rentals.status("nb")
    assert [e["name"] for e in status["endpoints"]] == ["ssh", "jupyter"]
    assert all(e["message"].startswith("paused") for e in status["endpoints"])
    assert "host" not in status["endpoints"][0]
    rentals.patch("nb", state="Running")
    rentals.wait_phase("nb", "Running")
    again = eventually_found(lambda: service(rentals, "nb"))
    assert again.metadata.uid != first.metadata.uid
    eventually(lambda: endpoint(rentals, "nb", "ssh")["connect"] ==
               f"ssh gpu@{again.spec.cluster_ip}", timeout=30)


def test_a_service_opened_wider_than_the_offer_is_replaced(
        rentals: Rentals, access_offers: None) -> None:
    start(rentals, "nb", "ssh-clusterip")
    first = eventually_found(lambda: service(rentals, "nb"))
    rentals.core.patch_namespaced_service("nb", rentals.namespace, {"spec": {"type": "NodePort"}})

    def replaced() -> client.V1Service:
        svc = service(rentals, "nb")
        assert svc is not None and svc.metadata.uid != first.metadata.uid
        assert svc.spec.type == "ClusterIP"
        return svc
    eventually(replaced, timeout=30)


def plugin(kubeconfig: str, rentals: Rentals, *args: str,
           expect: int = 0) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(PLUGIN), "--kubeconfig", kubeconfig, "-n", rentals.namespace,
                             *args], capture_output=True, text=True, timeout=60)
    assert result.returncode == expect, f"{args}: {result.stdout}\n{result.stderr}"
    return result


def test_plugin_ssh_and_open_commands(rentals: Rentals, access_offers: None,
                                      kubeconfig: str) -> None:
    _, pod = start(rentals, "nb", "ssh-nodeport")
    svc = eventually_found(lambda: service(rentals, "nb"))
    ports = {p.name: p.node_port for p in svc.spec.ports}
    alias = f"HostKeyAlias=nb.{rentals.namespace}.gpurental"
    eventually_found(lambda: endpoint(rentals, "nb", "ssh").get("connect"), timeout=30)
    direct = plugin(kubeconfig, rentals, "ssh", "nb", "--print", "--", "nvidia-smi", "-L")
    assert direct.stdout.splitlines() == [
        f"ssh -p {ports['ssh']} -o {alias} gpu@{pod.status.host_ip} nvidia-smi -L"]
    forwarded = plugin(kubeconfig, rentals, "ssh", "nb", "--print", "--port-forward",
                       "--local-port", "40022")
    assert forwarded.stdout.splitlines() == [
        f"kubectl --kubeconfig {kubeconfig} -n {rentals.namespace} port-forward svc/nb "
        "40022:22",
        f"ssh -p 40022 -o {alias} gpu@127.0.0.1"]
    web = plugin(kubeconfig, rentals, "open", "nb", "jupyter", "--print")
    assert web.stdout.splitlines() == [f"http://{pod.status.host_ip}:{ports['jupyter']}/"]
    web = plugin(kubeconfig, rentals, "open", "nb", "8888", "--print", "--port-forward",
                 "--local-port", "48888")
    assert web.stdout.splitlines()[1] == "http://127.0.0.1:48888/"
    listed = plugin(kubeconfig, rentals, "list", "-o", "wide").stdout.splitlines()
    assert "SSH" in listed[0].split()
    assert f"ssh -p {ports['ssh']} gpu@{pod.status.host_ip}" in listed[1]
    missing = plugin(kubeconfig, rentals, "open", "nb", "tensorboard", "--print", expect=1)
    assert "has no port 'tensorboard' (its ports: ssh (22), jupyter (8888))" in missing.stderr
    rentals.patch("nb", state="Paused")
    rentals.wait_phase("nb", "Paused")
    paused = plugin(kubeconfig, rentals, "ssh", "nb", "--print", expect=1)
    assert paused.stderr.strip() == (
        'error: gpurental "nb" is Paused, not Running; `kubectl gpurental resume nb` first')


def test_plugin_ssh_runs_kubectl_port_forward_up_to_the_missing_kubelet(
        rentals: Rentals, access_offers: None, kubeconfig: str, substrate: str) -> None:
    """Not --print: the plugin really starts `kubectl port-forward svc/nb`; kubectl resolves
    the Service to its pod and asks the API server to forward, which needs a kubelet (a
    streaming server on the node) that neither substrate has. The plugin says so and never
    runs ssh against a port nobody forwards."""
    _, pod = start(rentals, "nb", "ssh-clusterip")
    eventually_found(lambda: endpoint(rentals, "nb", "ssh").get("connect"), timeout=30)
    env = {**os.environ, "PATH": os.pathsep.join([str(PLUGIN.parent), os.environ["PATH"]])}
    result = subprocess.run([str(PLUGIN), "--kubeconfig", kubeconfig, "-n", rentals.namespace,
                             "ssh", "nb", "--", "true"], capture_output=True, text=True,
                            timeout=90, env=env)
    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith("error: kubectl port-forward did not start: ")
    if substrate == "kubernetes":
        # kube-apiserver went for the kubelet of the node the Service's pod runs on.
        assert "error dialing backend" in result.stderr
        assert pod.spec.node_name in result.stderr, result.stderr
    else:  # kubesim serves no pods/portforward at all
        assert "could not find the requested resource" in result.stderr


def ingress(rentals: Rentals, name: str) -> client.V1Ingress | None:
    try:
        return client.NetworkingV1Api(rentals.core.api_client).read_namespaced_ingress(
            name, rentals.namespace)
    except client.ApiException as exc:
        if exc.status == 404:
            return None
        raise


def test_web_ports_get_the_offers_ingress_host_and_lose_it_on_pause(
        rentals: Rentals, access_offers: None, kubeconfig: str) -> None:
    rental, _ = start(rentals, "nb", "ssh-routed")
    routed = eventually_found(lambda: ingress(rentals, "nb"))
    host = f"jupyter-nb-{rentals.namespace}.gpus.example"
    assert routed.spec.ingress_class_name == "nginx"
    assert routed.metadata.owner_references[0].uid == rental["metadata"]["uid"]
    (rule,) = routed.spec.rules
    assert rule.host == host
    backend = rule.http.paths[0].backend.service
    assert (backend.name, backend.port.name) == ("nb", "jupyter")
    eventually(lambda: endpoint(rentals, "nb", "jupyter").get("connect") == f"http://{host}/",
               timeout=30)
    web = plugin(kubeconfig, rentals, "open", "nb", "jupyter", "--print")
    assert web.stdout.splitlines() == [f"http://{host}/"]
    rentals.patch("nb", state="Paused")
    rentals.wait_phase("nb", "Paused")
    eventually(lambda: ingress(rentals, "nb") is None and service(rentals, "nb") is None,
               timeout=30)
    rentals.patch("nb", state="Running")
    rentals.wait_phase("nb", "Running")
    eventually_found(lambda: ingress(rentals, "nb"), timeout=30)
