"""Reaching a rental, as data: the sshd sidecar, the Service per exposure mode, the endpoints
computed from a Service as Kubernetes reports it, and the lifecycle's Service actions."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpurental import access, builders, lifecycle
from gpurental.lifecycle import ActionKind, Context
from gpurental.models import OfferSpec, RentalSpec, SpecError, parse_spec
from gpurental.observed import (
    Children,
    IngressView,
    PodView,
    PvcView,
    RentalView,
    SecretView,
    ServiceView,
)

T0 = datetime(2026, 6, 7, 8, 0, tzinfo=UTC)
BASE_OFFER = {"gpu": {"product": "NVIDIA-GeForce-RTX-4090"}, "pricePerGpuHour": "0.69"}
RENTAL = {"offer": "rtx4090", "image": "pytorch/pytorch:2.4.0",
          "ports": [{"name": "jupyter", "port": 8888, "http": True}]}


def offer(expose: str = "ClusterIP", ssh: bool = True, **ssh_extra: Any) -> OfferSpec:
    return parse_spec(OfferSpec, {**BASE_OFFER, "access": {
        "ssh": {"enabled": ssh, **ssh_extra}, "expose": {"type": expose}}})


def rental(**changes: Any) -> RentalSpec:
    return parse_spec(RentalSpec, {**RENTAL, **changes})


def test_offers_expose_nothing_and_run_no_sshd_by_default() -> None:
    plain = parse_spec(OfferSpec, BASE_OFFER)
    assert not access.ssh_enabled(plain)
    assert builders.make_service("ns", "r", "u", rental(ports=[]), plain) is None
    pod = builders.make_pod("ns", "r", "u", rental(ports=[]), plain)
    assert [c["name"] for c in pod["spec"]["containers"]] == ["workload"]
    assert "shareProcessNamespace" not in pod["spec"]


def test_the_sidecar_is_unprivileged_and_shares_volume_keys_and_processes() -> None:
    spec = rental(storage={"mountPath": "/data"})
    pod = builders.make_pod("ns", "r", "u", spec, offer(), sshd_image="example/sshd:1")
    workload, sshd = pod["spec"]["containers"]
    assert pod["spec"]["shareProcessNamespace"] is True
    assert sshd["name"] == "sshd" and sshd["image"] == "example/sshd:1"
    assert sshd["securityContext"] == {
        "runAsNonRoot": True, "runAsUser": 1000, "runAsGroup": 1000, "privileged": False,
        "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
    assert sshd["volumeMounts"] == [
        {"name": "storage", "mountPath": "/data"},
        {"name": "ssh-keys", "mountPath": "/etc/gpurental/ssh", "readOnly": True}]
    assert sshd["ports"] == [{"name": "ssh", "containerPort": 2222, "protocol": "TCP"}]
    script = sshd["command"][2]
    assert 'D="/data/.gpurental/sshd"' in script
    assert script.endswith('exec /usr/sbin/sshd -D -e -f "/etc/gpurental/ssh/sshd_config" "$@"')
    assert workload["ports"] == [{"name": "jupyter", "containerPort": 8888, "protocol": "TCP"}]


def test_the_offer_names_the_sidecar_image_over_the_operator_default() -> None:
    pod = builders.make_pod("ns", "r", "u", rental(), offer(image="corp/sshd:2"),
                            sshd_image="example/sshd:1")
    assert pod["spec"]["containers"][1]["image"] == "corp/sshd:2"


def test_sshd_config_reads_keys_from_the_secret_and_host_keys_from_the_volume() -> None:
    config = access.pod_sshd_config(rental().storage.mount_path)
    assert "AuthorizedKeysFile /etc/gpurental/ssh/authorized_keys\n" in config
    assert "HostKey /workspace/.gpurental/sshd/ssh_host_ed25519_key\n" in config
    assert "PasswordAuthentication no\n" in config and "Port 2222\n" in config


@pytest.mark.parametrize("expose", ["ClusterIP", "NodePort", "LoadBalancer"])
def test_one_service_of_the_offers_type_selects_the_rentals_pod(expose: str) -> None:
    service = builders.make_service("team-a", "finetune", "uid-1", rental(), offer(expose))
    assert service is not None
    assert service["metadata"]["name"] == "finetune"
    assert service["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
    assert service["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "gpu-rental-operator"
    assert service["spec"] == {
        "type": expose,
        "selector": {"gpurental.dev/rental-uid": "uid-1"},
        "ports": [
            {"name": "ssh", "port": 22, "protocol": "TCP", "targetPort": "ssh"},
            {"name": "jupyter", "port": 8888, "protocol": "TCP", "targetPort": 8888},
        ],
    }


def test_service_names_are_dns_labels() -> None:
    assert builders.service_name("finetune") == "finetune"
    assert builders.service_name("1st.run").startswith("rental-")
    assert len(builders.service_name("r" * 70)) <= 63


def test_ports_must_be_unique() -> None:
    with pytest.raises(SpecError, match="unique"):
        rental(ports=[{"name": "a", "port": 80}, {"name": "b", "port": 80}])


def service(type_: str = "ClusterIP", node_ports: dict[str, int] | None = None,
            ingress: tuple[str, ...] = ()) -> ServiceView:
    return ServiceView(name="finetune", type=type_, deleting=False, cluster_ip="10.96.0.12",
                       ports=(("ssh", 22), ("jupyter", 8888)), node_ports=node_ports or {},
                       ingress=ingress)


PORTS = access.exposed_ports(rental(), offer())


def test_cluster_ip_endpoints_are_in_cluster_addresses() -> None:
    ssh, web = access.endpoints(PORTS, service(), "172.18.0.5", "gpu")
    assert ssh == {"name": "ssh", "port": 22, "user": "gpu", "serviceType": "ClusterIP",
                   "serviceName": "finetune", "host": "10.96.0.12", "hostPort": 22,
                   "reach": "cluster", "connect": "ssh gpu@10.96.0.12"}
    assert web["connect"] == "http://10.96.0.12:8888/"


def test_node_port_endpoints_use_the_pods_node() -> None:
    ssh, web = access.endpoints(PORTS, service("NodePort", {"ssh": 30222, "jupyter": 31888}),
                                "10.0.0.7", "gpu")
    assert ssh["connect"] == "ssh -p 30222 gpu@10.0.0.7" and ssh["reach"] == "nodes"
    assert web["connect"] == "http://10.0.0.7:31888/"


def test_load_balancer_endpoints_wait_for_the_ingress_then_use_it() -> None:
    pending = service("LoadBalancer", {"ssh": 30222, "jupyter": 31888})
    ssh, _ = access.endpoints(PORTS, pending, "10.0.0.7", "gpu")
    assert ssh["connect"] == "ssh -p 30222 gpu@10.0.0.7"
    assert ssh["message"] == "the load balancer has no address yet"
    ready = service("LoadBalancer", {"ssh": 30222, "jupyter": 31888}, ("203.0.113.9",))
    ssh, web = access.endpoints(PORTS, ready, "10.0.0.7", "gpu")
    assert ssh["connect"] == "ssh gpu@203.0.113.9" and "message" not in ssh
    assert web["connect"] == "http://203.0.113.9:8888/"


def test_no_service_yet_means_no_address() -> None:
    (ssh, _) = access.endpoints(PORTS, None, None, "gpu")
    assert ssh == {"name": "ssh", "port": 22, "user": "gpu",
                   "message": "waiting for the Service's address"}
    assert access.ssh_summary([ssh]) == "waiting for the Service's address"


# --- lifecycle ----------------------------------------------------------------------------

def view(state: str = "Running", phase: str = "Running") -> RentalView:
    return RentalView(namespace="team-a", name="finetune", uid="uid-1", generation=1,
                      deleting=False, finalizers=("gpurental.dev/settlement",),
                      spec={**RENTAL, "state": state},
                      status={"phase": phase, "ratePerHour": "0.69",
                              "firstStartedAt": "2026-06-07T07:00:00Z",
                              "runningSince": "2026-06-07T07:00:00Z", "segmentPodUid": "p1",
                              "accruedSeconds": 0})


def children(svc: ServiceView | None, pod: bool = True) -> Children:
    spec = parse_spec(RentalSpec, RENTAL)
    return Children(
        pod=PodView(name="finetune", uid="p1", phase="Running", deleting=False,
                    started_at=T0, host_ip="10.0.0.7") if pod else None,
        pvc=PvcView(name="finetune-storage", phase="Bound", deleting=False),
        secret=SecretView(name="finetune-ssh", keys_digest=builders.secret_digest(spec)),
        service=svc)


def ctx(expose: str = "NodePort") -> Context:
    return Context(now=T0, offer=offer(expose))


def test_a_running_rental_gets_its_service_and_endpoints_follow_it() -> None:
    plan = lifecycle.plan(view(), children(None), ctx())
    assert plan.kinds() == [ActionKind.CREATE_SERVICE]
    assert plan.actions[0].body == builders.make_service(
        "team-a", "finetune", "uid-1", parse_spec(RentalSpec, RENTAL), offer("NodePort"))
    assert plan.status["ssh"] == "waiting for the Service's address"
    svc = service("NodePort", {"ssh": 30222, "jupyter": 31888})
    plan = lifecycle.plan(view(), children(svc), ctx())
    assert plan.kinds() == []
    assert plan.status["ssh"] == "ssh -p 30222 gpu@10.0.0.7"
    assert [e["connect"] for e in plan.status["endpoints"]] == [
        "ssh -p 30222 gpu@10.0.0.7", "http://10.0.0.7:31888/"]


def test_a_service_beyond_what_the_offer_allows_now_is_replaced() -> None:
    lb = service("LoadBalancer", {"ssh": 30222, "jupyter": 31888}, ("203.0.113.9",))
    plan = lifecycle.plan(view(), children(lb), ctx("ClusterIP"))
    assert plan.kinds() == [ActionKind.DELETE_SERVICE]


def test_pausing_deletes_the_service_and_endpoints_say_paused() -> None:
    svc = service("NodePort", {"ssh": 30222, "jupyter": 31888})
    plan = lifecycle.plan(view(state="Paused"), children(svc), ctx())
    assert ActionKind.DELETE_SERVICE in plan.kinds()
    assert plan.kinds().index(ActionKind.DELETE_POD) < plan.kinds().index(
        ActionKind.DELETE_SERVICE)
    assert plan.status["phase"] == "Paused"
    assert all(e["message"].startswith("paused") for e in plan.status["endpoints"])
    assert plan.status["ssh"].startswith("paused")


def test_stopping_deletes_the_service_and_clears_endpoints() -> None:
    svc = service("NodePort", {"ssh": 30222})
    plan = lifecycle.plan(view(state="Stopped"), children(svc), ctx())
    assert ActionKind.DELETE_SERVICE in plan.kinds()
    assert "endpoints" not in plan.status and "ssh" not in plan.status


def test_resuming_recreates_the_service() -> None:
    plan = lifecycle.plan(view(phase="Paused"), children(None, pod=False), ctx())
    assert ActionKind.CREATE_SERVICE in plan.kinds() and ActionKind.CREATE_POD in plan.kinds()
    pod = next(a.body for a in plan.actions if a.kind is ActionKind.CREATE_POD)
    assert pod is not None and pod["spec"]["containers"][1]["name"] == "sshd"


def test_a_declared_port_on_the_sidecars_port_keeps_the_rental_pending() -> None:
    spec = {**RENTAL, "ports": [{"name": "web", "port": 2222}]}
    rental_view = RentalView(namespace="team-a", name="finetune", uid="uid-1", generation=1,
                             deleting=False, finalizers=("gpurental.dev/settlement",), spec=spec)
    plan = lifecycle.plan(rental_view, Children(), ctx())
    assert plan.status["phase"] == "Pending"
    assert "sshd sidecar" in plan.status["message"]
    assert ActionKind.CREATE_POD not in plan.kinds()
    assert access.port_conflict(parse_spec(RentalSpec, spec), offer(ssh=False)) is None


# --- Ingress for web ports ----------------------------------------------------------------

def routed_offer(tls: bool = False) -> OfferSpec:
    ingress: dict[str, Any] = {"hostTemplate": "{port}-{rental}-{namespace}.gpus.example",
                               "className": "nginx"}
    if tls:
        ingress["tlsSecretName"] = "wildcard-gpus"
    return parse_spec(OfferSpec, {**BASE_OFFER, "access": {"ssh": {"enabled": True},
                                                          "ingress": ingress}})


def test_an_ingress_routes_only_the_http_ports_by_the_platforms_host() -> None:
    spec = rental(ports=[{"name": "jupyter", "port": 8888, "http": True},
                         {"name": "grpc", "port": 9000}])
    ingress = builders.make_ingress("team-a", "nb", "uid-1", spec, routed_offer(tls=True))
    assert ingress is not None
    assert ingress["metadata"]["name"] == "nb"
    assert ingress["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
    assert ingress["spec"] == {
        "ingressClassName": "nginx",
        "rules": [{"host": "jupyter-nb-team-a.gpus.example", "http": {"paths": [{
            "path": "/", "pathType": "Prefix",
            "backend": {"service": {"name": "nb", "port": {"name": "jupyter"}}}}]}}],
        "tls": [{"hosts": ["jupyter-nb-team-a.gpus.example"], "secretName": "wildcard-gpus"}],
    }
    assert builders.make_ingress("team-a", "nb", "uid-1", spec, offer()) is None
    assert builders.make_ingress("team-a", "nb", "uid-1", rental(ports=[]),
                                 routed_offer()) is None


def test_host_templates_name_only_known_placeholders() -> None:
    with pytest.raises(SpecError, match="hostTemplate"):
        parse_spec(OfferSpec, {**BASE_OFFER, "access": {"ingress": {
            "hostTemplate": "{user}.gpus.example"}}})


def test_a_routed_web_port_is_reached_by_its_host() -> None:
    body = builders.make_ingress("team-a", "nb", "uid-1", rental(), routed_offer(tls=True))
    assert body is not None
    ingress = IngressView.from_dict(body)
    ssh, web = access.endpoints(PORTS, service("NodePort", {"ssh": 30222, "jupyter": 31888}),
                                "10.0.0.7", "gpu", ingress)
    assert web["connect"] == "https://jupyter-nb-team-a.gpus.example/"
    assert (web["reach"], web["hostPort"]) == ("ingress", 443)
    assert ssh["connect"] == "ssh -p 30222 gpu@10.0.0.7"


def test_the_ingress_comes_and_goes_with_the_service() -> None:
    context = Context(now=T0, offer=routed_offer())
    plan = lifecycle.plan(view(), children(service()), context)
    assert plan.kinds() == [ActionKind.CREATE_INGRESS]
    body = plan.actions[0].body
    assert body is not None
    routed = Children(**{**children(service()).__dict__, "ingress": IngressView.from_dict(body)})
    plan = lifecycle.plan(view(), routed, context)
    assert plan.kinds() == []
    assert plan.status["endpoints"][1]["connect"] == "http://jupyter-finetune-team-a.gpus.example/"
    plan = lifecycle.plan(view(state="Paused"), routed, context)
    assert {ActionKind.DELETE_SERVICE, ActionKind.DELETE_INGRESS} <= set(plan.kinds())
    # An offer that stops routing takes the Ingress away from running rentals too.
    plan = lifecycle.plan(view(), routed, ctx("ClusterIP"))
    assert ActionKind.DELETE_INGRESS in plan.kinds()


def test_the_sidecar_can_write_its_host_keys_on_privileged_offers_too() -> None:
    privileged = parse_spec(OfferSpec, {**BASE_OFFER, "privileged": True,
                                        "access": {"ssh": {"enabled": True}}})
    pod = builders.make_pod("ns", "r", "u", rental(), privileged)
    assert pod["spec"]["securityContext"]["fsGroup"] == 1000
    assert pod["spec"]["containers"][0]["securityContext"] == {"privileged": True}
    assert pod["spec"]["containers"][1]["securityContext"]["privileged"] is False


@given(
    node_port=st.one_of(st.none(), st.integers(30000, 32767)),
    host_ip=st.one_of(st.none(), st.just("10.0.0.7")),
    lb=st.lists(st.sampled_from(["203.0.113.9", "lb.example"]), max_size=2, unique=True),
)
def test_every_port_gets_the_widest_address_kubernetes_gave(
        node_port: int | None, host_ip: str | None, lb: list[str]) -> None:
    ports = {"ssh": node_port, "jupyter": node_port and node_port + 1}
    svc = service("LoadBalancer" if lb else "NodePort" if node_port else "ClusterIP",
                  {k: v for k, v in ports.items() if v}, tuple(lb))
    entries = access.endpoints(PORTS, svc, host_ip, "gpu")
    assert [e["name"] for e in entries] == ["ssh", "jupyter"]
    for entry in entries:
        expected = ("load-balancer" if lb else "nodes" if node_port and host_ip
                    else "cluster")
        assert entry["reach"] == expected
        assert entry["connect"].startswith("ssh " if entry["name"] == "ssh" else "http://")
