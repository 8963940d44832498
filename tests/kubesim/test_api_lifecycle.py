"""Finalizers and deletionTimestamp, ownerReference garbage collection, namespace deletion."""

from __future__ import annotations

import time
from collections.abc import Callable

MERGE = {"Content-Type": "application/merge-patch+json"}


# kube-controller-manager's garbage collector starts watching a new CRD's kind at its next
# discovery sync (every 30 s), so a collection may take that long on a real control plane.
def eventually(check: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


def _widget(http, namespace, name, **meta):
    return http("POST", f"/apis/kubesim.test/v1/namespaces/{namespace}/widgets", json={
        "apiVersion": "kubesim.test/v1", "kind": "Widget",
        "metadata": {"name": name, **meta}, "spec": {"size": 1}}).json()


def test_finalizer_holds_deletion_until_removed(http, namespace, widget_crd):
    path = f"/apis/kubesim.test/v1/namespaces/{namespace}/widgets/f"
    made = _widget(http, namespace, "f", finalizers=["x.io/hold"])
    rsp = http("DELETE", path)
    assert rsp.status_code == 200
    held = http("GET", path).json()
    assert held["metadata"]["deletionTimestamp"]
    assert held["metadata"]["generation"] == made["metadata"]["generation"] + 1
    assert int(held["metadata"]["resourceVersion"]) > int(made["metadata"]["resourceVersion"])
    added = http("PATCH", path, headers=MERGE,
                 json={"metadata": {"finalizers": ["x.io/hold", "x.io/new"]}})
    assert added.status_code == 422
    http("PATCH", path, headers=MERGE, json={"metadata": {"finalizers": None}})
    assert http("GET", path).status_code == 404


def test_deleting_twice_keeps_first_timestamp(http, namespace, widget_crd):
    path = f"/apis/kubesim.test/v1/namespaces/{namespace}/widgets/t"
    _widget(http, namespace, "t", finalizers=["x.io/hold"])
    first = http("DELETE", path).json()["metadata"]["deletionTimestamp"]
    second = http("DELETE", path).json()["metadata"]["deletionTimestamp"]
    assert first == second
    http("PATCH", path, headers=MERGE, json={"metadata": {"finalizers": None}})


def _owned_cm(http, namespace, name, owner):
    ref = {"apiVersion": "kubesim.test/v1", "kind": "Widget", "name": owner["metadata"]["name"],
           "uid": owner["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}
    return http("POST", f"/api/v1/namespaces/{namespace}/configmaps",
                json={"metadata": {"name": name, "ownerReferences": [ref]}})


def test_background_cascade_deletes_dependents(http, namespace, widget_crd):
    owner = _widget(http, namespace, "owner")
    assert _owned_cm(http, namespace, "child", owner).status_code == 201
    http("DELETE", f"/apis/kubesim.test/v1/namespaces/{namespace}/widgets/owner")
    eventually(lambda: http("GET", f"/api/v1/namespaces/{namespace}/configmaps/child"
                            ).status_code == 404)


def test_orphan_policy_keeps_dependents_without_the_reference(http, namespace, widget_crd):
    owner = _widget(http, namespace, "o2")
    _owned_cm(http, namespace, "kept", owner)
    http("DELETE", f"/apis/kubesim.test/v1/namespaces/{namespace}/widgets/o2",
         json={"propagationPolicy": "Orphan"})
    # The garbage collector strips the reference, then lets the owner go.
    eventually(lambda: "ownerReferences" not in http(
        "GET", f"/api/v1/namespaces/{namespace}/configmaps/kept").json()["metadata"])
    eventually(lambda: http("GET", f"/apis/kubesim.test/v1/namespaces/{namespace}/widgets/o2"
                            ).status_code == 404)
    assert http("GET", f"/api/v1/namespaces/{namespace}/configmaps/kept").status_code == 200


def test_foreground_deletes_dependents_first(http, namespace, widget_crd):
    owner = _widget(http, namespace, "fg")
    _owned_cm(http, namespace, "dep", owner)
    path = f"/apis/kubesim.test/v1/namespaces/{namespace}/widgets/fg"
    rsp = http("DELETE", path, json={"propagationPolicy": "Foreground"})
    assert "foregroundDeletion" in rsp.json()["metadata"].get("finalizers", [])
    eventually(lambda: http("GET", path).status_code == 404)
    assert http("GET", f"/api/v1/namespaces/{namespace}/configmaps/dep").status_code == 404


def test_dependent_with_a_live_second_owner_survives(http, namespace, widget_crd):
    a, b = _widget(http, namespace, "a"), _widget(http, namespace, "b")
    refs = [{"apiVersion": "kubesim.test/v1", "kind": "Widget", "name": o["metadata"]["name"],
             "uid": o["metadata"]["uid"]} for o in (a, b)]
    http("POST", f"/api/v1/namespaces/{namespace}/configmaps",
         json={"metadata": {"name": "shared", "ownerReferences": refs}})
    http("DELETE", f"/apis/kubesim.test/v1/namespaces/{namespace}/widgets/a")

    def unlinked() -> bool:
        meta = http("GET", f"/api/v1/namespaces/{namespace}/configmaps/shared").json()["metadata"]
        return [r["name"] for r in meta.get("ownerReferences", [])] == ["b"]
    eventually(unlinked)


def test_namespace_deletion_removes_contents_then_itself(http, widget_crd):
    name = "doomed-ns"
    http("POST", "/api/v1/namespaces", json={"metadata": {"name": name}})
    http("POST", f"/api/v1/namespaces/{name}/configmaps", json={"metadata": {"name": "c"}})
    _widget(http, name, "held", finalizers=["x.io/hold"])
    rsp = http("DELETE", f"/api/v1/namespaces/{name}")
    assert rsp.json()["status"]["phase"] == "Terminating"
    eventually(lambda: http("GET", f"/api/v1/namespaces/{name}/configmaps/c").status_code == 404)
    assert http("GET", f"/api/v1/namespaces/{name}").json()["status"]["phase"] == "Terminating"
    refused = http("POST", f"/api/v1/namespaces/{name}/configmaps",
                   json={"metadata": {"name": "late"}})
    assert refused.status_code == 403
    http("PATCH", f"/apis/kubesim.test/v1/namespaces/{name}/widgets/held", headers=MERGE,
         json={"metadata": {"finalizers": None}})
    eventually(lambda: http("GET", f"/api/v1/namespaces/{name}").status_code == 404)


def test_new_namespace_is_active_and_labelled(http):
    made = http("POST", "/api/v1/namespaces", json={"metadata": {"name": "fresh-ns"}}).json()
    assert made["status"]["phase"] == "Active"
    assert made["metadata"]["labels"]["kubernetes.io/metadata.name"] == "fresh-ns"
    http("DELETE", "/api/v1/namespaces/fresh-ns")


def test_start_namespaces_exist(http):
    names = {n["metadata"]["name"] for n in http("GET", "/api/v1/namespaces").json()["items"]}
    assert {"default", "kube-system"} <= names


def _running_pod(http, namespace, name, grace=30):
    path = f"/api/v1/namespaces/{namespace}/pods"
    http("POST", path, json={"metadata": {"name": name}, "spec": {
        "terminationGracePeriodSeconds": grace, "containers": [{"name": "c", "image": "i"}]}})
    http("POST", f"{path}/{name}/binding", json={"apiVersion": "v1", "kind": "Binding",
                                                 "metadata": {"name": name},
                                                 "target": {"kind": "Node", "name": "n"}})
    return f"{path}/{name}"


def test_unscheduled_pod_is_deleted_at_once(http, namespace):
    path = f"/api/v1/namespaces/{namespace}/pods"
    http("POST", path, json={"metadata": {"name": "u"},
                             "spec": {"containers": [{"name": "c", "image": "i"}]}})
    http("DELETE", f"{path}/u")
    assert http("GET", f"{path}/u").status_code == 404


def test_pod_on_a_node_terminates_gracefully(http, namespace):
    path = _running_pod(http, namespace, "g")
    rsp = http("DELETE", path)
    meta = rsp.json()["metadata"]
    assert meta["deletionGracePeriodSeconds"] == 30 and meta["deletionTimestamp"]
    assert http("GET", path).status_code == 200  # the kubelet has yet to confirm
    http("DELETE", path, json={"gracePeriodSeconds": 0})  # what the kubelet sends when done
    assert http("GET", path).status_code == 404


def test_graceful_deletion_completes_when_the_period_ends(http, namespace):
    path = _running_pod(http, namespace, "short", grace=1)
    http("DELETE", path)
    eventually(lambda: http("GET", path).status_code == 404, timeout=20)


def test_grace_period_zero_deletes_running_pod_at_once(http, namespace):
    path = _running_pod(http, namespace, "now")
    http("DELETE", path, params={"gracePeriodSeconds": "0"})
    assert http("GET", path).status_code == 404


def test_dependent_of_a_missing_owner_is_collected(http, namespace):
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "ghost",
           "uid": "00000000-0000-0000-0000-000000000000"}
    made = http("POST", f"/api/v1/namespaces/{namespace}/configmaps",
                json={"metadata": {"name": "orphaned", "ownerReferences": [ref]}})
    assert made.status_code == 201
    eventually(lambda: http("GET", f"/api/v1/namespaces/{namespace}/configmaps/orphaned"
                            ).status_code == 404)


def test_deleting_a_crd_deletes_its_resources_and_stops_serving_them(http, namespace):
    crds = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": "gizmos.kubesim.test"},
           "spec": {"group": "kubesim.test", "scope": "Namespaced",
                    "names": {"plural": "gizmos", "kind": "Gizmo"},
                    "versions": [{"name": "v1", "served": True, "storage": True,
                                  "schema": {"openAPIV3Schema": {
                                      "type": "object",
                                      "x-kubernetes-preserve-unknown-fields": True}}}]}}
    assert http("POST", crds, json=crd).status_code == 201
    path = f"/apis/kubesim.test/v1/namespaces/{namespace}/gizmos"
    # A new CRD is served once Established (a moment later on a real server).
    eventually(lambda: http("POST", path, json={
        "apiVersion": "kubesim.test/v1", "kind": "Gizmo",
        "metadata": {"name": "g", "finalizers": ["x.io/hold"]}}).status_code == 201)
    deleting = http("DELETE", f"{crds}/gizmos.kubesim.test").json()
    # The first DELETE adds the cleanup finalizer: the CRD waits for its resources to go.
    assert "customresourcecleanup.apiextensions.k8s.io" in deleting["metadata"]["finalizers"]
    eventually(lambda: bool(http("GET", f"{path}/g").json()["metadata"].get(
        "deletionTimestamp")))
    assert http("GET", f"{crds}/gizmos.kubesim.test").status_code == 200  # held by the CR
    refused = http("POST", path, json={"apiVersion": "kubesim.test/v1", "kind": "Gizmo",
                                       "metadata": {"name": "late"}})
    assert refused.status_code == 403, refused.text
    assert refused.json()["message"] == ('gizmos.kubesim.test "late" is forbidden: create not '
                                         "allowed while custom resource definition is "
                                         "terminating")
    http("PATCH", f"{path}/g", headers=MERGE, json={"metadata": {"finalizers": None}})
    eventually(lambda: http("GET", f"{crds}/gizmos.kubesim.test").status_code == 404)
    assert http("GET", path).status_code == 404
    group = http("GET", "/apis/kubesim.test/v1")  # 404 once no CRD of the group is left
    resources = group.json()["resources"] if group.status_code == 200 else []
    assert "gizmos" not in {r["name"] for r in resources}


def test_status_update_of_a_terminating_pod_keeps_it(http, namespace):
    path = _running_pod(http, namespace, "st")
    http("DELETE", path)
    rsp = http("PATCH", f"{path}/status", headers=MERGE, json={"status": {"phase": "Succeeded"}})
    assert rsp.status_code == 200
    assert http("GET", path).json()["status"]["phase"] == "Succeeded"
    http("DELETE", path, json={"gracePeriodSeconds": 0})
    assert http("GET", path).status_code == 404


def test_claim_in_use_is_kept_until_its_pod_is_gone(http, namespace):
    claims = f"/api/v1/namespaces/{namespace}/persistentvolumeclaims"
    made = http("POST", claims, json={"metadata": {"name": "data"}, "spec": {
        "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}})
    assert made.json()["metadata"]["finalizers"] == ["kubernetes.io/pvc-protection"]
    pods = f"/api/v1/namespaces/{namespace}/pods"
    # Scheduled (only a pod bound to a node counts as using a claim), by no scheduler's hand.
    http("POST", pods, json={"metadata": {"name": "user"}, "spec": {
        "nodeName": "n1", "containers": [{"name": "c", "image": "i"}],
        "volumes": [{"name": "v", "persistentVolumeClaim": {"claimName": "data"}}]}})
    http("DELETE", f"{claims}/data")
    assert http("GET", f"{claims}/data").json()["metadata"]["deletionTimestamp"]
    time.sleep(1)  # the protection controller has had its look: still in use
    assert http("GET", f"{claims}/data").status_code == 200
    http("DELETE", f"{pods}/user", params={"gracePeriodSeconds": "0"})
    eventually(lambda: http("GET", f"{claims}/data").status_code == 404)


def test_claim_of_an_unscheduled_pod_is_not_in_use(http, namespace):
    claims = f"/api/v1/namespaces/{namespace}/persistentvolumeclaims"
    http("POST", claims, json={"metadata": {"name": "data"}, "spec": {
        "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}})
    http("POST", f"/api/v1/namespaces/{namespace}/pods", json={
        "metadata": {"name": "pending"},
        "spec": {"schedulerName": "by-hand", "containers": [{"name": "c", "image": "i"}],
                 "volumes": [{"name": "v", "persistentVolumeClaim": {"claimName": "data"}}]}})
    http("DELETE", f"{claims}/data")
    eventually(lambda: http("GET", f"{claims}/data").status_code == 404)


def test_unused_claim_is_deleted_promptly(http, namespace):
    claims = f"/api/v1/namespaces/{namespace}/persistentvolumeclaims"
    http("POST", claims, json={"metadata": {"name": "free"}, "spec": {
        "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}})
    http("DELETE", f"{claims}/free")
    eventually(lambda: http("GET", f"{claims}/free").status_code == 404)
