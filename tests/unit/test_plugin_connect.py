"""`kubectl gpurental ssh` / `open` invocations as data."""

from __future__ import annotations

from typing import Any

import pytest

from gpurental.plugin import connect


def rental(phase: str = "Running", reach: str = "nodes") -> dict[str, Any]:
    return {"metadata": {"name": "nb", "namespace": "team-a"},
            "status": {"phase": phase, "endpoints": [
                {"name": "ssh", "port": 22, "user": "gpu", "serviceName": "nb",
                 "host": "10.0.0.7", "hostPort": 30222, "reach": reach},
                {"name": "jupyter", "port": 8888, "serviceName": "nb", "host": "10.0.0.7",
                 "hostPort": 31888, "reach": reach}]}}


ALIAS = ["-o", "HostKeyAlias=nb.team-a.gpurental"]


def test_ssh_goes_straight_to_an_exposed_address() -> None:
    plan = connect.ssh_plan(rental(), ["nvidia-smi"], 40000)
    assert plan == connect.Plan(["ssh", "-p", "30222", *ALIAS, "gpu@10.0.0.7", "nvidia-smi"])


def test_ssh_forwards_when_only_the_cluster_reaches_the_rental() -> None:
    plan = connect.ssh_plan(rental(reach="cluster"), [], 40000, ["kubectl", "--context", "c"])
    assert plan.port_forward == ["kubectl", "--context", "c", "-n", "team-a", "port-forward",
                                 "svc/nb", "40000:22"]
    assert plan.command == ["ssh", "-p", "40000", *ALIAS, "gpu@127.0.0.1"]
    assert plan.lines() == ["kubectl --context c -n team-a port-forward svc/nb 40000:22",
                            f"ssh -p 40000 {' '.join(ALIAS)} gpu@127.0.0.1"]


def test_open_prints_the_url_directly_or_through_a_forward() -> None:
    assert connect.open_plan(rental(), "jupyter", 1).url == "http://10.0.0.7:31888/"
    forwarded = connect.open_plan(rental(), "8888", 48888, forward=True)
    assert forwarded.url == "http://127.0.0.1:48888/"
    assert forwarded.port_forward[-2:] == ["svc/nb", "48888:8888"]


@pytest.mark.parametrize(("body", "message"), [
    (rental(phase="Paused"), 'is Paused, not Running; `kubectl gpurental resume nb` first'),
    (rental(phase="Provisioning"), 'is Provisioning, not Running'),
])
def test_not_running_is_a_clear_error(body: dict[str, Any], message: str) -> None:
    with pytest.raises(connect.ConnectError, match=message.replace("`", ".")):
        connect.ssh_plan(body, [], 1)


def test_an_undeclared_port_is_a_clear_error() -> None:
    with pytest.raises(connect.ConnectError, match="no port 'tensorboard'"):
        connect.open_plan(rental(), "tensorboard", 1)


def test_open_uses_a_routed_hosts_url() -> None:
    body = rental()
    body["status"]["endpoints"][1].update(
        reach="ingress", host="jupyter-nb-team-a.gpus.example", hostPort=443,
        connect="https://jupyter-nb-team-a.gpus.example/")
    plan = connect.open_plan(body, "jupyter", 1)
    assert plan == connect.Plan([], url="https://jupyter-nb-team-a.gpus.example/")
