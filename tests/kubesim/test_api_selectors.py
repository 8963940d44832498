"""Label selectors (equality and set-based) and field selectors on list and watch."""

from __future__ import annotations

import pytest
from kubernetes import client

ROOT_CA = "kube-root-ca.crt"  # the ConfigMap the root-ca-cert-publisher puts in every namespace


@pytest.fixture
def labelled(api_client, namespace):
    core = client.CoreV1Api(api_client)
    for name, labels in (("a", {"env": "prod", "tier": "web"}), ("b", {"env": "dev"}),
                         ("c", {"env": "qa", "tier": "db"}), ("d", {})):
        core.create_namespaced_config_map(namespace, {"metadata": {"name": name,
                                                                   "labels": labels}})
    return core


@pytest.mark.parametrize(("selector", "names"), [
    ("env=prod", ["a"]),
    ("env==prod", ["a"]),
    ("env!=prod", ["b", "c", "d"]),
    ("env in (prod,qa)", ["a", "c"]),
    ("env notin (prod, qa)", ["b", "d"]),
    ("tier", ["a", "c"]),
    ("!tier", ["b", "d"]),
    ("env in (prod,qa),tier=db", ["c"]),
])
def test_label_selectors(labelled, namespace, selector, names):
    found = labelled.list_namespaced_config_map(namespace, label_selector=selector).items
    # kube-root-ca.crt, in every namespace, has no labels: the negative selectors match it.
    if selector in ("env!=prod", "env notin (prod, qa)", "!tier"):
        names = sorted([*names, ROOT_CA])
    assert [c.metadata.name for c in found] == names


def test_field_selector_metadata_name(labelled, namespace):
    found = labelled.list_namespaced_config_map(namespace, field_selector="metadata.name=b")
    assert [c.metadata.name for c in found.items] == ["b"]
    others = labelled.list_namespaced_config_map(namespace, field_selector="metadata.name!=b")
    assert [c.metadata.name for c in others.items] == ["a", "c", "d", ROOT_CA]


def test_field_selector_metadata_namespace_across_namespaces(labelled, namespace):
    found = labelled.list_config_map_for_all_namespaces(
        field_selector=f"metadata.namespace={namespace}")
    assert {c.metadata.namespace for c in found.items} == {namespace}


def test_pod_field_selectors(http, namespace):
    path = f"/api/v1/namespaces/{namespace}/pods"
    for name in ("p1", "p2"):
        http("POST", path, json={"metadata": {"name": name},
                                 "spec": {"containers": [{"name": "c", "image": "i"}]}})
    http("POST", f"{path}/p1/binding", json={"apiVersion": "v1", "kind": "Binding",
                                             "metadata": {"name": "p1"},
                                             "target": {"kind": "Node", "name": "n1"}})
    http("PATCH", f"{path}/p1/status", headers={"Content-Type": "application/merge-patch+json"},
         json={"status": {"phase": "Running"}})
    names = lambda sel: [p["metadata"]["name"] for p in  # noqa: E731
                         http("GET", path, params={"fieldSelector": sel}).json()["items"]]
    assert names("spec.nodeName=n1") == ["p1"]
    assert names("spec.nodeName=") == ["p2"]
    assert names("status.phase=Running") == ["p1"]
    assert names("status.phase!=Running,spec.nodeName=") == ["p2"]


def test_unsupported_field_selector_is_400(http, namespace):
    rsp = http("GET", f"/api/v1/namespaces/{namespace}/configmaps",
               params={"fieldSelector": "data.k=v"})
    assert rsp.status_code == 400
    assert rsp.json()["message"] == ('"data.k" is not a known field selector: only '
                                     '"metadata.name", "metadata.namespace"')


def test_field_selector_on_events(http, namespace):
    path = f"/api/v1/namespaces/{namespace}/events"
    for obj in ("x", "y"):
        http("POST", path, json={"metadata": {"generateName": f"{obj}."}, "reason": "R",
                                 "involvedObject": {"kind": "Pod", "name": obj,
                                                    "namespace": namespace}})
    found = http("GET", path, params={"fieldSelector": "involvedObject.name=y"}).json()
    assert [e["involvedObject"]["name"] for e in found["items"]] == ["y"]


def test_field_selector_on_watch(http, namespace):
    import json as _json

    path = f"/api/v1/namespaces/{namespace}/configmaps"
    rv = http("GET", path).json()["metadata"]["resourceVersion"]
    for name in ("skip", "want"):
        http("POST", path, json={"metadata": {"name": name}})
    params = {"watch": "true", "timeoutSeconds": "10", "resourceVersion": rv,
              "fieldSelector": "metadata.name=want"}
    with http("GET", path, params=params, stream=True) as rsp:
        first = _json.loads(next(line for line in rsp.iter_lines() if line))
    assert (first["type"], first["object"]["metadata"]["name"]) == ("ADDED", "want")
