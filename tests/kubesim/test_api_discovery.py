"""Discovery, OpenAPI v3 for kubectl's server-side validation, Table responses, Events/Leases."""

from __future__ import annotations

import time

import pytest

TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"


def test_version(http):
    info = http("GET", "/version").json()
    assert info["major"] == "1" and info["gitVersion"].startswith("v1.")


def test_core_and_groups(http):
    assert http("GET", "/api").json()["versions"] == ["v1"]
    groups = {g["name"] for g in http("GET", "/apis").json()["groups"]}
    assert {"apps", "coordination.k8s.io", "events.k8s.io", "apiextensions.k8s.io",
            "admissionregistration.k8s.io", "rbac.authorization.k8s.io"} <= groups
    apps = http("GET", "/apis/apps").json()
    assert apps["preferredVersion"]["groupVersion"] == "apps/v1"


def test_core_resource_list(http):
    resources = {r["name"]: r for r in http("GET", "/api/v1").json()["resources"]}
    assert resources["pods"]["namespaced"] is True
    assert resources["namespaces"]["namespaced"] is False
    assert "watch" in resources["pods"]["verbs"]
    assert {"pods/status", "pods/binding", "nodes/status",
            "persistentvolumeclaims/status"} <= set(resources)
    assert resources["pods"]["shortNames"] == ["po"]


def test_crd_is_discoverable_with_names(http, widget_crd):
    groups = {g["name"] for g in http("GET", "/apis").json()["groups"]}
    assert "kubesim.test" in groups
    resources = {r["name"]: r for r in http("GET", "/apis/kubesim.test/v1").json()["resources"]}
    widgets = resources["widgets"]
    assert widgets["kind"] == "Widget" and widgets["namespaced"] is True
    assert widgets["shortNames"] == ["wd"] and widgets["categories"] == ["gadgets"]
    assert widgets["singularName"] == "widget"
    assert widgets["verbs"] == ["delete", "deletecollection", "get", "list", "patch", "create",
                                "update", "watch"]
    assert "widgets/status" in resources


def test_crd_is_established(http, widget_crd):
    crd = http("GET", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/"
                      "widgets.kubesim.test").json()
    conditions = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
    assert conditions["Established"] == "True"
    assert crd["status"]["acceptedNames"]["kind"] == "Widget"


def test_openapi_v3_advertises_field_validation(http, widget_crd):
    # A new CRD's group joins /openapi/v3 when the OpenAPI controller has built it: seconds
    # after the CRD is served, on a real server.
    deadline = time.monotonic() + 60
    while "apis/kubesim.test/v1" not in (root := http("GET", "/openapi/v3").json()["paths"]):
        assert time.monotonic() < deadline, "the Widget group never reached /openapi/v3"
        time.sleep(0.2)
    assert {"api/v1", "apis/apps/v1", "apis/kubesim.test/v1"} <= set(root)
    doc = http("GET", root["apis/kubesim.test/v1"]["serverRelativeURL"]).json()
    patches = [op["patch"] for op in doc["paths"].values() if "patch" in op]
    widget = [p for p in patches if p["x-kubernetes-group-version-kind"]["kind"] == "Widget"]
    assert widget and any(p["name"] == "fieldValidation" and p["in"] == "query"
                          for p in widget[0]["parameters"])


def test_table_with_printer_columns(http, namespace, widget_crd):
    path = f"/apis/kubesim.test/v1/namespaces/{namespace}/widgets"
    http("POST", path, json={"apiVersion": "kubesim.test/v1", "kind": "Widget",
                             "metadata": {"name": "tw"}, "spec": {"size": 4}})
    http("PATCH", f"{path}/tw/status", headers={"Content-Type": "application/merge-patch+json"},
         json={"status": {"phase": "Ready"}})
    rsp = http("GET", path, headers={"Accept": TABLE})
    table = rsp.json()
    assert table["kind"] == "Table" and table["apiVersion"] == "meta.k8s.io/v1"
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Size", "Phase", "Age"]
    assert table["columnDefinitions"][0]["format"] == "name"
    cells = table["rows"][0]["cells"]
    assert cells[:3] == ["tw", 4, "Ready"]
    assert cells[3].endswith("s")  # a human duration like "0s"
    assert table["rows"][0]["object"]["kind"] == "PartialObjectMetadata"
    single = http("GET", f"{path}/tw", headers={"Accept": TABLE}).json()
    assert single["rows"][0]["cells"][0] == "tw"


