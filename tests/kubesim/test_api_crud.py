"""Create / get / list / update / delete as kube-apiserver answers them (API conventions)."""

from __future__ import annotations

import re

import pytest
from kubernetes import client


def _cm(name: str, **data: str) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


def test_create_returns_201_with_server_fields(http, namespace):
    rsp = http("POST", f"/api/v1/namespaces/{namespace}/configmaps", json=_cm("a", k="v"))
    assert rsp.status_code == 201
    meta = rsp.json()["metadata"]
    assert re.fullmatch(r"[0-9a-f-]{36}", meta["uid"])
    assert meta["resourceVersion"].isdigit()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", meta["creationTimestamp"])
    assert meta["namespace"] == namespace


def test_resource_version_is_one_global_counter(http, namespace):
    a = http("POST", f"/api/v1/namespaces/{namespace}/configmaps", json=_cm("a")).json()
    b = http("POST", f"/api/v1/namespaces/{namespace}/secrets",
             json={"metadata": {"name": "s"}}).json()
    assert int(b["metadata"]["resourceVersion"]) > int(a["metadata"]["resourceVersion"])
    listed = http("GET", f"/api/v1/namespaces/{namespace}/configmaps").json()
    assert int(listed["metadata"]["resourceVersion"]) >= int(b["metadata"]["resourceVersion"])


def test_generate_name(api_client, namespace):
    core = client.CoreV1Api(api_client)
    made = core.create_namespaced_config_map(
        namespace, {"metadata": {"generateName": "gen-"}, "data": {}})
    assert made.metadata.name.startswith("gen-") and len(made.metadata.name) == 9


def test_create_existing_name_is_409_already_exists(http, namespace):
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    http("POST", path, json=_cm("dup"))
    rsp = http("POST", path, json=_cm("dup"))
    assert rsp.status_code == 409
    body = rsp.json()
    assert body["kind"] == "Status" and body["status"] == "Failure"
    assert body["reason"] == "AlreadyExists" and body["code"] == 409
    assert body["message"] == 'configmaps "dup" already exists'
    assert body["details"] == {"name": "dup", "kind": "configmaps"}


def test_get_missing_is_404_status(http, namespace):
    rsp = http("GET", f"/api/v1/namespaces/{namespace}/configmaps/nope")
    assert rsp.status_code == 404
    body = rsp.json()
    assert body["reason"] == "NotFound"
    assert body["message"] == 'configmaps "nope" not found'
    assert body["details"]["name"] == "nope"


def test_unknown_resource_is_404(http):
    # No such group: the server's mux answers a plain page, not a Status.
    rsp = http("GET", "/apis/nothing.example/v1/things")
    assert rsp.status_code == 404
    assert rsp.text == "404 page not found\n"
    # A served group without the resource: a Status.
    rsp = http("GET", "/api/v1/things")
    assert rsp.status_code == 404
    assert rsp.json()["reason"] == "NotFound"


def test_create_in_missing_namespace_is_404(http):
    rsp = http("POST", "/api/v1/namespaces/does-not-exist/configmaps", json=_cm("x"))
    assert rsp.status_code == 404
    assert rsp.json()["message"] == 'namespaces "does-not-exist" not found'


def test_namespace_mismatch_is_400(http, namespace):
    body = _cm("x")
    body["metadata"]["namespace"] = "other"
    rsp = http("POST", f"/api/v1/namespaces/{namespace}/configmaps", json=body)
    assert rsp.status_code == 400
    assert rsp.json()["reason"] == "BadRequest"


def test_invalid_name_is_422(http, namespace):
    rsp = http("POST", f"/api/v1/namespaces/{namespace}/configmaps", json=_cm("Bad_Name"))
    assert rsp.status_code == 422
    body = rsp.json()
    assert body["reason"] == "Invalid"
    assert body["message"].startswith('ConfigMap "Bad_Name" is invalid: metadata.name: '
                                      'Invalid value: "Bad_Name"')
    assert body["details"]["causes"][0]["field"] == "metadata.name"


def test_put_with_stale_resource_version_is_409(http, namespace):
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    first = http("POST", path, json=_cm("c", k="1")).json()
    current = dict(first, data={"k": "2"})
    assert http("PUT", f"{path}/c", json=current).status_code == 200
    stale = dict(first, data={"k": "3"})
    rsp = http("PUT", f"{path}/c", json=stale)
    assert rsp.status_code == 409
    assert rsp.json()["reason"] == "Conflict"
    assert "the object has been modified" in rsp.json()["message"]


