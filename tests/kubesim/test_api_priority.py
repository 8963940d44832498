"""PriorityClasses and the Priority admission plugin, as kube-apiserver applies them."""

from __future__ import annotations

import uuid

import pytest


def _pod(name: str, priority_class: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"priorityClassName": priority_class,
                     "containers": [{"name": "c", "image": "busybox:1.36"}]}}


@pytest.fixture
def priority_class(kubectl) -> str:
    name = f"low-{uuid.uuid4().hex[:8]}"
    kubectl("apply", "-f", "-", input=f"""
apiVersion: scheduling.k8s.io/v1
kind: PriorityClass
metadata: {{name: {name}}}
value: -1000
preemptionPolicy: Never
""")
    yield name
    kubectl("delete", "priorityclass", name)


def test_a_pods_priority_class_sets_its_priority_and_preemption_policy(
        http, namespace, priority_class):
    rsp = http("POST", f"/api/v1/namespaces/{namespace}/pods", json=_pod("p", priority_class))
    assert rsp.status_code == 201, rsp.text
    spec = rsp.json()["spec"]
    assert spec["priority"] == -1000
    assert spec["preemptionPolicy"] == "Never"


def test_a_pod_naming_a_missing_priority_class_is_forbidden(http, namespace):
    rsp = http("POST", f"/api/v1/namespaces/{namespace}/pods", json=_pod("q", "no-such-class"))
    assert rsp.status_code == 403
    body = rsp.json()
    assert body["reason"] == "Forbidden"
    assert body["message"] == ('pods "q" is forbidden: no PriorityClass with name '
                               "no-such-class was found")
