"""Patch types: JSON merge, JSON patch (with `test`), strategic merge, server-side apply."""

from __future__ import annotations

MERGE = {"Content-Type": "application/merge-patch+json"}
JSONP = {"Content-Type": "application/json-patch+json"}
SMP = {"Content-Type": "application/strategic-merge-patch+json"}
APPLY = {"Content-Type": "application/apply-patch+yaml"}


def _pod(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [
                {"name": "a", "image": "img:1", "env": [{"name": "X", "value": "1"}]},
                {"name": "b", "image": "img:2"}]}}


def _widget(name: str, **spec) -> dict:
    return {"apiVersion": "kubesim.test/v1", "kind": "Widget", "metadata": {"name": name},
            "spec": {"size": 1, **spec}}


def test_merge_patch_merges_maps_and_null_deletes(http, namespace):
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    http("POST", path, json={"metadata": {"name": "m", "labels": {"a": "1", "b": "2"}},
                             "data": {"k": "v"}})
    rsp = http("PATCH", f"{path}/m", headers=MERGE,
               json={"metadata": {"labels": {"a": None, "c": "3"}}, "data": {"n": "w"}})
    assert rsp.status_code == 200
    body = rsp.json()
    assert body["metadata"]["labels"] == {"b": "2", "c": "3"}
    assert body["data"] == {"k": "v", "n": "w"}


def test_json_patch_test_op_mismatch_is_422(http, namespace, widget_crd):
    path = f"/apis/kubesim.test/v1/namespaces/{namespace}/widgets"
    made = http("POST", path, json=_widget("w")).json()
    rv = made["metadata"]["resourceVersion"]
    ok = http("PATCH", f"{path}/w", headers=JSONP, json=[
        {"op": "test", "path": "/metadata/resourceVersion", "value": rv},
        {"op": "add", "path": "/metadata/finalizers", "value": ["x.io/f"]}])
    assert ok.status_code == 200
    assert ok.json()["metadata"]["finalizers"] == ["x.io/f"]
    stale = http("PATCH", f"{path}/w", headers=JSONP, json=[
        {"op": "test", "path": "/metadata/resourceVersion", "value": rv},
        {"op": "remove", "path": "/metadata/finalizers/0"}])
    assert stale.status_code == 422
    assert stale.json()["kind"] == "Status"
    current = http("GET", f"{path}/w").json()
    assert current["metadata"]["finalizers"] == ["x.io/f"]
    http("PATCH", f"{path}/w", headers=MERGE, json={"metadata": {"finalizers": None}})


def test_json_patch_remove_missing_path_is_422(http, namespace):
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    http("POST", path, json={"metadata": {"name": "j"}})
    rsp = http("PATCH", f"{path}/j", headers=JSONP,
               json=[{"op": "remove", "path": "/data/missing"}])
    assert rsp.status_code == 422


def test_merge_patch_with_stale_resource_version_is_409(http, namespace):
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    made = http("POST", path, json={"metadata": {"name": "r"}}).json()
    http("PATCH", f"{path}/r", headers=MERGE, json={"data": {"a": "1"}})
    rsp = http("PATCH", f"{path}/r", headers=MERGE, json={
        "metadata": {"resourceVersion": made["metadata"]["resourceVersion"]},
        "data": {"a": "2"}})
    assert rsp.status_code == 409


def test_strategic_merge_merges_containers_and_env_by_name(http, namespace):
    path = f"/apis/apps/v1/namespaces/{namespace}/deployments"
    template = {"metadata": {"labels": {"app": "d"}}, "spec": _pod("x")["spec"]}
    http("POST", path, json={"metadata": {"name": "d"}, "spec": {
        "selector": {"matchLabels": {"app": "d"}}, "template": template}})
    rsp = http("PATCH", f"{path}/d", headers=SMP, json={"spec": {"template": {"spec": {
        "containers": [{"name": "a", "image": "img:9", "env": [{"name": "Y", "value": "2"}]}]}}}})
    assert rsp.status_code == 200
    containers = rsp.json()["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["a", "b"]
    assert containers[0]["image"] == "img:9"
    # The patch's new entry comes first (apimachinery's normalizeElementOrder).
    assert containers[0]["env"] == [{"name": "Y", "value": "2"}, {"name": "X", "value": "1"}]
    deleted = http("PATCH", f"{path}/d", headers=SMP, json={"spec": {"template": {"spec": {
        "containers": [{"name": "b", "$patch": "delete"}]}}}}).json()
    assert [c["name"] for c in deleted["spec"]["template"]["spec"]["containers"]] == ["a"]


def test_strategic_merge_on_custom_resource_is_415(http, namespace, widget_crd):
    path = f"/apis/kubesim.test/v1/namespaces/{namespace}/widgets"
    http("POST", path, json=_widget("s"))
    rsp = http("PATCH", f"{path}/s", headers=SMP, json={"spec": {"size": 2}})
    assert rsp.status_code == 415
    assert rsp.json()["reason"] == "UnsupportedMediaType"


def test_server_side_apply_creates_then_merges(http, namespace):
    path = f"/api/v1/namespaces/{namespace}/configmaps/ssa"
    doc = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa\ndata:\n  a: '1'\n"
    created = http("PATCH", path, headers=APPLY, params={"fieldManager": "me"}, data=doc)
    assert created.status_code == 201
    doc2 = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa\ndata:\n  b: '2'\n"
    merged = http("PATCH", path, headers=APPLY, params={"fieldManager": "me"}, data=doc2)
    assert merged.status_code == 200
    assert merged.json()["data"]["b"] == "2"


def test_apply_without_field_manager_is_rejected(http, namespace):
    rsp = http("PATCH", f"/api/v1/namespaces/{namespace}/configmaps/x", headers=APPLY,
               data="apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
    assert rsp.status_code == 422


def test_patch_missing_object_is_404(http, namespace):
    rsp = http("PATCH", f"/api/v1/namespaces/{namespace}/configmaps/none", headers=MERGE,
               json={"data": {}})
    assert rsp.status_code == 404


def test_unknown_patch_type_is_415(http, namespace):
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    http("POST", path, json={"metadata": {"name": "u"}})
    rsp = http("PATCH", f"{path}/u", headers={"Content-Type": "text/plain"}, data="x")
    assert rsp.status_code == 415


def test_pod_spec_is_immutable_except_image(http, namespace):
    path = f"/api/v1/namespaces/{namespace}/pods"
    http("POST", path, json=_pod("p"))
    ok = http("PATCH", f"{path}/p", headers=SMP,
              json={"spec": {"containers": [{"name": "a", "image": "img:3"}]}})
    assert ok.status_code == 200
    bad = http("PATCH", f"{path}/p", headers=MERGE, json={"spec": {"restartPolicy": "Never"}})
    assert bad.status_code == 422
    assert "pod updates may not change fields" in bad.json()["message"]