def test_noop_update_keeps_resource_version(http, namespace):
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    made = http("POST", path, json=_cm("same", k="v")).json()
    again = http("PUT", f"{path}/same", json=made).json()
    assert again["metadata"]["resourceVersion"] == made["metadata"]["resourceVersion"]


def test_cluster_scoped_and_namespaced(api_client, namespace):
    rbac = client.RbacAuthorizationV1Api(api_client)
    name = f"cr-{namespace}"
    made = rbac.create_cluster_role({"metadata": {"name": name}, "rules": []})
    assert made.metadata.namespace is None
    assert name in [r.metadata.name for r in rbac.list_cluster_role().items]
    rbac.create_namespaced_role(namespace, {"metadata": {"name": "r"}, "rules": []})
    assert [r.metadata.name for r in rbac.list_namespaced_role(namespace).items] == ["r"]
    rbac.delete_cluster_role(name)


def test_list_all_namespaces_and_pagination(http, namespace):
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    for i in range(5):
        http("POST", path, json=_cm(f"p{i}"))
    # Every namespace also holds kube-root-ca.crt (the root-ca-cert-publisher's): page past it.
    first = http("GET", path, params={"limit": 3}).json()
    assert [i["metadata"]["name"] for i in first["items"]] == ["kube-root-ca.crt", "p0", "p1"]
    token = first["metadata"]["continue"]
    rest = http("GET", path, params={"limit": 10, "continue": token}).json()
    assert [i["metadata"]["name"] for i in rest["items"]] == ["p2", "p3", "p4"]
    assert "continue" not in rest["metadata"]
    everywhere = http("GET", "/api/v1/configmaps").json()
    assert everywhere["kind"] == "ConfigMapList"
    assert {"p0", "p4"} <= {i["metadata"]["name"] for i in everywhere["items"]}


def test_delete_returns_status_then_404(http, namespace):
    """A built-in kind deleted at once answers a Status naming it (custom resources and
    pending deletions answer the object)."""
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    made = http("POST", path, json=_cm("gone")).json()
    rsp = http("DELETE", f"{path}/gone")
    assert rsp.status_code == 200
    body = rsp.json()
    assert (body["kind"], body["status"]) == ("Status", "Success")
    assert body["details"] == {"name": "gone", "kind": "configmaps",
                               "uid": made["metadata"]["uid"]}
    assert http("GET", f"{path}/gone").status_code == 404
    assert http("DELETE", f"{path}/gone").status_code == 404


def test_delete_precondition_uid_mismatch_is_409(http, namespace):
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    http("POST", path, json=_cm("pre"))
    rsp = http("DELETE", f"{path}/pre", json={"preconditions": {"uid": "not-it"}})
    assert rsp.status_code == 409


def test_deletecollection_with_label_selector(api_client, namespace):
    core = client.CoreV1Api(api_client)
    for name, team in (("a", "x"), ("b", "x"), ("c", "y")):
        core.create_namespaced_config_map(
            namespace, {"metadata": {"name": name, "labels": {"team": team}}})
    core.delete_collection_namespaced_config_map(namespace, label_selector="team=x")
    left = [c.metadata.name for c in core.list_namespaced_config_map(namespace).items]
    assert left == ["c", "kube-root-ca.crt"]  # the root-ca-cert-publisher's, unlabelled


def test_secret_string_data_folds_into_data(api_client, namespace):
    core = client.CoreV1Api(api_client)
    made = core.create_namespaced_secret(
        namespace, {"metadata": {"name": "s"}, "stringData": {"k": "hello"}})
    assert made.data == {"k": "aGVsbG8="} and made.string_data is None
    assert made.type == "Opaque"


