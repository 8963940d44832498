"""Status subresource isolation and metadata.generation semantics."""

from __future__ import annotations

MERGE = {"Content-Type": "application/merge-patch+json"}


def _make(http, namespace, name="w", **spec):
    path = f"/apis/kubesim.test/v1/namespaces/{namespace}/widgets"
    body = {"apiVersion": "kubesim.test/v1", "kind": "Widget", "metadata": {"name": name},
            "spec": {"size": 1, **spec}, "status": {"phase": "Ignored"}}
    return path, http("POST", path, json=body)


def test_create_ignores_status_when_subresource_exists(http, namespace, widget_crd):
    _path, rsp = _make(http, namespace)
    assert rsp.status_code == 201
    assert "status" not in rsp.json()
    assert rsp.json()["metadata"]["generation"] == 1


def test_main_resource_write_ignores_status(http, namespace, widget_crd):
    path, _ = _make(http, namespace)
    http("PATCH", f"{path}/w/status", headers=MERGE, json={"status": {"phase": "Real"}})
    rsp = http("PATCH", f"{path}/w", headers=MERGE,
               json={"spec": {"size": 2}, "status": {"phase": "Hacked"}})
    assert rsp.json()["status"] == {"phase": "Real"}
    assert rsp.json()["spec"]["size"] == 2


def test_status_write_changes_only_status(http, namespace, widget_crd):
    path, _ = _make(http, namespace)
    rsp = http("PATCH", f"{path}/w/status", headers=MERGE, json={
        "spec": {"size": 9}, "metadata": {"labels": {"x": "y"}}, "status": {"phase": "Ok"}})
    assert rsp.status_code == 200
    body = rsp.json()
    assert body["status"] == {"phase": "Ok"}
    assert body["spec"]["size"] == 1
    assert "labels" not in body["metadata"]


def test_put_status(http, namespace, widget_crd):
    path, made = _make(http, namespace)
    obj = made.json()
    obj["status"] = {"phase": "Put", "count": 2}
    rsp = http("PUT", f"{path}/w/status", json=obj)
    assert rsp.status_code == 200
    assert rsp.json()["status"] == {"phase": "Put", "count": 2}


def test_generation_bumps_on_spec_only(http, namespace, widget_crd):
    path, _ = _make(http, namespace)
    g = lambda: http("GET", f"{path}/w").json()["metadata"]["generation"]  # noqa: E731
    http("PATCH", f"{path}/w/status", headers=MERGE, json={"status": {"phase": "A"}})
    assert g() == 1
    http("PATCH", f"{path}/w", headers=MERGE, json={"metadata": {"labels": {"l": "v"}}})
    assert g() == 1
    http("PATCH", f"{path}/w", headers=MERGE, json={"spec": {"size": 3}})
    assert g() == 2
    http("PATCH", f"{path}/w", headers=MERGE, json={"spec": {"size": 3}})
    assert g() == 2


def test_status_write_bumps_resource_version(http, namespace, widget_crd):
    path, made = _make(http, namespace)
    rv0 = int(made.json()["metadata"]["resourceVersion"])
    rsp = http("PATCH", f"{path}/w/status", headers=MERGE, json={"status": {"phase": "B"}})
    assert int(rsp.json()["metadata"]["resourceVersion"]) > rv0


def test_pod_status_subresource(http, namespace):
    path = f"/api/v1/namespaces/{namespace}/pods"
    http("POST", path, json={"metadata": {"name": "p"},
                             "spec": {"containers": [{"name": "c", "image": "i"}]}})
    assert http("GET", f"{path}/p").json()["status"]["phase"] == "Pending"
    http("PATCH", f"{path}/p", headers=MERGE, json={"status": {"phase": "Running"}})
    assert http("GET", f"{path}/p").json()["status"]["phase"] == "Pending"
    http("PATCH", f"{path}/p/status", headers=MERGE, json={"status": {"phase": "Running"}})
    assert http("GET", f"{path}/p").json()["status"]["phase"] == "Running"


def test_pod_binding_sets_node_name(http, namespace):
    path = f"/api/v1/namespaces/{namespace}/pods"
    # A scheduler of no one's: kube-scheduler must not race the test's own binding.
    http("POST", path, json={"metadata": {"name": "b"},
                             "spec": {"schedulerName": "by-hand",
                                      "containers": [{"name": "c", "image": "i"}]}})
    rsp = http("POST", f"{path}/b/binding", json={
        "apiVersion": "v1", "kind": "Binding", "metadata": {"name": "b"},
        "target": {"apiVersion": "v1", "kind": "Node", "name": "node-1"}})
    assert rsp.status_code == 201
    pod = http("GET", f"{path}/b").json()
    assert pod["spec"]["nodeName"] == "node-1"
    scheduled = pod["status"]["conditions"][0]
    assert (scheduled["type"], scheduled["status"]) == ("PodScheduled", "True")
    again = http("POST", f"{path}/b/binding", json={
        "apiVersion": "v1", "kind": "Binding", "metadata": {"name": "b"},
        "target": {"kind": "Node", "name": "node-2"}})
    assert again.status_code == 409


def test_deployment_scale_subresource(http, namespace, kubectl):
    path = f"/apis/apps/v1/namespaces/{namespace}/deployments"
    http("POST", path, json={"metadata": {"name": "d"}, "spec": {
        "replicas": 1, "selector": {"matchLabels": {"app": "d"}},
        "template": {"metadata": {"labels": {"app": "d"}},
                     "spec": {"containers": [{"name": "c", "image": "i"}]}}}})
    got = http("GET", f"{path}/d/scale").json()
    assert got["kind"] == "Scale" and got["apiVersion"] == "autoscaling/v1"
    assert got["spec"] == {"replicas": 1} and got["status"]["selector"] == "app=d"
    rsp = http("PATCH", f"{path}/d/scale", headers=MERGE, json={"spec": {"replicas": 3}})
    assert rsp.status_code == 200 and rsp.json()["spec"]["replicas"] == 3
    deployment = http("GET", f"{path}/d").json()
    assert deployment["spec"]["replicas"] == 3 and deployment["metadata"]["generation"] == 2
    kubectl("scale", "deployment", "d", "-n", namespace, "--replicas=5")
    assert http("GET", f"{path}/d").json()["spec"]["replicas"] == 5


def test_pod_log_subresource(http, namespace):
    path = f"/api/v1/namespaces/{namespace}/pods"
    http("POST", path, json={"metadata": {"name": "l"},
                             "spec": {"containers": [{"name": "c", "image": "i"}]}})
    waiting = http("GET", f"{path}/l/log")
    assert waiting.status_code == 400
    assert waiting.json()["message"] == ('container "c" in pod "l" is waiting to start: '
                                         "ContainerCreating")
    http("PATCH", f"{path}/l/status", headers=MERGE, json={"status": {
        "phase": "Running", "containerStatuses": [{"name": "c", "ready": True,
                                                   "state": {"running": {}}}]}})
    http("PATCH", f"{path}/l", headers=MERGE,
         json={"metadata": {"annotations": {"kubesim.dev/log": "one\ntwo\n"}}})
    rsp = http("GET", f"{path}/l/log", params={"tailLines": "1"})
    assert rsp.status_code == 200 and rsp.text == "two\n"
