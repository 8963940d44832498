"""Watch: initial state, resumption from a resourceVersion, bookmarks, 410 Gone, timeouts."""

from __future__ import annotations

import json
import time

from kubernetes import client, watch

MERGE = {"Content-Type": "application/merge-patch+json"}


def _events(http, path, count, **params):
    """Read up to `count` events from a watch (bounded by timeoutSeconds server-side)."""
    params = {"watch": "true", "timeoutSeconds": "10", **params}
    out = []
    with http("GET", path, params=params, stream=True) as rsp:
        assert rsp.status_code == 200
        for line in rsp.iter_lines():
            if line:
                out.append(json.loads(line))
                if len(out) >= count:
                    break
    return out


def _cm(http, namespace, name, **labels):
    return http("POST", f"/api/v1/namespaces/{namespace}/configmaps",
                json={"metadata": {"name": name, "labels": labels}}).json()


def test_watch_without_version_starts_with_current_state(http, namespace):
    _cm(http, namespace, "a")
    _cm(http, namespace, "b")
    events = _events(http, f"/api/v1/namespaces/{namespace}/configmaps", 2)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "a"), ("ADDED", "b")]


def test_watch_from_version_replays_only_newer_events(http, namespace):
    _cm(http, namespace, "old")
    listed = http("GET", f"/api/v1/namespaces/{namespace}/configmaps").json()
    rv = listed["metadata"]["resourceVersion"]
    _cm(http, namespace, "new")
    http("PATCH", f"/api/v1/namespaces/{namespace}/configmaps/old", headers=MERGE,
         json={"data": {"k": "v"}})
    http("DELETE", f"/api/v1/namespaces/{namespace}/configmaps/new")
    events = _events(http, f"/api/v1/namespaces/{namespace}/configmaps", 3, resourceVersion=rv)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "new"), ("MODIFIED", "old"), ("DELETED", "new")]
    versions = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
    assert versions == sorted(versions) and versions[0] > int(rv)


def test_live_events_reach_watcher(api_client, namespace):
    core = client.CoreV1Api(api_client)
    rv = core.list_namespaced_config_map(namespace).metadata.resource_version
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "live"}})
    w = watch.Watch()
    seen = []
    for event in w.stream(core.list_namespaced_config_map, namespace, resource_version=rv,
                          timeout_seconds=10):
        seen.append((event["type"], event["object"].metadata.name))
        w.stop()
    assert seen == [("ADDED", "live")]


def test_too_old_version_is_410_gone(emulator, tmp_path):
    import requests

    from kubesim.launch import start_emulator

    with start_emulator(tmp_path, extra_args=("--history-size", "5")) as small:
        base = small.url + "/api/v1/namespaces/default/configmaps"
        first = requests.post(base, json={"metadata": {"name": "c0"}}, timeout=30).json()
        for i in range(1, 12):
            requests.post(base, json={"metadata": {"name": f"c{i}"}}, timeout=30)
        rsp = requests.get(base, params={"watch": "true", "timeoutSeconds": "5",
                                         "resourceVersion": first["metadata"]["resourceVersion"]},
                           stream=True, timeout=30)
        line = next(rsp.iter_lines())
        event = json.loads(line)
        assert event["type"] == "ERROR"
        assert event["object"]["code"] == 410 and event["object"]["reason"] == "Expired"
        assert event["object"]["message"].startswith("too old resource version")


def test_kubernetes_client_raises_410(emulator, tmp_path):
    from kubesim.launch import start_emulator

    with start_emulator(tmp_path, extra_args=("--history-size", "3")) as small:
        api = client.ApiClient(client.Configuration(host=small.url))
        core = client.CoreV1Api(api)
        rv = core.create_namespaced_config_map("default", {"metadata": {"name": "x"}}
                                               ).metadata.resource_version
        for i in range(6):
            core.create_namespaced_config_map("default", {"metadata": {"name": f"y{i}"}})
        try:
            for _ in watch.Watch().stream(core.list_namespaced_config_map, "default",
                                          resource_version=rv, timeout_seconds=5):
                raise AssertionError("expected 410")
        except client.ApiException as exc:
            assert exc.status == 410
        api.close()


def test_bookmarks_when_allowed(http, namespace):
    started = time.monotonic()
    rv = http("GET", f"/api/v1/namespaces/{namespace}/configmaps").json()[
        "metadata"]["resourceVersion"]
    events = _events(http, f"/api/v1/namespaces/{namespace}/configmaps", 1,
                     resourceVersion=rv, allowWatchBookmarks="true", timeoutSeconds="30")
    assert events[0]["type"] == "BOOKMARK"
    assert events[0]["object"]["kind"] == "ConfigMap"
    assert int(events[0]["object"]["metadata"]["resourceVersion"]) >= int(rv)
    assert time.monotonic() - started < 30


def test_send_initial_events_ends_with_marked_bookmark(http, namespace):
    _cm(http, namespace, "i1")
    events = _events(http, f"/api/v1/namespaces/{namespace}/configmaps", 2,
                     sendInitialEvents="true", resourceVersionMatch="NotOlderThan",
                     allowWatchBookmarks="true", fieldSelector="metadata.name=i1")
    assert events[0]["type"] == "ADDED"
    assert events[1]["type"] == "BOOKMARK"
    assert events[1]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}


def test_timeout_seconds_ends_the_stream(http, namespace):
    started = time.monotonic()
    events = _events(http, f"/api/v1/namespaces/{namespace}/configmaps", 100, timeoutSeconds="1",
                     labelSelector="nothing=here")
    assert events == []
    assert time.monotonic() - started < 20


def test_label_selector_watch_sees_objects_leave_and_enter(http, namespace):
    a = _cm(http, namespace, "sel", team="x")
    rv = a["metadata"]["resourceVersion"]
    path = f"/api/v1/namespaces/{namespace}/configmaps/sel"
    http("PATCH", path, headers=MERGE, json={"metadata": {"labels": {"team": "y"}}})
    http("PATCH", path, headers=MERGE, json={"metadata": {"labels": {"team": "x"}}})
    events = _events(http, f"/api/v1/namespaces/{namespace}/configmaps", 2,
                     resourceVersion=rv, labelSelector="team=x")
    assert [e["type"] for e in events] == ["DELETED", "ADDED"]


def test_watch_in_one_namespace_ignores_others(http, namespace, api_client):
    core = client.CoreV1Api(api_client)
    rv = core.list_namespaced_config_map(namespace).metadata.resource_version
    _cm(http, "default", f"other-{namespace}")
    _cm(http, namespace, "mine")
    events = _events(http, f"/api/v1/namespaces/{namespace}/configmaps", 1, resourceVersion=rv)
    assert events[0]["object"]["metadata"]["name"] == "mine"
    http("DELETE", f"/api/v1/namespaces/default/configmaps/other-{namespace}")


def test_watch_table_stream_for_kubectl(http, namespace):
    _cm(http, namespace, "t")
    params = {"watch": "true", "timeoutSeconds": "5", "fieldSelector": "metadata.name=t"}
    accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
    with http("GET", f"/api/v1/namespaces/{namespace}/configmaps", params=params,
              headers={"Accept": accept}, stream=True) as rsp:
        events = [json.loads(next(rsp.iter_lines()))]
    assert events[0]["object"]["kind"] == "Table"
    assert events[0]["object"]["rows"][0]["cells"][0] == "t"