def test_wrong_kind_in_body_is_400(http, namespace):
    rsp = http("POST", f"/api/v1/namespaces/{namespace}/configmaps",
               json={"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}})
    assert rsp.status_code == 400


@pytest.mark.parametrize("path", ["/apis/apps/v1/namespaces/{ns}/deployments",
                                  "/apis/coordination.k8s.io/v1/namespaces/{ns}/leases",
                                  "/apis/events.k8s.io/v1/namespaces/{ns}/events",
                                  "/api/v1/namespaces/{ns}/serviceaccounts",
                                  "/api/v1/namespaces/{ns}/services",
                                  "/api/v1/namespaces/{ns}/endpoints",
                                  "/api/v1/namespaces/{ns}/persistentvolumeclaims",
                                  "/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings"])
def test_builtin_kinds_are_served(http, namespace, path):
    rsp = http("GET", path.format(ns=namespace))
    assert rsp.status_code == 200
    # The serviceaccount controller gives every namespace its `default` account.
    expected = ["default"] if path.endswith("/serviceaccounts") else []
    assert [i["metadata"]["name"] for i in rsp.json()["items"]] == expected


def test_custom_resource_put_requires_resource_version(http, namespace, widget_crd):
    path = f"/apis/kubesim.test/v1/namespaces/{namespace}/widgets"
    made = http("POST", path, json={"apiVersion": "kubesim.test/v1", "kind": "Widget",
                                    "metadata": {"name": "u"}, "spec": {"size": 1}}).json()
    del made["metadata"]["resourceVersion"]
    rsp = http("PUT", f"{path}/u", json=made)
    assert rsp.status_code == 422
    assert rsp.json()["message"] == ('widgets.kubesim.test "u" is invalid: '
                                     'metadata.resourceVersion: Invalid value: 0: must be '
                                     'specified for an update')


def test_namespace_name_must_be_a_dns_label(http):
    rsp = http("POST", "/api/v1/namespaces", json={"metadata": {"name": "a.b"}})
    assert rsp.status_code == 422
    assert rsp.json()["message"] == ('Namespace "a.b" is invalid: metadata.name: Invalid value: '
                                     '"a.b": must not contain dots')


def test_dry_run_changes_nothing(http, namespace):
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    dry = http("POST", path, params={"dryRun": "All"}, json=_cm("dry"))
    assert dry.status_code == 201 and dry.json()["metadata"]["name"] == "dry"
    assert http("GET", f"{path}/dry").status_code == 404
    http("POST", path, json=_cm("real"))
    rsp = http("DELETE", f"{path}/real", json={"propagationPolicy": "Background",
                                               "dryRun": ["All"]})
    assert rsp.status_code == 200
    assert http("GET", f"{path}/real").status_code == 200
    patched = http("PATCH", f"{path}/real", params={"dryRun": "All"},
                   headers={"Content-Type": "application/merge-patch+json"},
                   json={"data": {"k": "v"}})
    assert patched.json()["data"] == {"k": "v"}
    assert not http("GET", f"{path}/real").json().get("data")


def test_configmap_data_up_to_one_mebibyte(http, namespace):
    """A ConfigMap holds up to 1 MiB of data (its validation; etcd's own request limit is
    1.5 MiB); beyond that it is refused as Invalid, naming the limit."""
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    big = "x" * (1024 * 1024 - 1)
    rsp = http("POST", path, json=_cm("big", k=big))
    assert rsp.status_code == 201
    assert len(http("GET", f"{path}/big").json()["data"]["k"]) == len(big)
    over = http("POST", path, json=_cm("over", k=big + "yy"))
    assert over.status_code == 422
    assert over.json()["message"] == ('ConfigMap "over" is invalid: []: Too long: may not be more '
                                      "than 1048576 bytes")


def test_body_over_the_limit_is_413(http, namespace):
    huge = "x" * (4 * 1024 * 1024)
    rsp = http("POST", f"/api/v1/namespaces/{namespace}/configmaps", json=_cm("huge", k=huge))
    assert rsp.status_code == 413


def test_persistent_volumes_and_storage_classes(http, kubectl):
    made = http("POST", "/api/v1/persistentvolumes", json={
        "metadata": {"name": "pv-test"},
        "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                 "hostPath": {"path": "/tmp/x"}}})
    assert made.status_code == 201
    status = made.json()["status"]
    assert status["phase"] == "Pending"
    assert status["lastPhaseTransitionTime"] == made.json()["metadata"]["creationTimestamp"]
    assert made.json()["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
    sc = http("POST", "/apis/storage.k8s.io/v1/storageclasses", json={
        "metadata": {"name": "fast-test"}, "provisioner": "kubesim.dev/hostpath"})
    assert sc.status_code == 201
    header = kubectl("get", "pv", "pv-test").stdout.splitlines()[0].split()
    assert header[:4] == ["NAME", "CAPACITY", "ACCESS", "MODES"]
    http("DELETE", "/api/v1/persistentvolumes/pv-test")
    http("DELETE", "/apis/storage.k8s.io/v1/storageclasses/fast-test")