def test_builtin_tables_follow_the_apiserver_printers(http, namespace):
    http("POST", f"/api/v1/namespaces/{namespace}/configmaps",
         json={"metadata": {"name": "c"}, "data": {"a": "1", "b": "2"}})
    table = http("GET", f"/api/v1/namespaces/{namespace}/configmaps",
                 headers={"Accept": TABLE}).json()
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Data", "Age"]
    assert table["rows"][0]["cells"][:2] == ["c", 2]
    http("POST", f"/api/v1/namespaces/{namespace}/pods", json={
        "metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "i"}]}})
    pods = http("GET", f"/api/v1/namespaces/{namespace}/pods", headers={"Accept": TABLE}).json()
    assert [(c["name"], c["priority"]) for c in pods["columnDefinitions"]] == [
        ("Name", 0), ("Ready", 0), ("Status", 0), ("Restarts", 0), ("Age", 0), ("IP", 1),
        ("Node", 1), ("Nominated Node", 1), ("Readiness Gates", 1)]
    assert pods["rows"][0]["cells"][:4] == ["p", "0/1", "Pending", "0"]
    assert pods["rows"][0]["cells"][5:] == ["<none>"] * 4


def test_event_table_names_the_object(http, namespace):
    http("POST", f"/api/v1/namespaces/{namespace}/events", json={
        "metadata": {"name": "e"}, "type": "Normal", "reason": "Started", "message": "hi",
        "involvedObject": {"kind": "GpuRental", "name": "r1", "namespace": namespace},
        "lastTimestamp": "2020-01-01T00:00:00Z"})
    table = http("GET", f"/api/v1/namespaces/{namespace}/events",
                 headers={"Accept": TABLE}).json()
    shown = [c["name"] for c in table["columnDefinitions"] if c["priority"] == 0]
    assert shown == ["Last Seen", "Type", "Reason", "Object", "Message"]
    cells = dict(zip([c["name"] for c in table["columnDefinitions"]], table["rows"][0]["cells"],
                     strict=True))
    assert cells["Object"] == "gpurental/r1" and cells["Reason"] == "Started"
    assert cells["Last Seen"].endswith("d") or cells["Last Seen"].endswith("y")


@pytest.mark.parametrize(("path", "body"), [
    ("/api/v1/namespaces/{ns}/events", {
        "metadata": {"generateName": "p."}, "reason": "Started", "message": "m", "type": "Normal",
        "involvedObject": {"kind": "Pod", "name": "p", "namespace": "{ns}"}}),
    ("/apis/events.k8s.io/v1/namespaces/{ns}/events", {
        "metadata": {"name": "e1"}, "reason": "Started", "note": "n", "type": "Normal",
        "eventTime": "2026-01-01T00:00:00.000000Z", "action": "A",
        "reportingController": "x", "reportingInstance": "y",
        "regarding": {"kind": "Pod", "name": "p", "namespace": "{ns}"}}),
    ("/apis/coordination.k8s.io/v1/namespaces/{ns}/leases", {
        "metadata": {"name": "leader"}, "spec": {"holderIdentity": "me",
                                                 "leaseDurationSeconds": 15}}),
])
def test_events_and_leases_are_ordinary_objects(http, namespace, path, body):
    url = path.format(ns=namespace)
    import json
    body = json.loads(json.dumps(body).replace("{ns}", namespace))
    made = http("POST", url, json=body)
    assert made.status_code == 201, made.text
    name = made.json()["metadata"]["name"]
    assert http("GET", f"{url}/{name}").status_code == 200
    patched = http("PATCH", f"{url}/{name}",
                   headers={"Content-Type": "application/merge-patch+json"},
                   json={"metadata": {"labels": {"x": "y"}}})
    assert patched.status_code == 200
